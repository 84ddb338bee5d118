//! The Auth Service's public keys (its JWKS), by `kid`. A fetched set replaces
//! the previous one whole, so a key leaves only when the JWKS stops listing it
//! (the Auth Service keeps the previous key published through a rotation's
//! overlap). An unknown `kid` asks the refresher for one refetch, at most once
//! per `min_refetch_interval`, so a flood of forged kids costs nothing.

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Why a JWKS document was not taken.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Not a JSON Web Key Set.
    #[error("the JWKS is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// It holds no usable ES256 key (an empty set is never taken: it would
    /// reject every token).
    #[error("the JWKS holds no ES256 P-256 key with a kid")]
    Empty,
}

/// Verifying keys by kid.
pub(crate) type Keys = HashMap<String, DecodingKey>;

/// The ES256 P-256 keys of a JWKS; keys of other types or without a `kid`
/// are skipped (they could never verify a token of ours).
pub(crate) fn parse_jwks(json: &str) -> Result<Keys, KeyError> {
    let set: JwkSet = serde_json::from_str(json)?;
    let mut keys = Keys::new();
    for jwk in &set.keys {
        let es256 = matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::ES256));
        let p256 = matches!(&jwk.algorithm, AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256);
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        if !(es256 && p256) {
            continue;
        }
        match DecodingKey::from_jwk(jwk) {
            Ok(key) => {
                keys.insert(kid, key);
            }
            Err(e) => tracing::warn!(kid, error = %e, "skipping an unusable JWK"),
        }
    }
    if keys.is_empty() {
        return Err(KeyError::Empty);
    }
    Ok(keys)
}

/// The current keys and the refetch trigger.
#[derive(Debug)]
pub(crate) struct KeyStore {
    keys: RwLock<Arc<Keys>>,
    /// Wakes the refresher early (an unknown kid was seen).
    pub(crate) refetch: Notify,
    last_request: Mutex<Option<Instant>>,
    min_refetch_interval: Duration,
}

impl KeyStore {
    pub(crate) fn new(min_refetch_interval: Duration) -> Self {
        Self {
            keys: RwLock::default(),
            refetch: Notify::new(),
            last_request: Mutex::new(None),
            min_refetch_interval,
        }
    }

    /// The key named `kid`.
    pub(crate) fn get(&self, kid: &str) -> Option<DecodingKey> {
        self.keys.read().get(kid).cloned()
    }

    /// Whether `kid` is still published.
    pub(crate) fn contains(&self, kid: &str) -> bool {
        self.keys.read().contains_key(kid)
    }

    /// Whether any key was ever loaded.
    pub(crate) fn loaded(&self) -> bool {
        !self.keys.read().is_empty()
    }

    /// Replaces the set with a freshly fetched one.
    pub(crate) fn replace(&self, keys: Keys) {
        *self.keys.write() = Arc::new(keys);
    }

    /// Asks for a refetch, unless one was asked for less than
    /// `min_refetch_interval` ago.
    pub(crate) fn request_refetch(&self) {
        let now = platform::clock::monotonic_now();
        let mut last = self.last_request.lock();
        if last.is_some_and(|at| now.duration_since(at) < self.min_refetch_interval) {
            return;
        }
        *last = Some(now);
        self.refetch.notify_one();
    }
}
