//! Passwords after NIST SP 800-63B: 8 to 128 characters, no composition rules, the
//! most common passwords refused. Held in `SecretString` so they never reach a log.

use super::FieldViolation;
use secrecy::SecretString;
use std::collections::HashSet;
use std::sync::OnceLock;

const MIN_CHARS: usize = 8;
const MAX_CHARS: usize = 128;
/// A login attempt longer than this cannot match any stored password; refuse it
/// before spending a hash on it (in bytes: 128 characters of up to 4 bytes).
const MAX_BYTES: usize = MAX_CHARS * 4;

/// The 8-character-or-longer entries of Django's list of 20,000 common passwords
/// (itself from Royce Williams' compilation of breach corpora).
const COMMON: &str = include_str!("common_passwords.txt");

fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    })
}

/// A password presented at login: only its size is checked.
#[derive(Debug)]
pub struct Password(SecretString);

impl Password {
    /// Accepts any non-empty password of a plausible size.
    pub fn parse(raw: String, field: &'static str) -> Result<Self, FieldViolation> {
        if raw.is_empty() {
            return Err(FieldViolation::new(field, "is required"));
        }
        if raw.len() > MAX_BYTES {
            return Err(FieldViolation::new(field, "must be at most 128 characters"));
        }
        Ok(Self(SecretString::from(raw)))
    }

    /// The secret itself, for hashing.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

/// A password chosen for a new credential: it passed the policy.
#[derive(Debug)]
pub struct NewPassword(SecretString);

impl NewPassword {
    /// Checks the policy.
    pub fn parse(raw: String, field: &'static str) -> Result<Self, FieldViolation> {
        let chars = raw.chars().count();
        if chars < MIN_CHARS {
            return Err(FieldViolation::new(field, "must be at least 8 characters"));
        }
        if chars > MAX_CHARS {
            return Err(FieldViolation::new(field, "must be at most 128 characters"));
        }
        if common_passwords().contains(raw.to_lowercase().as_str()) {
            return Err(FieldViolation::new(
                field,
                "is one of the most commonly used passwords; choose another",
            ));
        }
        Ok(Self(SecretString::from(raw)))
    }

    /// The secret itself, for hashing.
    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_bounds_count_characters() {
        assert!(NewPassword::parse("short".into(), "password").is_err());
        assert!(NewPassword::parse("ééééééé".into(), "password").is_err()); // 7 chars, 14 bytes
        assert!(NewPassword::parse("correct horse battery".into(), "password").is_ok());
        assert!(NewPassword::parse("x".repeat(129), "password").is_err());
        assert!(NewPassword::parse("é".repeat(128), "password").is_ok());
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        assert!(NewPassword::parse("password1".into(), "password").is_err());
        assert!(NewPassword::parse("PassWord1".into(), "password").is_err());
        assert!(common_passwords().len() > 8000);
    }

    #[test]
    fn login_passwords_are_only_size_checked() {
        assert!(Password::parse(String::new(), "password").is_err());
        assert!(Password::parse("a".into(), "password").is_ok());
        assert!(Password::parse("a".repeat(600), "password").is_err());
    }
}
