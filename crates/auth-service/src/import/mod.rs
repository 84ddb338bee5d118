//! Importing users from another identity system: one JSON object per line,
//! each checked as a registration is and stored with its password hash in the
//! format it came in (verified at login, then replaced by Argon2id). Its
//! profile reaches the User Service through the outbox, as a registration's
//! does. Lines go in batches, one transaction each; a line that cannot be
//! imported is reported with its number and skipped; a re-run skips what an
//! earlier run brought, so an interrupted import is resumed by running it again.

mod model;
mod sql;

pub use model::*;
pub use sql::ImportSql;

use crate::context::{DEFAULT_ROLE, USER_REGISTERED, UserRegistered};
use crate::credentials::{IdentitySql, NewIdentity};
use crate::crypto::{hasher::NO_PASSWORD, imported};
use crate::error::AuthError;
use crate::storage::StoreError;
use chrono::{DateTime, Utc};
use platform::ids::UserId;
use platform::outbox::{OutboxEvent, SqlOutbox};
use platform::sql::Tx;
use platform::validation::{DisplayName, Email, Username};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Lines per transaction.
const BATCH: usize = 500;
/// The longest line read; the rest of a longer one is skipped, not buffered.
const MAX_LINE_BYTES: usize = 64 * 1024;
const MAX_EXTERNAL_ID: usize = 255;
const MAX_ROLES: usize = 100;

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

/// A line ready to insert.
struct Ready {
    identity: NewIdentity,
    email_verified: bool,
    username: Option<String>,
    external_id: Option<String>,
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
        let tally = self
            .run(reader, |n, outcome| {
                if let Imported::Refused(why) = outcome {
                    bar.suspend(|| eprintln!("line {n}: {why}"));
                }
                bar.set_message(format!("{n} lines"));
                bar.tick();
            })
            .await?;
        bar.finish_and_clear();
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

    /// Imports every line of `input`; `report` hears each line's number and
    /// outcome as its batch commits. Memory stays bounded by one batch.
    pub async fn run<R: AsyncBufRead + Unpin>(
        &self,
        mut input: R,
        mut report: impl FnMut(u64, &Imported),
    ) -> Result<Tally, AuthError> {
        // Rows this run brings carry its id, telling an earlier run's (skip)
        // from an earlier line's (a duplicate in the file).
        let run = Run {
            id: platform::clock::time_ordered_id(),
            at: self.clock.now(),
        };
        let (mut tally, mut batch, mut number) = (Tally::default(), Vec::new(), 0u64);
        loop {
            let line = next_line(&mut input).await.map_err(|e| {
                AuthError::FailedPrecondition(format!("the input cannot be read: {e}"))
            })?;
            let done = line.is_none();
            if let Some(line) = line {
                number += 1;
                if !matches!(&line, Ok(text) if text.trim().is_empty()) {
                    batch.push((number, line));
                }
            }
            if batch.len() >= BATCH || (done && !batch.is_empty()) {
                for (n, outcome) in self.batch(&batch, run).await? {
                    tally.count(&outcome);
                    report(n, &outcome);
                }
                batch.clear();
                self.outbox_wake.notify_one();
            }
            if done {
                return Ok(tally);
            }
        }
    }

    /// One batch in one transaction; a registration racing a line for its
    /// address aborts it, and the batch goes again a line at a time.
    async fn batch(
        &self,
        lines: &[(u64, Result<String, String>)],
        run: Run,
    ) -> Result<Vec<(u64, Imported)>, AuthError> {
        let ready: Vec<_> = lines
            .iter()
            .map(|(n, line)| (*n, line.clone().and_then(|text| prepare(&text, run))))
            .collect();
        match self.insert_all(&ready, run).await {
            Err(AuthError::EmailTaken) => {}
            other => return other,
        }
        let mut out = Vec::with_capacity(ready.len());
        for line in ready {
            let n = line.0;
            match self.insert_all(std::slice::from_ref(&line), run).await {
                Err(AuthError::EmailTaken) => {
                    out.push((n, Imported::Refused("email already registered".into())));
                }
                other => out.extend(other?),
            }
        }
        Ok(out)
    }

    async fn insert_all(
        &self,
        lines: &[(u64, Result<Ready, String>)],
        run: Run,
    ) -> Result<Vec<(u64, Imported)>, AuthError> {
        let mut tx = self.db.write().await?;
        let mut out = Vec::with_capacity(lines.len());
        // Each role name is looked up once per batch, not once per line.
        let mut roles = std::collections::HashSet::new();
        for (n, line) in lines {
            let outcome = match line {
                Err(why) => Imported::Refused(why.clone()),
                Ok(ready) => insert(&mut tx, ready, run, &mut roles).await?,
            };
            out.push((*n, outcome));
        }
        tx.commit().await?;
        Ok(out)
    }
}

