//! Opaque refresh tokens: 256 random bits, handed out base64url-encoded, stored
//! only as their SHA-256 (a random 256-bit secret needs no slow hash).

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};

/// 32 bytes in base64url without padding.
const ENCODED_LEN: usize = 43;

/// A freshly minted refresh token and its storage hash.
#[derive(Debug)]
pub struct RefreshToken {
    /// What the client receives.
    pub token: SecretString,
    /// What the database keeps.
    pub hash: [u8; 32],
}

/// Mints a new token.
pub fn mint() -> Result<RefreshToken, aws_lc_rs::error::Unspecified> {
    let mut raw = [0u8; 32];
    SystemRandom::new().fill(&mut raw)?;
    let token = URL_SAFE_NO_PAD.encode(raw);
    let hash = hash_of(&token);
    Ok(RefreshToken {
        token: SecretString::from(token),
        hash,
    })
}

/// The storage hash of a presented token, or `None` when it cannot be one of ours.
pub fn parse(presented: &SecretString) -> Option<[u8; 32]> {
    let s = presented.expose_secret();
    let well_formed = s.len() == ENCODED_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| hash_of(s))
}

fn hash_of(token: &str) -> [u8; 32] {
    let d = digest(&SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_parse_to_their_hash_and_differ() {
        let a = mint().unwrap();
        let b = mint().unwrap();
        assert_eq!(parse(&a.token), Some(a.hash));
        assert_ne!(a.hash, b.hash);
        assert_eq!(a.token.expose_secret().len(), ENCODED_LEN);
    }

    #[test]
    fn garbage_is_not_a_token() {
        assert_eq!(parse(&SecretString::from("nope")), None);
        assert_eq!(parse(&SecretString::from("!".repeat(43))), None);
    }
}
