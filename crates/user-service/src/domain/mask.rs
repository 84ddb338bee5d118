//! Update masks (AIP-134): which profile fields an update changes.

use super::profile::{self, Profile};
use super::{DisplayName, FieldViolation, Username};
use std::collections::BTreeSet;

/// A field a user may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    Username,
    DisplayName,
    AvatarUrl,
    Bio,
    Locale,
    TimeZone,
}

impl Field {
    const ALL: [Field; 6] = [
        Field::Username,
        Field::DisplayName,
        Field::AvatarUrl,
        Field::Bio,
        Field::Locale,
        Field::TimeZone,
    ];

    fn path(self) -> &'static str {
        match self {
            Field::Username => "username",
            Field::DisplayName => "display_name",
            Field::AvatarUrl => "avatar_url",
            Field::Bio => "bio",
            Field::Locale => "locale",
            Field::TimeZone => "time_zone",
        }
    }

    fn request_field(self) -> &'static str {
        match self {
            Field::Username => "user.username",
            Field::DisplayName => "user.display_name",
            Field::AvatarUrl => "user.avatar_url",
            Field::Bio => "user.bio",
            Field::Locale => "user.locale",
            Field::TimeZone => "user.time_zone",
        }
    }
}

/// Output-only fields: naming them in a mask is a mistake worth explaining.
const OUTPUT_ONLY: [&str; 6] = ["name", "id", "email", "create_time", "update_time", "etag"];

/// The raw values an update carries, before validation.
#[derive(Debug, Clone, Default)]
pub struct ProfileInput {
    pub username: String,
    pub display_name: String,
    pub avatar_url: String,
    pub bio: String,
    pub locale: String,
    pub time_zone: String,
}

impl ProfileInput {
    fn value(&self, field: Field) -> &str {
        match field {
            Field::Username => &self.username,
            Field::DisplayName => &self.display_name,
            Field::AvatarUrl => &self.avatar_url,
            Field::Bio => &self.bio,
            Field::Locale => &self.locale,
            Field::TimeZone => &self.time_zone,
        }
    }
}

/// The fields to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateMask(BTreeSet<Field>);

impl UpdateMask {
    /// Parses mask paths; with no paths, every field `input` sets to a non-empty
    /// value is changed (AIP-134's implied mask).
    pub fn parse(paths: &[String], input: &ProfileInput) -> Result<Self, FieldViolation> {
        if paths.is_empty() {
            let implied: BTreeSet<Field> = Field::ALL
                .into_iter()
                .filter(|f| !input.value(*f).is_empty())
                .collect();
            if implied.is_empty() {
                return Err(FieldViolation::new(
                    "update_mask",
                    "names no field to change",
                ));
            }
            return Ok(Self(implied));
        }
        if paths.len() > 16 {
            return Err(FieldViolation::new("update_mask", "has too many paths"));
        }
        let mut fields = BTreeSet::new();
        for path in paths {
            let path = path.trim();
            if path == "*" {
                fields.extend(Field::ALL);
                continue;
            }
            let path = path.strip_prefix("user.").unwrap_or(path);
            match Field::ALL.into_iter().find(|f| f.path() == path) {
                Some(f) => {
                    fields.insert(f);
                }
                None if OUTPUT_ONLY.contains(&path) => {
                    return Err(FieldViolation::new(
                        "update_mask",
                        format!("{path:?} is output only and cannot be updated"),
                    ));
                }
                None => {
                    let known: Vec<&str> = Field::ALL.iter().map(|f| f.path()).collect();
                    return Err(FieldViolation::new(
                        "update_mask",
                        format!(
                            "unknown field {:?}; updatable fields: {}",
                            truncate(path),
                            known.join(", ")
                        ),
                    ));
                }
            }
        }
        Ok(Self(fields))
    }

