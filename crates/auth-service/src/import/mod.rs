//! Importing users from another identity system: one JSON object per line,
//! each checked as a registration is and stored with its password hash in the
//! format it came in (verified at login, then replaced by Argon2id). Its
//! profile reaches the User Service through the outbox, as a registration's
//! does. Lines go in batches, one transaction each; a line that cannot be
//! imported is reported with its number and skipped; a re-run skips what an
//! earlier run brought, so an interrupted import is resumed by running it again.
//! The CLI (`auth-service import FILE`) and the admin RPC (`ImportIdentities`)
//! feed the same run, each from its own [`Lines`].

mod model;
mod prepare;
mod source;
mod sql;

pub use model::*;
pub use source::{Line, Lines, MAX_LINE_BYTES, Messages};
pub use sql::ImportSql;

use crate::access::authz::Principal;
use crate::audit::ClientInfo;
use crate::context::{USER_REGISTERED, UserRegistered};
use crate::error::AuthError;
use crate::storage::StoreError;
use chrono::{DateTime, Utc};
use platform::ids::UserId;
use platform::outbox::{OutboxEvent, SqlOutbox};
use prepare::prepare;
use std::collections::{BTreeSet, HashMap, HashSet};
use uuid::Uuid;

/// Lines per transaction.
const BATCH: usize = 500;
/// Lines one message of the RPC may carry: a batch's worth.
pub const MAX_LINES_PER_MESSAGE: usize = BATCH;
/// Imports over the RPC one replica runs at once: each holds a database
/// connection and a writer for its batches, and logins need the rest.
pub const MAX_RUNNING: usize = 2;
/// Importing users over the admin RPC.
const IDENTITIES_IMPORT: &str = "identities:import";

crate::context::use_cases! {
    /// Importing users from another system.
    Import
}

/// One run of an import.
#[derive(Debug, Clone, Copy)]
struct Run {
    id: uuid::Uuid,
    at: DateTime<Utc>,
}

