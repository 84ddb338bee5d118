//! Email addresses in one canonical form, so that one mailbox is one account
//! however its address is spelled. The form is what is unique, stored, compared
//! and mailed, in both services:
//!
//! - the domain is mapped with IDNA (UTS #46, strict: STD3 host names, hyphen
//!   rules, DNS lengths) to its ASCII form, so `ｅｘａｍｐｌｅ.com` (fullwidth),
//!   `EXAMPLE.com` and `example。com` are `example.com`, and `bücher.example`
//!   is `xn--bcher-kva.example`; a domain IDNA refuses is refused;
//! - the local part is printable ASCII (the dot-atom of RFC 5322: letters,
//!   digits and ``!#$%&'*+/=?^_`{|}~-``, dots not first, last or doubled), 1 to
//!   64 characters, lower-cased; a non-ASCII local part is refused (SMTPUTF8
//!   mailboxes have no single canonical spelling);
//! - at most 254 characters in all (RFC 5321's forward path), as given and
//!   in canonical form, surrounding white space ignored; input longer than
//!   1,024 bytes is refused before any work.
//!
//! The form is a fixed point: parsing a canonical address gives it back.

use super::FieldViolation;

/// RFC 5321's limit on a forward path.
const MAX_LEN: usize = 254;
const MAX_LOCAL_LEN: usize = 64;
/// Bound on the raw input in bytes, before IDNA mapping does any work on it (a
/// Unicode domain may be longer in bytes than its ASCII form, never this much).
const MAX_RAW_LEN: usize = 1024;

/// The characters of an RFC 5322 atom besides ASCII letters and digits.
const ATEXT_SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-";

/// An email address in canonical form (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Parses `raw` for the request field `field` into the canonical form.
    pub fn parse(raw: &str, field: &'static str) -> Result<Self, FieldViolation> {
        let bad = |m: &str| FieldViolation::new(field, m);
        let too_long = || bad("must be at most 254 characters");
        let s = raw.trim();
        if s.is_empty() {
            return Err(bad("is required"));
        }
        if s.len() > MAX_RAW_LEN || s.chars().count() > MAX_LEN {
            return Err(too_long());
        }
        let (local, domain) = s
            .rsplit_once('@')
            .ok_or_else(|| bad("must be an email address such as name@example.com"))?;
        let local = canonical_local(local).map_err(bad)?;
        let domain =
            canonical_domain(domain).ok_or_else(|| bad("has an invalid domain after the '@'"))?;
        let email = format!("{local}@{domain}");
        if email.len() > MAX_LEN {
            return Err(too_long());
        }
        Ok(Self(email))
    }

    /// The canonical address (ASCII).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The local part lower-cased, or why it is refused.
fn canonical_local(local: &str) -> Result<String, &'static str> {
    if !local.is_ascii() {
        return Err(
            "must have only ASCII letters, digits and !#$%&'*+/=?^_`{|}~-. before the '@' \
             (non-ASCII characters are not accepted there)",
        );
    }
    let ok = !local.is_empty()
        && local.len() <= MAX_LOCAL_LEN
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || ATEXT_SPECIALS.contains(c));
    if ok {
        Ok(local.to_ascii_lowercase())
    } else {
        Err(
            "has an invalid part before the '@' (1 to 64 of letters, digits and !#$%&'*+/=?^_`{|}~-., no leading, trailing or double dot)",
        )
    }
}