/// Checks and stores one line in the import's transaction.
async fn insert(
    tx: &mut Tx,
    line: &Ready,
    run: Run,
    known_roles: &mut std::collections::HashSet<String>,
) -> Result<Imported, AuthError> {
    let identity = &line.identity;
    let external = line.external_id.as_deref();
    if let Some((was, by)) = platform::sql!(&mut *tx, ImportSql::holder(&identity.email))? {
        return Ok(match by {
            Some(by) if by == run.id => Imported::Refused("the email is on an earlier line".into()),
            Some(_) if was.as_deref() == external => Imported::AlreadyThere,
            _ => Imported::Refused("email already registered".into()),
        });
    }
    if let Some(id) = external
        && platform::sql!(&mut *tx, ImportSql::external_id_taken(id))?
    {
        return Ok(Imported::Refused(
            "external_id was imported with another email".into(),
        ));
    }
    for role in &identity.roles {
        if known_roles.contains(role) {
            continue;
        }
        if !platform::sql!(&mut *tx, ImportSql::role_exists(role))? {
            return Ok(Imported::Refused(format!("no such role: {role}")));
        }
        known_roles.insert(role.clone());
    }
    match platform::sql!(&mut *tx, IdentitySql::insert_identity(identity)) {
        Err(StoreError::EmailTaken) => return Err(AuthError::EmailTaken),
        other => other?,
    }
    let flags = (line.email_verified, external);
    let when = (run.id, run.at);
    // An import racing this one with the same external id: the batch goes
    // again line by line, and then sees it taken.
    if !platform::sql!(&mut *tx, ImportSql::mark_imported(identity.id, flags, when))? {
        return Err(AuthError::EmailTaken);
    }
    let payload = serde_json::to_string(&UserRegistered {
        user_id: identity.id,
        email: identity.email.clone(),
        display_name: identity.display_name.clone(),
        username: line.username.clone(),
    })
    .map_err(StoreError::from)?;
    let event = OutboxEvent::new(USER_REGISTERED, identity.id.uuid(), payload, run.at);
    platform::sql!(&mut *tx, SqlOutbox::insert(&event))?;
    Ok(Imported::Added)
}

/// Parses and checks one line, as a registration checks its request.
fn prepare(text: &str, run: Run) -> Result<Ready, String> {
    let line: ImportLine =
        serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
    let email = Email::parse(&line.email, "email").map_err(|e| e.to_string())?;
    let password_hash = match line.password_hash {
        Some(hash) => {
            imported::check(&hash).map_err(|why| format!("password_hash: {why}"))?;
            hash
        }
        None => NO_PASSWORD.to_owned(),
    };
    let display_name = match &line.display_name {
        Some(name) => DisplayName::parse(name, "display_name").map_err(|e| e.to_string())?,
        None => {
            let local = email.as_str().split('@').next().unwrap_or_default();
            DisplayName::parse(local, "display_name")
                .or_else(|_| DisplayName::parse("user", "display_name"))
                .map_err(|e| e.to_string())?
        }
    };
    let username = match &line.username {
        Some(name) => Some(
            Username::parse(name, "username")
                .map_err(|e| e.to_string())?
                .as_str()
                .to_owned(),
        ),
        None => None,
    };
    if let Some(id) = &line.external_id
        && (id.is_empty() || id.len() > MAX_EXTERNAL_ID || id.chars().any(char::is_control))
    {
        return Err(format!(
            "external_id: must be 1 to {MAX_EXTERNAL_ID} visible characters"
        ));
    }
    let roles = line.roles.unwrap_or_else(|| vec![DEFAULT_ROLE.to_owned()]);
    if roles.len() > MAX_ROLES {
        return Err(format!("roles: at most {MAX_ROLES}"));
    }
    let roles = roles
        .iter()
        .map(|r| crate::access::RoleName::parse(r, "roles").map(|r| r.as_str().to_owned()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    Ok(Ready {
        identity: NewIdentity {
            id: UserId::generate(),
            email: email.as_str().to_owned(),
            display_name: display_name.as_str().to_owned(),
            password_hash,
            roles,
            created_at: line.created_at.unwrap_or(run.at),
        },
        email_verified: line.email_verified,
        username,
        external_id: line.external_id,
    })
}

/// The next line of `input` (`None` at the end), or why it is refused: a line
/// longer than [`MAX_LINE_BYTES`] is consumed without being kept.
async fn next_line<R: AsyncBufRead + Unpin>(
    input: &mut R,
) -> std::io::Result<Option<Result<String, String>>> {
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let chunk = input.fill_buf().await?;
        if chunk.is_empty() {
            if line.is_empty() && !too_long {
                return Ok(None);
            }
            break;
        }
        let (take, end) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i, true),
            None => (chunk.len(), false),
        };
        if line.len() + take <= MAX_LINE_BYTES {
            line.extend_from_slice(&chunk[..take]);
        } else {
            too_long = true;
        }
        input.consume(take + usize::from(end));
        if end {
            break;
        }
    }
    Ok(Some(if too_long {
        Err(format!("longer than {MAX_LINE_BYTES} bytes"))
    } else {
        String::from_utf8(line).map_err(|_| "not UTF-8".to_owned())
    }))
}
