//! Paging for every List RPC (AIP-158): one page-size rule, fetch-one-extra to
//! know whether a next page exists, and opaque page tokens that carry the cursor
//! and the filter they were issued for, so a token cannot be replayed with
//! another filter.

use crate::validation::FieldViolation;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Longest page token accepted, so a caller cannot make us decode megabytes.
const MAX_TOKEN_LEN: usize = 1024;

/// A List RPC's page-size bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Used when the caller asks for 0.
    pub default: u32,
    /// Larger requests are clamped to this.
    pub max: u32,
}

/// One page to read: its size and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest<C> {
    size: u32,
    filter: String,
    /// The cursor after which the page starts; `None` for the first page.
    pub after: Option<C>,
}

#[derive(Serialize, Deserialize)]
struct Token<C> {
    #[serde(rename = "a")]
    after: C,
    #[serde(rename = "f")]
    filter: String,
}

impl<C: Serialize + DeserializeOwned> PageRequest<C> {
    /// Parses a request's `page_size` and `page_token`; `filter` is every
    /// request field that selects what is listed, in a stable text form.
    pub fn parse(
        page_size: i32,
        page_token: &str,
        filter: &str,
        limits: Limits,
    ) -> Result<Self, FieldViolation> {
        let size = match u32::try_from(page_size) {
            Err(_) => return Err(FieldViolation::new("page_size", "must not be negative")),
            Ok(0) => limits.default,
            Ok(n) => n.min(limits.max),
        };
        let after = if page_token.is_empty() {
            None
        } else {
            let bad = || FieldViolation::new("page_token", "is not a token this service issued");
            if page_token.len() > MAX_TOKEN_LEN {
                return Err(bad());
            }
            let bytes = URL_SAFE_NO_PAD.decode(page_token).map_err(|_| bad())?;
            let token: Token<C> = serde_json::from_slice(&bytes).map_err(|_| bad())?;
            if token.filter != filter {
                return Err(FieldViolation::new(
                    "page_token",
                    "was issued for another filter",
                ));
            }
            Some(token.after)
        };
        Ok(Self {
            size,
            filter: filter.to_owned(),
            after,
        })
    }

    /// How many rows to fetch: one more than the page, to learn whether
    /// another page follows.
    pub fn fetch(&self) -> i64 {
        i64::from(self.size) + 1
    }

    /// Cuts the fetched rows to the page and issues the next page's token
    /// (empty on the last page).
    pub fn finish<T>(&self, mut rows: Vec<T>, cursor: impl Fn(&T) -> C) -> (Vec<T>, String) {
        let size = self.size as usize;
        let more = rows.len() > size;
        rows.truncate(size);
        let next = match rows.last() {
            Some(last) if more => {
                let token = Token {
                    after: cursor(last),
                    filter: self.filter.clone(),
                };
                // Serialising plain data cannot fail.
                URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).unwrap_or_default())
            }
            _ => String::new(),
        };
        (rows, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMITS: Limits = Limits { default: 2, max: 3 };

    #[test]
    fn sizes_are_clamped_and_negative_refused() {
        let p = |n| PageRequest::<u32>::parse(n, "", "", LIMITS).map(|r| r.size);
        assert_eq!(p(0), Ok(2));
        assert_eq!(p(1), Ok(1));
        assert_eq!(p(1000), Ok(3));
        assert!(p(-1).is_err());
    }

    #[test]
    fn pages_follow_each_other_and_tokens_are_bound_to_their_filter() {
        let first = PageRequest::<u32>::parse(2, "", "f", LIMITS).unwrap();
        assert_eq!(first.fetch(), 3);
        let (rows, next) = first.finish(vec![1, 2, 3], |r| *r);
        assert_eq!(rows, [1, 2]);
        let second = PageRequest::<u32>::parse(2, &next, "f", LIMITS).unwrap();
        assert_eq!(second.after, Some(2));
        let (rows, next) = second.finish(vec![3], |r| *r);
        assert_eq!((rows, next.as_str()), (vec![3], ""));

        let replayed =
            PageRequest::<u32>::parse(2, &first.finish(vec![1, 2, 3], |r| *r).1, "g", LIMITS);
        assert!(replayed.unwrap_err().to_string().contains("another filter"));
        assert!(PageRequest::<u32>::parse(2, "garbage!", "f", LIMITS).is_err());
        assert!(PageRequest::<u32>::parse(2, &"A".repeat(2000), "f", LIMITS).is_err());
    }

    type Cursor = (i64, uuid::Uuid);

    /// The token `finish` issues for a page ending at `after` under `filter`.
    fn issued(after: Cursor, filter: &str) -> String {
        let page = PageRequest::<Cursor>::parse(1, "", filter, LIMITS).unwrap();
        page.finish(vec![after, after], |r| *r).1
    }

    proptest! {
        /// Whatever the text: never a panic; a page_token violation, or a
        /// cursor that the service would issue back as the same token.
        #[test]
        fn arbitrary_page_tokens_are_refused_or_round_trip(
            token in prop_oneof![
                "(?s).{0,200}",
                "[A-Za-z0-9_-]{0,1100}",
                proptest::collection::vec(proptest::num::u8::ANY, 0..200)
                    .prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
                ("(?s).{0,40}", "(?s).{0,20}")
                    .prop_map(|(a, f)| URL_SAFE_NO_PAD.encode(format!(r#"{{"a":{a},"f":"{f}"}}"#))),
            ],
            filter in "(?s).{0,20}",
        ) {
            match PageRequest::<Cursor>::parse(2, &token, &filter, LIMITS) {
                Err(e) => prop_assert_eq!(e.field, "page_token"),
                Ok(page) => match page.after {
                    None => prop_assert!(token.is_empty()),
                    Some(after) => {
                        let again = PageRequest::<Cursor>::parse(2, &issued(after, &filter), &filter, LIMITS);
                        prop_assert_eq!(again.map(|p| p.after), Ok(Some(after)));
                    }
                },
            }
        }

        /// Every token the service issues parses back to its cursor, and only
        /// under its own filter.
        #[test]
        fn issued_tokens_round_trip(micros in proptest::num::i64::ANY, id in proptest::num::u128::ANY, filter in "(?s).{0,100}") {
            let after = (micros, uuid::Uuid::from_u128(id));
            let token = issued(after, &filter);
            prop_assert!(token.len() <= MAX_TOKEN_LEN);
            let page = PageRequest::<Cursor>::parse(2, &token, &filter, LIMITS).map(|p| p.after);
            prop_assert_eq!(page, Ok(Some(after)));
            let other = format!("{filter}.");
            prop_assert!(PageRequest::<Cursor>::parse(2, &token, &other, LIMITS).is_err());
        }
    }
}