impl Import<'_> {
    /// Imports `path` (`-`: standard input), reporting refused lines on
    /// standard error, a progress bar on a terminal, and the totals at the end.
    pub async fn from_file(&self, path: &str) -> anyhow::Result<Tally> {
        use std::io::IsTerminal as _;
        let input: Box<dyn tokio::io::AsyncRead + Unpin + Send> = match path {
            "-" => Box::new(tokio::io::stdin()),
            file => Box::new(tokio::fs::File::open(file).await?),
        };
        let bar = match std::io::stderr().is_terminal() {
            true => indicatif::ProgressBar::new_spinner(),
            false => indicatif::ProgressBar::hidden(),
        };
        let started = platform::clock::monotonic_now();
        let reader = tokio::io::BufReader::with_capacity(1 << 16, input);
        let mut tally = Tally::default();
        let done = self
            .run(reader, |n, outcome| {
                tally.count(outcome);
                if let Imported::Refused(why) = outcome {
                    bar.suspend(|| eprintln!("line {n}: {why}"));
                }
                bar.set_message(format!("{n} lines"));
                bar.tick();
            })
            .await;
        bar.finish_and_clear();
        self.audit_run("command-line", &ClientInfo::default(), tally, done.is_ok())
            .await;
        done?;
        let seconds = started.elapsed().as_secs_f64().max(1e-3);
        let lines = tally.imported + tally.skipped + tally.failed;
        eprintln!(
            "imported {}, skipped {} (imported before), failed {}; {:.0} lines/s",
            tally.imported,
            tally.skipped,
            tally.failed,
            lines as f64 / seconds
        );
        Ok(tally)
    }

    /// The admin RPC: imports the lines `caller` streams, as the CLI imports
    /// a file, answering the totals and the first refused lines.
    #[tracing::instrument(skip_all, fields(actor = %caller.subject_id))]
    pub async fn import_lines(
        &self,
        caller: &Principal,
        lines: impl Lines,
        client: &ClientInfo,
    ) -> Result<Report, AuthError> {
        self.require(caller, IDENTITIES_IMPORT, None)?;
        let Ok(_running) = self.imports.clone().try_acquire_owned() else {
            return Err(AuthError::ResourceExhausted(format!(
                "{MAX_RUNNING} imports are running on this replica; retry when one ends"
            )));
        };
        let mut report = Report::default();
        let done = self.run(lines, |n, outcome| report.add(n, outcome)).await;
        let tally = report.tally;
        self.audit_run(caller.subject_id, client, tally, done.is_ok())
            .await;
        tracing::info!(
            imported = tally.imported,
            skipped = tally.skipped,
            failed = tally.failed,
            "import over the RPC ended"
        );
        done.map(|_| report)
    }

    /// Records who imported how many, also when the run stopped part way
    /// (what its committed batches brought stays).
    async fn audit_run(
        &self,
        actor: impl ToString,
        client: &ClientInfo,
        tally: Tally,
        completed: bool,
    ) {
        self.audit(
            self.event("users.imported", client)
                .actor(actor)
                .detail("imported", tally.imported)
                .detail("skipped", tally.skipped)
                .detail("failed", tally.failed)
                .detail("completed", completed),
        )
        .await;
    }

    /// Imports every line of `input`; `report` hears each line's number and
    /// outcome as its batch commits. Memory stays bounded by one batch. When
    /// anything was imported, the run ends with fresh planner statistics of
    /// what it filled, even when it stopped part way.
    pub async fn run(
        &self,
        input: impl Lines,
        mut report: impl FnMut(u64, &Imported),
    ) -> Result<Tally, AuthError> {
        let mut tally = Tally::default();
        let done = self
            .batches(input, |n, outcome| {
                tally.count(outcome);
                report(n, outcome);
            })
            .await;
        if tally.imported > 0
            && let Err(e) = platform::sql!(write(&self.db), ImportSql::analyze())
        {
            // Only the plans suffer until autovacuum's own ANALYZE: the
            // import itself is committed.
            tracing::warn!(error = %e, "ANALYZE after the import failed");
        }
        done.map(|()| tally)
    }

    async fn batches(
        &self,
        mut input: impl Lines,
        mut report: impl FnMut(u64, &Imported),
    ) -> Result<(), AuthError> {
        // Rows this run brings carry its id, telling an earlier run's (skip)
        // from an earlier line's (a duplicate in the file).
        let run = Run {
            id: platform::clock::time_ordered_id(),
            at: self.clock.now(),
        };
        let (mut batch, mut number) = (Vec::new(), 0u64);
        loop {
            let line = input.next_line().await?;
            let done = line.is_none();
            if let Some(line) = line {
                number += 1;
                if !matches!(&line, Ok(text) if text.trim().is_empty()) {
                    batch.push((number, line));
                }
            }
            if batch.len() >= BATCH || (done && !batch.is_empty()) {
                for (n, outcome) in self.batch(std::mem::take(&mut batch), run).await? {
                    report(n, &outcome);
                }
                self.outbox_wake.notify_one();
            }
            if done {
                return Ok(());
            }
        }
    }

    /// One batch in one transaction; a registration or another import racing
    /// a line for its address or external id spoils it, and the batch goes
    /// again a line at a time.
    async fn batch(
        &self,
        lines: Vec<(u64, Result<String, String>)>,
        run: Run,
    ) -> Result<Vec<(u64, Imported)>, AuthError> {
        let ready: Vec<_> = lines
            .into_iter()
            .map(|(n, line)| (n, line.and_then(|text| prepare(&text, run.at))))
            .collect();
        if let Some(done) = self.insert_all(&ready, run).await? {
            return Ok(done);
        }
        let mut out = Vec::with_capacity(ready.len());
        for line in &ready {
            match self.insert_all(std::slice::from_ref(line), run).await? {
                Some(done) => out.extend(done),
                None => out.push((line.0, Imported::Refused("email already registered".into()))),
            }
        }
        Ok(out)
    }

    /// Decides every line of a batch from three reads (who holds its
    /// addresses, which of its external ids are taken, which of its roles
    /// exist) and writes what it accepts in three multi-row inserts; `None`
    /// when a concurrent writer took an address or external id meanwhile.
    async fn insert_all(
        &self,
        lines: &[(u64, Result<Ready, String>)],
        run: Run,
    ) -> Result<Option<Vec<(u64, Imported)>>, AuthError> {
        let ready: Vec<&Ready> = lines.iter().filter_map(|(_, l)| l.as_ref().ok()).collect();
        let emails: Vec<&str> = ready.iter().map(|r| r.identity.email.as_str()).collect();
        let external: Vec<&str> = ready
            .iter()
            .filter_map(|r| r.external_id.as_deref())
            .collect();
        let roles: BTreeSet<&str> = ready
            .iter()
            .flat_map(|r| r.identity.roles.iter().map(String::as_str))
            .collect();
        let roles: Vec<&str> = roles.into_iter().collect();

        let mut tx = self.db.write().await?;
        let holders: HashMap<String, (Option<String>, Option<Uuid>)> =
            platform::sql!(&mut tx, ImportSql::holders(&emails))?
                .into_iter()
                .map(|(email, was, by)| (email, (was, by)))
                .collect();
        let taken = platform::sql!(&mut tx, ImportSql::external_ids_taken(&external))?;
        let known = platform::sql!(&mut tx, ImportSql::existing_roles(&roles))?;
        let mut seen = Seen {
            emails: HashSet::new(),
            external_ids: taken.iter().map(String::as_str).collect(),
            roles: known.iter().map(String::as_str).collect(),
        };
        let mut accepted = Vec::with_capacity(ready.len());
        let mut out = Vec::with_capacity(lines.len());
        for (n, line) in lines {
            let outcome = match line {
                Err(why) => Imported::Refused(why.clone()),
                Ok(line) => {
                    let holder = holders.get(&line.identity.email);
                    let outcome = decide(line, holder, &seen, run);
                    if outcome == Imported::Added {
                        seen.claim(line);
                        accepted.push(line);
                    }
                    outcome
                }
            };
            out.push((*n, outcome));
        }
        if !accepted.is_empty() {
            let when = (run.id, run.at);
            if !platform::sql!(&mut tx, ImportSql::insert_identities(&accepted, when))? {
                return Ok(None);
            }
            let pairs: Vec<(UserId, &str)> = accepted
                .iter()
                .flat_map(|r| {
                    r.identity
                        .roles
                        .iter()
                        .map(|role| (r.identity.id, role.as_str()))
                })
                .collect();
            platform::sql!(&mut tx, ImportSql::insert_roles(&pairs))?;
            let events = accepted
                .iter()
                .map(|line| registered(line, run.at))
                .collect::<Result<Vec<_>, _>>()?;
            platform::sql!(&mut tx, SqlOutbox::insert_all(&events))?;
        }
        tx.commit().await?;
        Ok(Some(out))
    }
}

