//! The audit log: every security event, with who did it, to whom, from where and
//! when. Details never hold a password, token or secret. Every stored string
//! goes through [`clean`]: bounded, and free of characters that could forge a
//! line or hide text in whatever displays the log.

mod model;
mod sql;

pub use model::*;
pub use sql::AuditSql;

use crate::access::authz::Principal;
use crate::error::AuthError;
use chrono::{DateTime, Utc};
use platform::db::Database;
use std::collections::BTreeMap;

/// Longest identifier stored (kind, actor, subject, client address, detail
/// name), in characters: longer than any legitimate one (an email is at most
/// 254, a client id 128).
pub const MAX_FIELD_CHARS: usize = 256;
/// Longest detail value stored, in characters: a role's 100 permissions fit.
pub const MAX_DETAIL_CHARS: usize = 16 * 1024;
/// Appended where a value was cut.
const CUT: char = '…';

/// `raw` as the audit log stores it: every control character (C0 with NUL, CR,
/// LF and TAB; DEL; C1 with NEL), the line and paragraph separators U+2028 and
/// U+2029, and the bidirectional formatting characters (U+061C, U+200E, U+200F,
/// U+202A to U+202E, U+2066 to U+2069) written as a visible `\u{..}` escape;
/// then cut to at most `max` characters (on a character boundary, never inside
/// an escape), ending in `…` when cut. A backslash is written `\\` so an escape
/// in the stored text always means the character was there.
pub fn clean(raw: &str, max: usize) -> String {
    let mut out = String::with_capacity(raw.len().min(max));
    // Characters written, and the length of `out` when it last had room for the mark.
    let (mut chars, mut keep) = (0, 0);
    let mut piece = String::with_capacity(10);
    for c in raw.chars() {
        piece.clear();
        match c {
            '\\' => piece.push_str(r"\\"),
            c if needs_escape(c) => piece.extend(c.escape_unicode()),
            c => piece.push(c),
        }
        let n = piece.chars().count();
        if chars + n > max {
            out.truncate(keep);
            out.push(CUT);
            return out;
        }
        out.push_str(&piece);
        chars += n;
        if chars < max {
            keep = out.len();
        }
    }
    out
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{061C}' | '\u{200E}' | '\u{200F}'
                | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// Where a request came from, as far as the service can trust it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The end client's address: the peer's, or the one a trusted proxy reported.
    pub address: Option<String>,
    /// The end client's user agent, when a trusted proxy reported it.
    pub user_agent: Option<String>,
}

/// An event being described.
#[derive(Debug, Clone)]
pub struct Event {
    record: AuditRecord,
}

impl Event {
    /// An event of `kind` (e.g. `login.failed`) at `at`.
    pub fn new(kind: &str, at: DateTime<Utc>, client: &ClientInfo) -> Self {
        Self {
            record: AuditRecord {
                id: platform::clock::time_ordered_id(),
                at,
                kind: clean(kind, MAX_FIELD_CHARS),
                actor_id: None,
                subject: None,
                client_address: client.address.as_deref().map(|a| clean(a, MAX_FIELD_CHARS)),
                details: BTreeMap::new(),
            },
        }
    }

    /// Who did it.
    pub fn actor(mut self, id: impl ToString) -> Self {
        self.record.actor_id = Some(clean(&id.to_string(), MAX_FIELD_CHARS));
        self
    }

    /// Whom or what it concerned (an email or client id of a failed attempt
    /// is the caller's text: [`clean`] bounds it).
    pub fn subject(mut self, subject: impl ToString) -> Self {
        self.record.subject = Some(clean(&subject.to_string(), MAX_FIELD_CHARS));
        self
    }

    /// A detail (never a secret).
    pub fn detail(mut self, key: &str, value: impl ToString) -> Self {
        self.record.details.insert(
            clean(key, MAX_FIELD_CHARS),
            clean(&value.to_string(), MAX_DETAIL_CHARS),
        );
        self
    }