    /// `current` with the masked fields replaced by `input`'s, each validated.
    pub fn apply(
        &self,
        current: &Profile,
        input: &ProfileInput,
    ) -> Result<Profile, FieldViolation> {
        let mut next = current.clone();
        for &field in &self.0 {
            let raw = input.value(field);
            let name = field.request_field();
            match field {
                Field::Username => next.username = Username::parse(raw, name)?,
                Field::DisplayName => {
                    next.display_name = DisplayName::parse(raw, name)?.as_str().to_owned();
                }
                Field::AvatarUrl => next.avatar_url = profile::avatar_url(raw, name)?,
                Field::Bio => next.bio = profile::bio(raw, name)?,
                Field::Locale => next.locale = profile::locale(raw, name)?,
                Field::TimeZone => next.time_zone = profile::time_zone(raw, name)?,
            }
        }
        Ok(next)
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn current() -> Profile {
        Profile {
            username: Username::parse("ada", "u").unwrap(),
            display_name: "Ada".into(),
            avatar_url: String::new(),
            bio: "math".into(),
            locale: "en".into(),
            time_zone: "UTC".into(),
        }
    }

    #[test]
    fn only_masked_fields_change() {
        let input = ProfileInput {
            display_name: "Countess".into(),
            bio: "ignored".into(),
            ..Default::default()
        };
        let mask = UpdateMask::parse(&["display_name".into()], &input).unwrap();
        let next = mask.apply(&current(), &input).unwrap();
        assert_eq!(next.display_name, "Countess");
        assert_eq!(next.bio, "math");
    }

    #[test]
    fn masked_empty_value_clears_the_field() {
        let input = ProfileInput::default();
        let next = UpdateMask::parse(&["bio".into()], &input)
            .unwrap()
            .apply(&current(), &input)
            .unwrap();
        assert_eq!(next.bio, "");
        let err = UpdateMask::parse(&["username".into()], &input)
            .unwrap()
            .apply(&current(), &input);
        assert_eq!(err.unwrap_err().field, "user.username");
    }

    #[test]
    fn implied_mask_and_errors() {
        let input = ProfileInput {
            locale: "fr".into(),
            ..Default::default()
        };
        let next = UpdateMask::parse(&[], &input)
            .unwrap()
            .apply(&current(), &input)
            .unwrap();
        assert_eq!((next.locale.as_str(), next.bio.as_str()), ("fr", "math"));
        assert!(UpdateMask::parse(&[], &ProfileInput::default()).is_err());
        let unknown = UpdateMask::parse(&["shoe_size".into()], &input).unwrap_err();
        assert!(unknown.message.contains("unknown field"), "{unknown}");
        assert!(
            UpdateMask::parse(&["email".into()], &input)
                .unwrap_err()
                .message
                .contains("output only")
        );
        assert!(UpdateMask::parse(&["*".into()], &input).is_ok());
    }

    proptest! {
        /// Whatever the paths: never a panic; a mask only of known fields
        /// (or `*`), and any other path refused with an `update_mask` error.
        #[test]
        fn masks_hold_only_known_fields(
            paths in proptest::collection::vec(
                prop_oneof![
                    proptest::sample::select(vec![
                        "username", "display_name", "avatar_url", "bio", "locale", "time_zone",
                        "user.bio", " locale ", "*", "email", "etag", "user.name", "User.bio",
                        "user.user.bio", "bio.x", "",
                    ]).prop_map(str::to_owned),
                    "(?s).{0,40}",
                ],
                0..20,
            ),
        ) {
            let input = ProfileInput { bio: "x".into(), ..Default::default() };
            let known = |p: &str| {
                let p = p.trim();
                p == "*" || Field::ALL.iter().any(|f| f.path() == p.strip_prefix("user.").unwrap_or(p))
            };
            match UpdateMask::parse(&paths, &input) {
                Ok(mask) => {
                    prop_assert!(paths.len() <= 16);
                    prop_assert!(paths.iter().all(|p| known(p)), "{paths:?}");
                    prop_assert!(!mask.0.is_empty());
                }
                Err(e) => {
                    prop_assert_eq!(e.field, "update_mask");
                    prop_assert!(paths.len() > 16 || !paths.iter().all(|p| known(p)));
                    prop_assert!(e.message.chars().count() < 1024);
                }
            }
        }
    }
}