/// What a batch has accepted so far, beside what the database holds: a later
/// line meets an earlier one's address and external id as if it were stored.
struct Seen<'a> {
    /// Addresses of the batch's accepted lines.
    emails: HashSet<&'a str>,
    /// External ids stored or accepted.
    external_ids: HashSet<&'a str>,
    /// Role names that exist.
    roles: HashSet<&'a str>,
}

impl<'a> Seen<'a> {
    fn claim(&mut self, line: &'a Ready) {
        self.emails.insert(&line.identity.email);
        if let Some(id) = &line.external_id {
            self.external_ids.insert(id);
        }
    }
}

/// The rule for one checked line, in this order: its address (held by an
/// identity, or by an earlier line of the batch), its external id, its roles.
/// An address held by an earlier run's import of the same external id is
/// that user, imported before: skipped, so a re-run resumes an import.
fn decide(
    line: &Ready,
    holder: Option<&(Option<String>, Option<Uuid>)>,
    seen: &Seen<'_>,
    run: Run,
) -> Imported {
    let external = line.external_id.as_deref();
    if let Some((was, by)) = holder {
        return match by {
            Some(by) if *by == run.id => {
                Imported::Refused("the email is on an earlier line".into())
            }
            Some(_) if was.as_deref() == external => Imported::AlreadyThere,
            _ => Imported::Refused("email already registered".into()),
        };
    }
    if seen.emails.contains(line.identity.email.as_str()) {
        return Imported::Refused("the email is on an earlier line".into());
    }
    if external.is_some_and(|id| seen.external_ids.contains(id)) {
        return Imported::Refused("external_id was imported with another email".into());
    }
    if let Some(role) = line
        .identity
        .roles
        .iter()
        .find(|r| !seen.roles.contains(r.as_str()))
    {
        return Imported::Refused(format!("no such role: {role}"));
    }
    Imported::Added
}

/// The event that brings a new identity's profile to the User Service.
fn registered(line: &Ready, at: DateTime<Utc>) -> Result<OutboxEvent, StoreError> {
    let identity = &line.identity;
    let payload = serde_json::to_string(&UserRegistered {
        user_id: identity.id,
        email: identity.email.clone(),
        display_name: identity.display_name.clone(),
        username: line.username.clone(),
    })?;
    Ok(OutboxEvent::new(
        USER_REGISTERED,
        identity.id.uuid(),
        payload,
        at,
    ))
}
