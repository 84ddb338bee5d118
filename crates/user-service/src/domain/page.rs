//! Page tokens (AIP-158): opaque to callers, they carry the last id of the page
//! and the filter they were issued for, so a token cannot be replayed with
//! another filter.

use super::FieldViolation;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where the next page starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageToken {
    /// The last id of the previous page.
    #[serde(rename = "a")]
    pub after: Uuid,
    /// The filter text it belongs to.
    #[serde(rename = "f")]
    pub filter: String,
}

impl PageToken {
    /// The opaque form.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// Parses a token and checks it matches `filter`; empty means the first page.
    pub fn decode(raw: &str, filter: &str) -> Result<Option<Self>, FieldViolation> {
        if raw.is_empty() {
            return Ok(None);
        }
        let bad = || FieldViolation::new("page_token", "is not a token this service issued");
        if raw.len() > 1024 {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
        let token: Self = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if token.filter != filter.trim() {
            return Err(FieldViolation::new(
                "page_token",
                "was issued for another filter",
            ));
        }
        Ok(Some(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_filter_binding() {
        let t = PageToken {
            after: Uuid::now_v7(),
            filter: "username:\"a*\"".into(),
        };
        assert_eq!(
            PageToken::decode(&t.encode(), "username:\"a*\""),
            Ok(Some(t.clone()))
        );
        assert!(PageToken::decode(&t.encode(), "").is_err());
        assert!(PageToken::decode("garbage!", "").is_err());
        assert_eq!(PageToken::decode("", ""), Ok(None));
    }
}
