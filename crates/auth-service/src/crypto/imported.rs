//! Password hashes made by another system and imported with its users: bcrypt,
//! PBKDF2 (PHC and Django forms), scrypt, Firebase's scrypt and Argon2i/id.
//! They are verified at login, on the hashing pool, and the first success
//! replaces them with the service's Argon2id hash. Their parameters come from
//! outside, so each has a ceiling: a hash that would cost a login more than
//! these is refused at import rather than run.

use aes::Aes256;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use ctr::cipher::{KeyIvInit, StreamCipher};
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

/// bcrypt's highest cost accepted (2^15 rounds, about a second).
const MAX_BCRYPT_COST: u32 = 15;
/// PBKDF2's most iterations accepted.
const MAX_PBKDF2_ROUNDS: u32 = 2_000_000;
/// The most memory one scrypt check may take (128·r·2^ln·p bytes).
const MAX_SCRYPT_BYTES: u64 = 256 << 20;
/// Argon2's ceilings: memory (KiB), passes, lanes.
const MAX_ARGON2: (u32, u32, u32) = (256 * 1024, 16, 16);

/// A parsed imported hash.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Imported {
    Bcrypt,
    Pbkdf2 {
        sha512: bool,
        rounds: u32,
        salt: Vec<u8>,
        hash: Vec<u8>,
    },
    Scrypt {
        scrypt: Scrypt,
        hash: Vec<u8>,
    },
    /// scrypt keys AES-256-CTR (zero IV), which encrypts the project's signer key.
    FireScrypt {
        scrypt: Scrypt,
        hash: Vec<u8>,
        signer: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Scrypt {
    log_n: u8,
    r: u32,
    p: u32,
    salt: Vec<u8>,
}

/// Checks that `stored` is a hash this service can verify, within its
/// ceilings; the reason otherwise (for the import report).
pub fn check(stored: &str) -> Result<(), String> {
    if stored.starts_with("$argon2") {
        return check_argon2(stored);
    }
    parse(stored).map(drop)
}

/// Whether `password` matches an imported, non-Argon2 `stored` hash.
pub fn verify(password: &[u8], stored: &str) -> Result<bool, String> {
    Ok(match parse(stored)? {
        Imported::Bcrypt => bcrypt::verify(password, stored).map_err(|e| e.to_string())?,
        Imported::Pbkdf2 {
            sha512,
            rounds,
            salt,
            hash,
        } => {
            let mut out = vec![0u8; hash.len()];
            if sha512 {
                pbkdf2::pbkdf2_hmac::<Sha512>(password, &salt, rounds, &mut out);
            } else {
                pbkdf2::pbkdf2_hmac::<Sha256>(password, &salt, rounds, &mut out);
            }
            out.ct_eq(&hash).into()
        }
        Imported::Scrypt { scrypt, hash } => {
            scrypt.derive(password, hash.len())?.ct_eq(&hash).into()
        }
        Imported::FireScrypt {
            scrypt,
            hash,
            mut signer,
        } => {
            let key = scrypt.derive(password, 32)?;
            let mut cipher = ctr::Ctr128BE::<Aes256>::new(key[..].into(), &[0u8; 16].into());
            cipher.apply_keystream(&mut signer);
            signer.ct_eq(&hash).into()
        }
    })
}

impl Scrypt {
    fn derive(&self, password: &[u8], len: usize) -> Result<Vec<u8>, String> {
        let params = scrypt::Params::new(self.log_n, self.r, self.p, len.max(10))
            .map_err(|e| e.to_string())?;
        let mut out = vec![0u8; len];
        scrypt::scrypt(password, &self.salt, &params, &mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// From PHC parameters `ln=…,r=…,p=…`, within the memory ceiling.
    fn from_params(params: &str, salt: Vec<u8>) -> Result<Self, String> {
        let (mut log_n, mut r, mut p) = (None, None, None);
        for pair in params.split(',') {
            match pair.split_once('=') {
                Some(("ln", v)) => log_n = v.parse::<u8>().ok(),
                Some(("r", v)) => r = v.parse::<u32>().ok(),
                Some(("p", v)) => p = v.parse::<u32>().ok(),
                _ => return Err(format!("unknown scrypt parameter {pair:?}")),
            }
        }
        let (Some(log_n), Some(r), Some(p)) = (log_n, r, p) else {
            return Err("scrypt needs ln, r and p".into());
        };
        let bytes = 128u64
            .saturating_mul(u64::from(r))
            .saturating_mul(1u64.checked_shl(log_n.into()).unwrap_or(u64::MAX))
            .saturating_mul(u64::from(p));
        if log_n == 0 || r == 0 || p == 0 || log_n > 24 || bytes > MAX_SCRYPT_BYTES {
            return Err(format!(
                "scrypt parameters ln={log_n},r={r},p={p} exceed the ceiling"
            ));
        }
        Ok(Self { log_n, r, p, salt })
    }
}

fn parse(stored: &str) -> Result<Imported, String> {
    let fields: Vec<&str> = stored.split('$').collect();
    match fields.as_slice() {
        ["", "2a" | "2b" | "2y", cost, rest] if rest.len() == 53 => {
            let cost: u32 = cost.parse().map_err(|_| "bcrypt cost is not a number")?;
            if !(4..=MAX_BCRYPT_COST).contains(&cost) {
                return Err(format!("bcrypt cost {cost} exceeds {MAX_BCRYPT_COST}"));
            }
            Ok(Imported::Bcrypt)
        }
        [
            "",
            algorithm @ ("pbkdf2-sha256" | "pbkdf2-sha512"),
            params,
            salt,
            hash,
        ] => {
            let rounds = params
                .split(',')
                .find_map(|p| p.strip_prefix("i="))
                .or(Some(*params).filter(|p| p.bytes().all(|b| b.is_ascii_digit())))
                .and_then(|i| i.parse().ok())
                .ok_or("pbkdf2 needs i=<iterations>")?;
            pbkdf2(
                *algorithm == "pbkdf2-sha512",
                rounds,
                b64(salt)?,
                b64(hash)?,
            )
        }
        [
            algorithm @ ("pbkdf2_sha256" | "pbkdf2_sha512"),
            rounds,
            salt,
            hash,
        ] => {
            let rounds = rounds
                .parse()
                .map_err(|_| "pbkdf2 iterations are not a number")?;
            // Django's salt is text, used as its bytes.
            let salt = salt.as_bytes().to_vec();
            pbkdf2(*algorithm == "pbkdf2_sha512", rounds, salt, b64(hash)?)
        }
        ["", "scrypt", params, salt, hash] => Ok(Imported::Scrypt {
            scrypt: Scrypt::from_params(params, b64(salt)?)?,
            hash: sized(b64(hash)?)?,
        }),
        ["", "firescrypt", params, salt, hash, separator, signer] => {
            let mut salt = b64(salt)?;
            salt.extend(b64(separator)?);
            let scrypt = Scrypt::from_params(params, salt)?;
            if scrypt.p != 1 {
                return Err("Firebase scrypt has p=1".into());
            }
            let (hash, signer) = (sized(b64(hash)?)?, b64(signer)?);
            if hash.len() != signer.len() {
                return Err("the Firebase hash and signer key differ in length".into());
            }
            Ok(Imported::FireScrypt {
                scrypt,
                hash,
                signer,
            })
        }
        _ => Err(
            "unknown password hash format (accepted: bcrypt, PBKDF2, scrypt, \
                  Firebase scrypt, Argon2)"
                .into(),
        ),
    }
}

fn pbkdf2(sha512: bool, rounds: u32, salt: Vec<u8>, hash: Vec<u8>) -> Result<Imported, String> {
    if rounds == 0 || rounds > MAX_PBKDF2_ROUNDS {
        return Err(format!(
            "pbkdf2 iterations {rounds} exceed {MAX_PBKDF2_ROUNDS}"
        ));
    }
    Ok(Imported::Pbkdf2 {
        sha512,
        rounds,
        salt,
        hash: sized(hash)?,
    })
}

/// Standard base64, padded or not; passlib's `.` for `+` too.
fn b64(text: &str) -> Result<Vec<u8>, String> {
    STANDARD_NO_PAD
        .decode(text.trim_end_matches('=').replace('.', "+"))
        .map_err(|_| "a hash field is not base64".to_owned())
}

/// A derived key of a sane length (too short guesses too easily; too long is no hash).
fn sized(hash: Vec<u8>) -> Result<Vec<u8>, String> {
    if (16..=128).contains(&hash.len()) {
        Ok(hash)
    } else {
        Err("the hash has an implausible length".into())
    }
}

fn check_argon2(stored: &str) -> Result<(), String> {
    let parsed = argon2::PasswordHash::new(stored).map_err(|e| e.to_string())?;
    argon2::Algorithm::try_from(parsed.algorithm).map_err(|e| e.to_string())?;
    let params = argon2::Params::try_from(&parsed).map_err(|e| e.to_string())?;
    let (m, t, p) = MAX_ARGON2;
    if params.m_cost() > m || params.t_cost() > t || params.p_cost() > p {
        return Err("argon2 parameters exceed the ceiling".into());
    }
    match (parsed.salt, parsed.hash) {
        (Some(_), Some(hash)) if (16..=128).contains(&hash.len()) => Ok(()),
        _ => Err("the argon2 hash has no salt or output of a sane length".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Firebase's published test vector (github.com/firebase/scrypt).
    #[test]
    fn firebase_scrypt_vector() {
        let stored = "$firescrypt$ln=14,r=8,p=1$42xEC+ixf3L2lw==\
            $lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==\
            $Bw==$jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==";
        assert_eq!(verify(b"user1password", stored), Ok(true));
        assert_eq!(verify(b"user1passwore", stored), Ok(false));
    }

    #[test]
    fn costly_or_unknown_hashes_are_refused() {
        for stored in [
            "$1$saltsalt$qjXMvbEw8oaL.CzflDugX/",
            "$2b$31$abcdefghijklmnopqrstuuKz3oDBi2w1JfAyXe8gyF0YbDWbJ5Jqq",
            "$pbkdf2-sha256$i=999999999$c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2g",
            "$scrypt$ln=30,r=8,p=1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2g",
            "$argon2id$v=19$m=4194304,t=3,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2g",
            "plaintext",
            "",
        ] {
            assert!(check(stored).is_err(), "{stored}");
        }
    }
}
