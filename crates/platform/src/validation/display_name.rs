//! The name shown for a user: optional, bounded, printable.

use super::FieldViolation;

const MAX_CHARS: usize = 100;

/// A display name: trimmed, at most 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DisplayName(String);

impl DisplayName {
    /// Parses `raw`; empty is allowed.
    pub fn parse(raw: &str, field: &'static str) -> Result<Self, FieldViolation> {
        let s = raw.trim();
        if s.chars().count() > MAX_CHARS {
            return Err(FieldViolation::new(field, "must be at most 100 characters"));
        }
        if s.chars().any(char::is_control) {
            return Err(FieldViolation::new(
                field,
                "must not contain control characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_controls() {
        assert_eq!(
            DisplayName::parse("  Ada ", "d").map(|d| d.0),
            Ok("Ada".to_owned())
        );
        assert!(DisplayName::parse(&"x".repeat(101), "d").is_err());
        assert!(DisplayName::parse("a\u{0}b", "d").is_err());
        assert!(DisplayName::parse("", "d").is_ok());
    }
}
