//! The ListUsers filter: a small subset of AIP-160, enough for a people picker.
//! `username:"ab*"` (prefix), `display_name:"Ad*"` (prefix, case-insensitive) or
//! `username="ada"` (exact).

use super::FieldViolation;

const MAX_LEN: usize = 200;

/// A parsed filter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Filter {
    /// Every active user.
    #[default]
    All,
    /// Usernames starting with this (lower-cased).
    UsernamePrefix(String),
    /// Exactly this username (lower-cased).
    UsernameIs(String),
    /// Display names starting with this, ignoring case (lower-cased).
    DisplayNamePrefix(String),
}

impl Filter {
    /// Parses the `filter` field.
    pub fn parse(raw: &str) -> Result<Self, FieldViolation> {
        let s = raw.trim();
        if s.is_empty() {
            return Ok(Self::All);
        }
        let bad = || {
            FieldViolation::new(
                "filter",
                r#"must be username:"prefix*", display_name:"prefix*" or username="exact""#,
            )
        };
        if s.len() > MAX_LEN {
            return Err(FieldViolation::new(
                "filter",
                "must be at most 200 characters",
            ));
        }
        let (field, op, rest) = ["username", "display_name"]
            .iter()
            .find_map(|f| {
                let rest = s.strip_prefix(f)?.trim_start();
                let op = rest.chars().next()?;
                Some((*f, op, rest[op.len_utf8()..].trim()))
            })
            .ok_or_else(bad)?;
        let value = rest
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .filter(|v| !v.contains('"'))
            .ok_or_else(bad)?
            .to_lowercase();
        match (field, op) {
            ("username", '=') if !value.contains('*') => Ok(Self::UsernameIs(value)),
            (field, ':') => {
                let prefix = value
                    .strip_suffix('*')
                    .filter(|p| !p.contains('*'))
                    .ok_or_else(bad)?;
                Ok(if field == "username" {
                    Self::UsernamePrefix(prefix.to_owned())
                } else {
                    Self::DisplayNamePrefix(prefix.to_owned())
                })
            }
            _ => Err(bad()),
        }
    }
}

/// The strings starting with `prefix`, as a range in code point order: from
/// `prefix` itself up to (not including) the returned bound; `None` when no
/// string is above them all. An index on the compared text then finds them in
/// one range scan, whatever the plan's parameters.
pub fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    // Trailing U+10FFFF cannot be incremented: the bound moves one place left.
    while let Some(last) = chars.pop() {
        let next = match u32::from(last) + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammar() {
        assert_eq!(Filter::parse(""), Ok(Filter::All));
        assert_eq!(
            Filter::parse(r#"username:"Ad*""#),
            Ok(Filter::UsernamePrefix("ad".into()))
        );
        assert_eq!(
            Filter::parse(r#"username = "ada""#),
            Ok(Filter::UsernameIs("ada".into()))
        );
        assert_eq!(
            Filter::parse(r#"display_name:"Ada L*""#),
            Ok(Filter::DisplayNamePrefix("ada l".into()))
        );
        for bad in [
            "username",
            r#"email:"a*""#,
            r#"username:"a""#,
            r#"username:"a*b*""#,
            "username:a*",
            r#"display_name="x""#,
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_prefix_is_a_range() {
        assert_eq!(prefix_end("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_end("a_%").as_deref(), Some("a_&"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        assert_eq!(prefix_end(""), None);
        // Everything starting with the prefix is inside, the rest outside.
        let (lo, hi) = ("ab", prefix_end("ab").unwrap_or_default());
        for inside in ["ab", "ab\u{10FFFF}", "abzzz"] {
            assert!(inside >= lo && inside < hi.as_str(), "{inside:?}");
        }
        for outside in ["a", "aa\u{10FFFF}", "ac", "b"] {
            assert!(!(outside >= lo && outside < hi.as_str()), "{outside:?}");
        }
    }
}
