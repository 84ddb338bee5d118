//! Email addresses: syntax checked, normalised to lower case so that uniqueness is
//! case-insensitive (as Keycloak and most identity providers treat them).

use super::FieldViolation;

/// RFC 5321's limit on a forward path.
const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;

/// A syntactically valid, lower-cased email address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Parses `raw` (surrounding white space ignored) for the request field `field`.
    pub fn parse(raw: &str, field: &'static str) -> Result<Self, FieldViolation> {
        let bad = |m: &str| FieldViolation::new(field, m);
        let s = raw.trim();
        if s.is_empty() {
            return Err(bad("is required"));
        }
        if s.len() > MAX_LEN {
            return Err(bad("must be at most 254 characters"));
        }
        let (local, domain) = s
            .rsplit_once('@')
            .ok_or_else(|| bad("must be an email address such as name@example.com"))?;
        if local.is_empty() || local.len() > MAX_LOCAL_LEN || !local_part_ok(local) {
            return Err(bad("has an invalid part before the '@'"));
        }
        if !domain_ok(domain) {
            return Err(bad("has an invalid domain after the '@'"));
        }
        Ok(Self(s.to_lowercase()))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The dot-atom form of RFC 5322, without quoted strings (which no real provider issues).
fn local_part_ok(local: &str) -> bool {
    const SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-.";
    !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || SPECIALS.contains(c))
}

/// A host name of at least two labels (IDNs in Unicode form accepted).
fn domain_ok(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.chars().count() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.chars().all(char::is_alphabetic) || tld.starts_with("xn--"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_and_space() {
        let e = Email::parse("  Alice.Smith@Example.COM ", "email");
        assert_eq!(e.map(|e| e.0), Ok("alice.smith@example.com".to_owned()));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a..b@example.com",
            ".a@example.com",
            "a@-example.com",
            "a@example..com",
            "a b@example.com",
            "a@example.c0m",
        ] {
            assert!(Email::parse(bad, "email").is_err(), "{bad:?} accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long, "email").is_err());
    }

    #[test]
    fn accepts_real_world_forms() {
        for ok in [
            "a+tag@example.com",
            "o'neil@sub.example.co.uk",
            "x@xn--80ak6aa92e.com",
        ] {
            assert!(Email::parse(ok, "email").is_ok(), "{ok:?} refused");
        }
    }
}
