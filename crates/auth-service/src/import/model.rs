//! One line of an import, and what became of it.

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// A user as another system exported it (one JSON object per line).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportLine {
    pub email: String,
    /// In its original format; absent: no password, the user must reset.
    pub password_hash: Option<String>,
    #[serde(default)]
    pub email_verified: bool,
    /// Role names; absent: the default role.
    pub roles: Option<Vec<String>>,
    pub display_name: Option<String>,
    pub username: Option<String>,
    pub created_at: Option<DateTime<Utc>>,
    /// The user's id in the system it comes from.
    pub external_id: Option<String>,
}

/// What became of one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Imported {
    /// A new identity.
    Added,
    /// Brought by an earlier run of an import: nothing changed.
    AlreadyThere,
    /// Not imported, and why.
    Refused(String),
}

/// The totals of an import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub imported: u64,
    pub skipped: u64,
    pub failed: u64,
}

impl Tally {
    /// Counts one line's outcome.
    pub fn count(&mut self, outcome: &Imported) {
        match outcome {
            Imported::Added => self.imported += 1,
            Imported::AlreadyThere => self.skipped += 1,
            Imported::Refused(_) => self.failed += 1,
        }
    }
}

/// Refused lines a [`Report`] keeps; an import of millions of bad lines
/// must not answer with millions of reasons.
pub const MAX_FAILURES: usize = 1000;

/// What an import over the admin RPC answers: the totals, and the first
/// [`MAX_FAILURES`] refused lines with their reasons.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub tally: Tally,
    /// (line number, reason), in line order.
    pub failures: Vec<(u64, String)>,
    /// Refused lines beyond those kept.
    pub failures_omitted: u64,
}

impl Report {
    /// Counts one line's outcome, keeping its reason while there is room.
    pub fn add(&mut self, line: u64, outcome: &Imported) {
        self.tally.count(outcome);
        if let Imported::Refused(why) = outcome {
            if self.failures.len() < MAX_FAILURES {
                self.failures.push((line, why.clone()));
            } else {
                self.failures_omitted += 1;
            }
        }
    }
}

/// A line checked as a registration is, ready to insert.
#[derive(Debug)]
pub(crate) struct Ready {
    pub identity: crate::credentials::NewIdentity,
    pub email_verified: bool,
    pub username: Option<String>,
    pub external_id: Option<String>,
}
