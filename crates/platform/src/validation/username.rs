//! Usernames: 3 to 32 of `a-z 0-9 _ . -`, stored lower-cased so that uniqueness
//! is case-insensitive.

use super::FieldViolation;

const MIN: usize = 3;
const MAX: usize = 32;

/// A valid, lower-cased username.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

fn allowed(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-')
}

impl Username {
    /// Parses `raw` for the request field `field`.
    pub fn parse(raw: &str, field: &'static str) -> Result<Self, FieldViolation> {
        let s = raw.trim().to_ascii_lowercase();
        let n = s.chars().count();
        if !(MIN..=MAX).contains(&n) {
            return Err(FieldViolation::new(field, "must be 3 to 32 characters"));
        }
        if !s.chars().all(allowed) {
            return Err(FieldViolation::new(
                field,
                "may contain only letters a-z, digits, '_', '.' and '-'",
            ));
        }
        Ok(Self(s))
    }

    /// A default username from an email's local part, with `suffix` appended
    /// (used to step around names already taken).
    pub fn derive(email: &str, suffix: Option<&str>) -> Self {
        let local = email
            .split('@')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let mut base: String = local
            .chars()
            .map(|c| if allowed(c) { c } else { '_' })
            .take(24)
            .collect();
        if base.len() < MIN {
            base.push_str("user");
        }
        if let Some(suffix) = suffix {
            base.push('-');
            base.push_str(suffix);
        }
        base.truncate(MAX);
        Self(base)
    }

    /// The username.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(
            Username::parse(" Ada.L-1_ ", "u").map(|u| u.0),
            Ok("ada.l-1_".to_owned())
        );
        for bad in ["ab", "a b c", "ünïcode", "semi;colon", &"x".repeat(33)] {
            assert!(Username::parse(bad, "u").is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn derived_names_are_valid() {
        for email in [
            "Ada.Lovelace+x@example.com",
            "a@b.co",
            "ö@x.org",
            &format!("{}@e.com", "x".repeat(60)),
        ] {
            for suffix in [None, Some("1234")] {
                let u = Username::derive(email, suffix);
                assert!(Username::parse(u.as_str(), "u").is_ok(), "{email} -> {u:?}");
            }
        }
        assert_eq!(
            Username::derive("Ada.Lovelace+x@example.com", None).0,
            "ada.lovelace_x"
        );
    }
}
