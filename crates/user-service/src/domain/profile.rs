//! The editable part of a profile and the rules of each field.

use super::{FieldViolation, Username};
use platform::ids::UserId;
use std::str::FromStr;

const MAX_URL: usize = 2048;
const MAX_BIO: usize = 500;
const MAX_LOCALE: usize = 35;
const MAX_TIME_ZONE: usize = 64;

/// The fields a user edits, each valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub username: Username,
    pub display_name: String,
    pub avatar_url: String,
    pub bio: String,
    pub locale: String,
    pub time_zone: String,
}

/// The id in a resource name `users/{id}`.
pub fn user_id_from_name(name: &str, field: &'static str) -> Result<UserId, FieldViolation> {
    if name.is_empty() {
        return Err(FieldViolation::new(field, "is required, as users/{id}"));
    }
    name.strip_prefix("users/")
        .and_then(|id| UserId::parse(id, field).ok())
        .ok_or_else(|| FieldViolation::new(field, "must be users/{id} with a UUID id"))
}

/// An avatar URL: empty, or an absolute http(s) URL without credentials.
pub fn avatar_url(raw: &str, field: &'static str) -> Result<String, FieldViolation> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(String::new());
    }
    if s.len() > MAX_URL {
        return Err(FieldViolation::new(
            field,
            "must be at most 2048 characters",
        ));
    }
    let url = url::Url::parse(s).map_err(|_| {
        FieldViolation::new(
            field,
            "must be an absolute URL such as https://example.com/a.png",
        )
    })?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err(FieldViolation::new(
            field,
            "must be an http or https URL with a host",
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FieldViolation::new(field, "must not contain credentials"));
    }
    Ok(url.to_string())
}

/// A bio: at most 500 characters; line breaks and tabs allowed, other controls not.
pub fn bio(raw: &str, field: &'static str) -> Result<String, FieldViolation> {
    if raw.chars().count() > MAX_BIO {
        return Err(FieldViolation::new(field, "must be at most 500 characters"));
    }
    if raw
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(FieldViolation::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(raw.trim().to_owned())
}

/// A BCP 47 language tag, or empty.
pub fn locale(raw: &str, field: &'static str) -> Result<String, FieldViolation> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(String::new());
    }
    let bad = || {
        FieldViolation::new(
            field,
            "must be a BCP 47 language tag such as en, pt-BR or zh-Hant-TW",
        )
    };
    if s.len() > MAX_LOCALE {
        return Err(bad());
    }
    let tag = language_tags::LanguageTag::parse(s).map_err(|_| bad())?;
    tag.validate().map_err(|_| bad())?;
    Ok(tag.as_str().to_owned())
}

/// An IANA time zone name, or empty.
pub fn time_zone(raw: &str, field: &'static str) -> Result<String, FieldViolation> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(String::new());
    }
    if s.len() > MAX_TIME_ZONE {
        return Err(FieldViolation::new(
            field,
            "must be an IANA time zone such as Europe/Paris",
        ));
    }
    chrono_tz::Tz::from_str(s)
        .map(|tz| tz.name().to_owned())
        .map_err(|_| FieldViolation::new(field, "must be an IANA time zone such as Europe/Paris"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let id = UserId::generate();
        assert_eq!(user_id_from_name(&format!("users/{id}"), "name"), Ok(id));
        assert!(user_id_from_name(&id.to_string(), "name").is_err());
        assert!(user_id_from_name("users/nope", "name").is_err());
        assert!(user_id_from_name("", "name").is_err());
    }

    #[test]
    fn urls() {
        assert!(avatar_url("https://cdn.example.com/a.png", "u").is_ok());
        assert_eq!(avatar_url("", "u"), Ok(String::new()));
        for bad in [
            "javascript:alert(1)",
            "ftp://x.org/a",
            "/relative.png",
            "https://user:pw@x.org/",
            "not a url",
        ] {
            assert!(avatar_url(bad, "u").is_err(), "{bad:?} accepted");
        }
        assert!(avatar_url(&format!("https://x.org/{}", "a".repeat(2100)), "u").is_err());
    }

    #[test]
    fn locales_and_zones() {
        for ok in ["en", "pt-BR", "zh-Hant-TW", "de-CH-1996"] {
            assert!(locale(ok, "l").is_ok(), "{ok} refused");
        }
        for bad in ["english", "en_US", "12", "x-"] {
            assert!(locale(bad, "l").is_err(), "{bad} accepted");
        }
        assert_eq!(
            time_zone("Europe/Paris", "t"),
            Ok("Europe/Paris".to_owned())
        );
        assert!(time_zone("UTC", "t").is_ok());
        assert!(time_zone("Mars/Olympus", "t").is_err());
    }

    #[test]
    fn text_bounds() {
        assert!(bio(&"x".repeat(501), "b").is_err());
        assert!(bio("line one\nline two", "b").is_ok());
        assert!(bio("bell\u{7}", "b").is_err());
    }
}
