//! A bounded cache of access tokens whose signature and claims were verified, so
//! that the Gateway asking about the same token on every request costs a hash
//! lookup instead of an ECDSA verification. Only the verification is cached:
//! expiry, revocation and current roles are still checked on every call.

use super::jwt::AccessClaims;
use aws_lc_rs::digest::{SHA256, digest};
use parking_lot::RwLock;
use std::collections::HashMap;

/// Tokens remembered at most (about 250 bytes each).
const CAPACITY: usize = 10_000;

/// Verified tokens by the SHA-256 of the token.
#[derive(Debug, Default)]
pub struct VerifiedTokens {
    map: RwLock<HashMap<[u8; 32], AccessClaims>>,
}

fn key(token: &str) -> [u8; 32] {
    let mut k = [0u8; 32];
    k.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    k
}

impl VerifiedTokens {
    /// The claims of `token` if it was verified before.
    pub fn get(&self, token: &str) -> Option<AccessClaims> {
        self.map.read().get(&key(token)).cloned()
    }

    /// Remembers a verified token; when full, forgets everything (rare, cheap,
    /// and bounded), expired entries included.
    pub fn insert(&self, token: &str, claims: &AccessClaims) {
        let mut map = self.map.write();
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(key(token), claims.clone());
    }
}