/// The domain's ASCII form (UTS #46, strict), if it is a host name of at least
/// two labels whose last is alphabetic or an A-label.
fn canonical_domain(domain: &str) -> Option<String> {
    let ascii = idna::domain_to_ascii_strict(domain).ok()?;
    let labels: Vec<&str> = ascii.split('.').collect();
    let ok = labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
        && labels.last().is_some_and(|tld| {
            tld.bytes().all(|b| b.is_ascii_alphabetic()) || tld.starts_with("xn--")
        });
    // UTS #46 has lower-cased it already.
    ok.then_some(ascii)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn canon(raw: &str) -> Result<String, FieldViolation> {
        Email::parse(raw, "email").map(|e| e.0)
    }

    #[test]
    fn normalises_case_and_space() {
        assert_eq!(
            canon("  Alice.Smith@Example.COM "),
            Ok("alice.smith@example.com".to_owned())
        );
    }

    #[test]
    fn confusable_spellings_are_one_address() {
        for spelling in [
            "alice@ｅｘａｍｐｌｅ.com",
            "alice@ＥＸＡＭＰＬＥ.ＣＯＭ",
            "alice@example。com",
            "alice@example．com",
            "ALICE@example.com",
            "alice@exa\u{AD}mple.com", // a soft hyphen, ignored by UTS #46
        ] {
            assert_eq!(
                canon(spelling),
                Ok("alice@example.com".to_owned()),
                "{spelling:?}"
            );
        }
    }

    #[test]
    fn unicode_domains_are_stored_as_a_labels() {
        assert_eq!(
            canon("Kim@Bücher.example"),
            Ok("kim@xn--bcher-kva.example".to_owned())
        );
        assert_eq!(
            canon("kim@xn--bcher-kva.example"),
            Ok("kim@xn--bcher-kva.example".to_owned())
        );
        assert_eq!(
            canon("x@пример.рф"),
            Ok("x@xn--e1afmkfd.xn--p1ai".to_owned())
        );
    }

    #[test]
    fn non_ascii_local_parts_are_refused_naming_the_field() {
        for raw in ["ａlice@example.com", "jösé@example.com", "ǅ@example.com"] {
            let e = Email::parse(raw, "new_email").unwrap_err();
            assert_eq!(e.field, "new_email");
            assert!(e.message.contains("ASCII"), "{raw:?}: {e}");
        }
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "   ",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a..b@example.com",
            ".a@example.com",
            "a.@example.com",
            "a@-example.com",
            "a@example-.com",
            "a@example..com",
            "a@example.com.",
            "a b@example.com",
            "a@exa mple.com",
            "a@example.c0m",
            "a@[127.0.0.1]",
            "a@exa_mple.com",
            "a\0@example.com",
            "a@example.com\0",
            "a\r\n@example.com",
            "a@xn--zz.com", // an A-label that is no valid Punycode
            "\"a b\"@example.com",
        ] {
            assert!(canon(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn lengths_are_bounded() {
        let local = |n: usize| format!("{}@example.com", "a".repeat(n));
        assert!(canon(&local(64)).is_ok());
        assert!(canon(&local(65)).is_err());
        let label = "a".repeat(63);
        let domain = [label.as_str(); 3].join(".") + ".com"; // 195 characters
        assert!(canon(&format!("{}@{domain}", "b".repeat(58))).is_ok()); // 254
        assert!(canon(&format!("{}@{domain}", "b".repeat(59))).is_err()); // 255
        assert!(canon(&format!("a@{}.com", "ü".repeat(600))).is_err());
        assert!(canon(&"x".repeat(100_000)).is_err());
    }

    #[test]
    fn accepts_real_world_forms() {
        for ok in [
            "a+tag@example.com",
            "o'neil@sub.example.co.uk",
            "x@xn--80ak6aa92e.com",
            "first.last@example-domain.org",
        ] {
            assert_eq!(canon(ok), Ok(ok.to_owned()), "{ok:?} refused or changed");
        }
    }

    /// Any address in the fullwidth forms of its ASCII letters.
    fn fullwidth(s: &str) -> String {
        s.chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' => {
                    char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c)
                }
                c => c,
            })
            .collect()
    }

    proptest! {
        /// Canonicalisation never panics; what it accepts is ASCII, lower-case,
        /// bounded, and a fixed point.
        #[test]
        fn canonical_form_is_ascii_bounded_and_idempotent(raw in prop_oneof![
            "(?s).{0,80}",
            "[a-zA-Z0-9.+_-]{1,20}@(?s)[^@]{1,40}",
            "[ \t]?[a-zA-Z0-9.+_'-]{1,20}@([a-zA-Zａ-ｚＡ-Ｚ0-9À-ÿß\u{AD}-]{1,12}[.。．]){1,3}[a-zA-Zａ-ｚ]{2,6}[ \t]?",
        ]) {
            if let Ok(e) = canon(&raw) {
                prop_assert!(e.is_ascii() && e.len() <= MAX_LEN, "{e:?}");
                prop_assert!(!e.chars().any(|c| c.is_ascii_uppercase() || c.is_control()));
                prop_assert_eq!(canon(&e), Ok(e.clone()));
            }
        }

        /// The fullwidth spelling of a domain is the same address.
        #[test]
        fn fullwidth_domains_are_the_ascii_ones(
            local in "[a-z0-9][a-z0-9._+-]{0,15}[a-z0-9]",
            labels in proptest::collection::vec("[a-zA-Z0-9]([a-zA-Z0-9-]{0,10}[a-zA-Z0-9])?", 1..4),
            tld in "[a-zA-Z]{2,6}",
        ) {
            let domain = format!("{}.{tld}", labels.join("."));
            if let Ok(ascii) = canon(&format!("{local}@{domain}")) {
                prop_assert_eq!(canon(&format!("{local}@{}", fullwidth(&domain))), Ok(ascii));
            }
        }
    }
}
