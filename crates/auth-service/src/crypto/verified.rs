//! A bounded cache of access tokens whose signature and claims were verified, so
//! that a gateway asking about the same token on every request costs a hash
//! lookup instead of an ECDSA verification. Only the verification is cached:
//! expiry, revocation and current roles are still checked on every call.
//!
//! Sharded (16 locks) so concurrent validations rarely wait on each other. A
//! full shard first forgets expired tokens, then a quarter of the rest (keys
//! are SHA-256 digests, so which quarter is effectively random): a platform
//! with more live tokens than the capacity pays a full verification on a
//! fraction of calls, never on all of them.

use super::jwt::AccessClaims;
use aws_lc_rs::digest::{SHA256, digest};
use parking_lot::RwLock;
use std::collections::HashMap;

/// Tokens remembered by default (about 300 bytes each: some 40 MB).
pub const DEFAULT_CAPACITY: usize = 131_072;
const SHARDS: usize = 16;

type Shard = RwLock<HashMap<[u8; 32], AccessClaims>>;

/// Verified tokens by the SHA-256 of the token.
#[derive(Debug)]
pub struct VerifiedTokens {
    shards: Vec<Shard>,
    per_shard: usize,
}

impl Default for VerifiedTokens {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

fn key(token: &str) -> [u8; 32] {
    let mut k = [0u8; 32];
    k.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    k
}

impl VerifiedTokens {
    /// A cache of at most about `capacity` tokens.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            per_shard: (capacity / SHARDS).max(1),
        }
    }

    fn shard(&self, key: &[u8; 32]) -> &Shard {
        &self.shards[usize::from(key[0]) % SHARDS]
    }

    /// The claims of `token` if it was verified before.
    pub fn get(&self, token: &str) -> Option<AccessClaims> {
        let k = key(token);
        self.shard(&k).read().get(&k).cloned()
    }

    /// Remembers a verified token; `now` (Unix seconds) decides what expired.
    pub fn insert(&self, token: &str, claims: &AccessClaims, now: i64) {
        let k = key(token);
        let mut map = self.shard(&k).write();
        if map.len() >= self.per_shard {
            map.retain(|_, c| c.exp > now);
            if map.len() >= self.per_shard {
                let mut drop = self.per_shard / 4 + 1;
                map.retain(|_, _| {
                    drop = drop.saturating_sub(1);
                    drop == 0
                });
            }
        }
        map.insert(k, claims.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::ids::{SessionId, UserId};

    fn claims(exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "i".into(),
            aud: "a".into(),
            sub: UserId::from_uuid(uuid::Uuid::nil()).into(),
            sid: SessionId::generate(),
            jti: uuid::Uuid::nil(),
            iat: 0,
            nbf: 0,
            exp,
            roles: vec![],
            email_verified: false,
            amr: vec![],
        }
    }

    #[test]
    fn full_shards_forget_expired_first_and_never_everything() {
        let len = |c: &VerifiedTokens| c.shards.iter().map(|s| s.read().len()).sum::<usize>();
        let cache = VerifiedTokens::with_capacity(1600);
        for i in 0..1600 {
            cache.insert(&format!("expired-{i}"), &claims(10), 0);
        }
        for i in 0..3000 {
            cache.insert(&format!("live-{i}"), &claims(1000), 100);
        }
        assert!(len(&cache) <= 1600 + SHARDS, "{}", len(&cache));
        assert!(
            len(&cache) >= 1000,
            "a full shard keeps most of its entries"
        );
        assert!((0..1600).all(|i| cache.get(&format!("expired-{i}")).is_none()));
        assert!(cache.get("live-2999").is_some(), "the newest is kept");
    }
}