    /// Writes the event. A failure is logged, not returned: the action it
    /// describes has already happened.
    pub async fn record(self, db: &Database) {
        if let Err(e) = platform::sql!(read(db), AuditSql::insert_audit(&self.record)) {
            tracing::error!(kind = %self.record.kind, error = %e, "audit event not recorded");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_strings_are_bounded_and_visible() {
        let long = "x".repeat(60_000);
        let cut = format!("{}…", "x".repeat(9));
        for (raw, max, stored) in [
            ("sa-AbCd_ef-0123", 256, "sa-AbCd_ef-0123"),
            ("ada@example.com", 256, "ada@example.com"),
            ("", 256, ""),
            ("sa-1\r\nkind: forged", 256, r"sa-1\u{d}\u{a}kind: forged"),
            ("a\u{85}b", 256, r"a\u{85}b"),
            ("a\u{2028}b\u{2029}c", 256, r"a\u{2028}b\u{2029}c"),
            ("nul\0", 256, r"nul\u{0}"),
            ("tab\there", 256, r"tab\u{9}here"),
            ("esc\u{1b}[31m", 256, r"esc\u{1b}[31m"),
            ("del\u{7f}", 256, r"del\u{7f}"),
            ("rtl\u{202e}gnp.exe", 256, r"rtl\u{202e}gnp.exe"),
            ("isolate\u{2066}x\u{2069}", 256, r"isolate\u{2066}x\u{2069}"),
            (r"looks\u{a}like", 256, r"looks\\u{a}like"),
            ("bücher ✓", 256, "bücher ✓"),
            // Exactly the bound: kept whole; one more: cut with the mark.
            ("xxxxxxxxxx", 10, "xxxxxxxxxx"),
            ("xxxxxxxxxxx", 10, cut.as_str()),
            (long.as_str(), 10, cut.as_str()),
            // Multi-byte characters are cut on a boundary, escapes never split.
            ("üüüüüüüüüüü", 10, "üüüüüüüüü…"),
            ("abcdefgh\n", 10, "abcdefgh…"),
            ("ab\ncdefgh", 10, r"ab\u{a}cd…"),
        ] {
            let got = clean(raw, max);
            assert_eq!(got, stored, "{raw:?}");
            assert!(got.chars().count() <= max, "{raw:?}");
        }
        assert_eq!(
            clean(&long, MAX_FIELD_CHARS).chars().count(),
            MAX_FIELD_CHARS
        );
    }

    #[test]
    fn every_field_of_an_event_goes_through_clean() {
        let client = ClientInfo {
            address: Some("203.0.113.7\n".into()),
            user_agent: None,
        };
        let hostile = format!("x\r\n{}", "y".repeat(60_000));
        let e = Event::new("login.failed\n", DateTime::<Utc>::UNIX_EPOCH, &client)
            .actor(&hostile)
            .subject(&hostile)
            .detail(&hostile, &hostile)
            .record;
        let fields = [
            e.kind,
            e.actor_id.unwrap_or_default(),
            e.subject.unwrap_or_default(),
            e.client_address.unwrap_or_default(),
        ];
        for f in fields.iter().chain(e.details.keys()) {
            assert!(f.chars().count() <= MAX_FIELD_CHARS, "{f:?}");
            assert!(!f.chars().any(needs_escape), "{f:?}");
        }
        for v in e.details.values() {
            assert!(v.chars().count() <= MAX_DETAIL_CHARS);
            assert!(!v.chars().any(needs_escape));
        }
    }

    proptest::proptest! {
        /// Whatever the text: never a panic, never over the bound, never a
        /// character that needs escaping, and text that needs nothing is kept.
        #[test]
        fn clean_is_bounded_and_visible(raw in "(?s).{0,300}", max in 1usize..300) {
            let got = clean(&raw, max);
            proptest::prop_assert!(got.chars().count() <= max);
            proptest::prop_assert!(!got.chars().any(needs_escape));
            if raw.chars().count() <= max && !raw.chars().any(|c| needs_escape(c) || c == '\\') {
                proptest::prop_assert_eq!(got, raw);
            }
        }
    }
}

crate::context::use_cases! {
    /// Reading the audit trail.
    Audit
}

impl Audit<'_> {
    /// Audit events, newest first; needs `audit:read`.
    pub async fn list_audit(
        &self,
        caller: &Principal,
        query: &crate::audit::AuditQuery,
    ) -> Result<Vec<crate::audit::AuditRecord>, AuthError> {
        self.require(caller, "audit:read", None)?;
        Ok(platform::sql!(read(&self.db), AuditSql::list_audit(query))?)
    }
}
