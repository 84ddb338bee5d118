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

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern.
pub fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
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
        assert_eq!(like_prefix("a_b%"), "a\\_b\\%%");
    }
}
