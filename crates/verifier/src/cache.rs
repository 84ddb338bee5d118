//! A bounded cache of tokens whose signature, issuer and audience were
//! verified, sized and evicted like the Auth Service's own
//! (`crypto/verified.rs`): a repeated token costs a SHA-256 and a hash lookup
//! instead of an ECDSA verification. Only that is cached: time, revocation
//! and the key still being published are checked on every call.
//!
//! Sharded (16 locks); a full shard first forgets expired tokens, then a
//! quarter of the rest, so a platform with more live tokens than the capacity
//! pays a full verification on a fraction of calls, never on all of them.

use crate::claims::TokenClaims;
use aws_lc_rs::digest::{SHA256, digest};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;

/// Tokens remembered by default, as the Auth Service does (some 40 MB).
pub const DEFAULT_CAPACITY: usize = 131_072;
const SHARDS: usize = 16;

/// A verified token's claims and the kid that signed it.
pub(crate) type Verified = (Arc<TokenClaims>, Arc<str>);
type Shard = RwLock<HashMap<[u8; 32], Verified>>;

/// Verified tokens by the SHA-256 of the token.
#[derive(Debug)]
pub(crate) struct VerifiedTokens {
    shards: Vec<Shard>,
    per_shard: usize,
}

fn key(token: &str) -> [u8; 32] {
    let mut k = [0u8; 32];
    k.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    k
}

impl VerifiedTokens {
    /// A cache of at most about `capacity` tokens.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            per_shard: (capacity / SHARDS).max(1),
        }
    }

    fn shard(&self, key: &[u8; 32]) -> &Shard {
        &self.shards[usize::from(key[0]) % SHARDS]
    }

    /// The claims of `token` if it was verified before.
    pub(crate) fn get(&self, token: &str) -> Option<Verified> {
        let k = key(token);
        self.shard(&k).read().get(&k).cloned()
    }

    /// Remembers a verified token; `now` (Unix seconds) decides what expired.
    pub(crate) fn insert(&self, token: &str, verified: Verified, now: i64) {
        let k = key(token);
        let mut map = self.shard(&k).write();
        if map.len() >= self.per_shard {
            map.retain(|_, (c, _)| c.exp > now);
            if map.len() >= self.per_shard {
                let mut drop = self.per_shard / 4 + 1;
                map.retain(|_, _| {
                    drop = drop.saturating_sub(1);
                    drop == 0
                });
            }
        }
        map.insert(k, verified);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }
}
