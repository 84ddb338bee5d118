//! Throttling of every credential an attacker can guess, shared by every
//! replica through counters in the database. An attempt is reserved (counted)
//! before its secret is checked and given back only on success, so concurrent
//! attempts cannot share one reading.
//!
//! Each factor has its own counter and only a right answer *for that factor*
//! resets it: a right password clears the password's failures, never the
//! second factor's, so logging in again between code guesses gains nothing.
//!
//! - The password (per account, by address): from the 5th consecutive failure
//!   on, each attempt waits 1 s, 2 s, 4 s, ... (capped at 15 minutes) after
//!   the last failure; forgotten a day after the first.
//! - The second factor (per account, kept on the factor itself, never
//!   forgotten by time): the same backoff, and after
//!   [`SECOND_FACTOR_LOCKOUT`] wrong codes in a row the authenticator app's
//!   codes are refused outright, well before NIST SP 800-63B's 100; a
//!   recovery code (80 bits, not guessable) or an administrator's reset
//!   unlocks it.
//! - A client address: 30 failed attempts a minute across all accounts and
//!   factors, so one host cannot spray many accounts; and apart, 30 refused
//!   service-account client secrets a minute, so refusals cannot fill the
//!   audit trail (apart, so users failing logins behind one NAT never keep a
//!   service there from its tokens).

mod model;
mod sql;

pub use model::*;
pub use sql::ThrottleSql;

use crate::mfa::MfaSql;
use crate::mfa::TotpRecord;
use crate::storage::StoreError;
use chrono::{DateTime, Duration, Utc};
use platform::db::Database;
use platform::ids::UserId;
use platform::outbox::{OutboxEvent, SqlOutbox};
use platform::sql::Tx;

/// How a credential's consecutive failures slow its guesser down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Failures allowed before backoff starts.
    pub free_failures: i64,
    /// The longest wait between attempts.
    pub max_delay: Duration,
}

/// Passwords, per account.
pub const PASSWORD: Policy = Policy {
    free_failures: 4,
    max_delay: Duration::minutes(15),
};

/// Second-factor codes, per account.
pub const SECOND_FACTOR: Policy = Policy {
    free_failures: 4,
    max_delay: Duration::minutes(15),
};

/// Wrong codes in a row after which the authenticator app's codes are refused.
pub const SECOND_FACTOR_LOCKOUT: i64 = 20;

/// Password failures are forgotten a day after the first.
pub const ACCOUNT_WINDOW: Duration = Duration::hours(24);
/// Failed attempts a client address may make per window.
pub const ADDRESS_LIMIT: i64 = 30;
const ADDRESS_WINDOW: Duration = Duration::minutes(1);

impl Policy {
    /// How long until a credential with counter `c` may be tried again, if it must wait.
    pub fn wait(&self, c: &Counter, now: DateTime<Utc>) -> Option<Duration> {
        if c.count <= self.free_failures {
            return None;
        }
        let exp = (c.count - self.free_failures - 1).clamp(0, 20) as u32;
        let delay = Duration::seconds(1i64 << exp).min(self.max_delay);
        let until = c.updated_at + delay;
        (until > now).then(|| until - now)
    }

    /// Whether a reserved attempt may go ahead: `seen` is the counter read
    /// before the reservation, `after` the counter the reservation left.
    /// Attempts within the free failures always may; beyond them, only an
    /// attempt no other attempt raced since `seen` (whose wait had passed) may.
    pub fn admits(
        &self,
        seen: Option<&Counter>,
        after: &Counter,
        now: DateTime<Utc>,
    ) -> Option<Duration> {
        let before = after.count - 1;
        if before <= self.free_failures || seen.is_some_and(|s| s.count == before) {
            return None;
        }
        self.wait(
            &Counter {
                count: before,
                window_start: after.window_start,
                updated_at: now,
            },
            now,
        )
    }
}

/// Whether the authenticator app's codes are refused for a factor with `failures`.
pub fn codes_locked(failures: i64) -> bool {
    failures >= SECOND_FACTOR_LOCKOUT
}

/// How long until an address with `c` may try again, if it must wait.
pub fn address_wait(c: &Counter, now: DateTime<Utc>) -> Option<Duration> {
    let until = c.window_start + ADDRESS_WINDOW;
    (c.count >= ADDRESS_LIMIT && until > now).then(|| until - now)
}

fn account_key(email: &str) -> String {
    format!("login:account:{email}")
}

fn address_key(address: &str) -> String {
    format!("login:address:{address}")
}

fn client_address_key(address: &str) -> String {
    format!("client:address:{address}")
}

/// Whether a reserved attempt keeps an address within its limit.
pub fn address_admits(after: &Counter, now: DateTime<Utc>) -> Option<Duration> {
    within(after, ADDRESS_LIMIT, ADDRESS_WINDOW, now)
}

/// How long until a counter reserved past `limit` in its `window` may go on.
fn within(after: &Counter, limit: i64, window: Duration, now: DateTime<Utc>) -> Option<Duration> {
    let until = after.window_start + window;
    (after.count > limit && until > now).then(|| until - now)
}

/// The window of [`Throttle::per_address`] limits.
pub const PER_ADDRESS_WINDOW: Duration = Duration::minutes(1);

/// The throttle over the service's counters.
pub struct Throttle<'a> {
    pub db: &'a Database,
}

/// Whose failures an attempt counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Guessed {
    /// An account's password (the counter's key).
    Password(String),
    /// An identity's second factor.
    SecondFactor(UserId),
}

/// An attempt counted as a failure until it is known to be a success.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a successful attempt must be released"]
pub struct Reserved {
    guessed: Guessed,
    address: Option<String>,
    /// The credential's failures after this attempt, counting it.
    pub failures: i64,
}

impl Throttle<'_> {
    /// Refuses while the account's password or the address must wait;
    /// otherwise reserves the attempt (counted as a failure) before the
    /// password is checked, so concurrent attempts cannot all pass on the same
    /// reading of the counters.
    pub async fn reserve(
        &self,
        email: &str,
        address: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Result<Reserved, Duration>, StoreError> {
        let account = account_key(email);
        let address = address.map(address_key);
        // A cheap read first: an attempt already throttled costs no write.
        let seen = platform::sql!(read(self.db), ThrottleSql::counter(&account))?;
        let wait = seen.as_ref().and_then(|c| PASSWORD.wait(c, now));
        if let Some(wait) = wait.max(self.address_wait(address.as_deref(), now).await?) {
            return Ok(Err(wait));
        }
        let mut keys = vec![(account.as_str(), ACCOUNT_WINDOW)];
        if let Some(key) = &address {
            keys.push((key.as_str(), ADDRESS_WINDOW));
        }
        let after = platform::sql!(write(self.db), ThrottleSql::reserve(&keys, now))?;
        let mut wait = after
            .first()
            .and_then(|c| PASSWORD.admits(seen.as_ref(), c, now));
        if let Some(c) = after.get(1) {
            wait = wait.max(address_admits(c, now));
        }
        if let Some(wait) = wait {
            return Ok(Err(wait));
        }
        Ok(Ok(Reserved {
            guessed: Guessed::Password(account),
            address,
            failures: after.first().map_or(0, |c| c.count),
        }))
    }

    /// The same for a code of `user_id`'s second factor, as `factor` was read
    /// before the attempt: its own counter, never the password's.
    /// `locked_notice` is recorded by the attempt that locks the codes.
    pub async fn reserve_code(
        &self,
        user_id: UserId,
        (factor, locked_notice): (&TotpRecord, Option<&OutboxEvent>),
        address: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Result<Reserved, Duration>, StoreError> {
        let address = address.map(address_key);
        let seen = factor.failed_at.map(|at| Counter {
            count: factor.failures,
            window_start: at.0,
            updated_at: at.0,
        });
        let wait = seen.as_ref().and_then(|c| SECOND_FACTOR.wait(c, now));
        if let Some(wait) = wait.max(self.address_wait(address.as_deref(), now).await?) {
            return Ok(Err(wait));
        }
        // The attempt that locks the codes tells the owner, in its transaction.
        let mut tx = self.db.write().await?;
        let after = platform::sql!(&mut tx, MfaSql::reserve_failure(user_id, now))?;
        if let Some(notice) = locked_notice
            && after
                .as_ref()
                .is_some_and(|c| c.count == SECOND_FACTOR_LOCKOUT)
        {
            platform::sql!(&mut tx, SqlOutbox::insert(notice))?;
        }
        tx.commit().await?;
        let mut wait = after
            .as_ref()
            .and_then(|c| SECOND_FACTOR.admits(seen.as_ref(), c, now));
        if let Some(key) = &address {
            let counted = platform::sql!(
                write(self.db),
                ThrottleSql::reserve(&[(key, ADDRESS_WINDOW)], now)
            )?;
            wait = wait.max(counted.first().and_then(|c| address_admits(c, now)));
        }
        if let Some(wait) = wait {
            return Ok(Err(wait));
        }
        Ok(Ok(Reserved {
            guessed: Guessed::SecondFactor(user_id),
            address,
            failures: after.map_or(0, |c| c.count),
        }))
    }

    /// A recovery-code attempt for `user_id`'s second factor: counted against
    /// the client address only (80-bit codes are not guessable, and a
    /// password holder must not be able to keep the owner's code out); a
    /// right one still clears the factor's failures.
    pub async fn reserve_address(
        &self,
        user_id: UserId,
        address: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Result<Reserved, Duration>, StoreError> {
        let address = address.map(address_key);
        if let Some(wait) = self.address_wait(address.as_deref(), now).await? {
            return Ok(Err(wait));
        }
        if let Some(key) = &address {
            let counted = platform::sql!(
                write(self.db),
                ThrottleSql::reserve(&[(key, ADDRESS_WINDOW)], now)
            )?;
            if let Some(wait) = counted.first().and_then(|c| address_admits(c, now)) {
                return Ok(Err(wait));
            }
        }
        Ok(Ok(Reserved {
            guessed: Guessed::SecondFactor(user_id),
            address,
            failures: 0,
        }))
    }

    /// Before a service account's client secret is checked: how long the
    /// client address must still wait, if it must. Secrets are 256 bits, not
    /// guessable, so nothing is reserved (a success, the common case, costs
    /// no write) and a burst at once may overshoot the limit by what is in
    /// flight; a refusal is counted by [`Throttle::client_refused`].
    pub async fn client_wait(
        &self,
        address: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<Duration>, StoreError> {
        self.address_wait(address.map(client_address_key).as_deref(), now)
            .await
    }

    /// A client secret was refused: one failure of the address's budget for
    /// client secrets.
    pub async fn client_refused(
        &self,
        address: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if let Some(key) = address.map(client_address_key) {
            platform::sql!(
                write(self.db),
                ThrottleSql::reserve(&[(&key, ADDRESS_WINDOW)], now)
            )?;
        }
        Ok(())
    }

    /// How long the client address must still wait, if it must.
    async fn address_wait(
        &self,
        key: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Option<Duration>, StoreError> {
        let Some(key) = key else {
            return Ok(None);
        };
        Ok(platform::sql!(read(self.db), ThrottleSql::counter(key))?
            .and_then(|c| address_wait(&c, now)))
    }

    /// Counts one `action` by `address` (registrations: they cost a hash, like a
    /// login) and refuses beyond `limit` a minute, so one client cannot fill
    /// the hash pool and starve everyone's logins. No address, no limit.
    pub async fn per_address(
        &self,
        action: &str,
        address: Option<&str>,
        limit: u32,
        now: DateTime<Utc>,
    ) -> Result<Result<(), Duration>, StoreError> {
        let Some(address) = address else {
            return Ok(Ok(()));
        };
        self.limit(
            &format!("{action}:address:{address}"),
            limit,
            PER_ADDRESS_WINDOW,
            now,
        )
        .await
    }

    /// Counts one use of `key` and refuses beyond `limit` per `window` (reset
    /// requests per account, verification mails per account, ...).
    pub async fn limit(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<Result<(), Duration>, StoreError> {
        let after = platform::sql!(write(self.db), ThrottleSql::reserve(&[(key, window)], now))?;
        Ok(
            match after
                .first()
                .and_then(|c| within(c, i64::from(limit), window, now))
            {
                Some(wait) => Err(wait),
                None => Ok(()),
            },
        )
    }

    /// Forgets an account's failed passwords (its password was just reset by
    /// someone who proved they own the address). The second factor's
    /// failures stay: a reset proves the address, not the factor.
    pub async fn forgive(&self, email: &str) -> Result<(), StoreError> {
        platform::sql!(
            write(self.db),
            ThrottleSql::release(Some(&account_key(email)), None)
        )
    }

    /// The attempt succeeded: the credential's failures are forgotten and the
    /// address gets its reservation back.
    pub async fn succeeded(&self, reserved: Reserved) -> Result<(), StoreError> {
        let mut tx = self.db.write().await?;
        Self::succeeded_in(&mut tx, reserved).await?;
        Ok(tx.commit().await?)
    }

    /// [`Throttle::succeeded`] in the transaction of the success's effect.
    pub async fn succeeded_in(tx: &mut Tx, reserved: Reserved) -> Result<(), StoreError> {
        let address = reserved.address.as_deref();
        let key = match &reserved.guessed {
            Guessed::Password(key) => Some(key.as_str()),
            Guessed::SecondFactor(user_id) => {
                platform::sql!(&mut *tx, MfaSql::clear_factor_failures(*user_id))?;
                None
            }
        };
        platform::sql!(&mut *tx, ThrottleSql::release(key, address))
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    fn counter(count: i64, at: DateTime<Utc>) -> Counter {
        Counter {
            count,
            window_start: at,
            updated_at: at,
        }
    }

    #[test]
    fn accounts_back_off_exponentially_and_cap() {
        let t = Utc::now();
        assert_eq!(PASSWORD.wait(&counter(4, t), t), None);
        assert_eq!(PASSWORD.wait(&counter(5, t), t), Some(Duration::seconds(1)));
        assert_eq!(PASSWORD.wait(&counter(7, t), t), Some(Duration::seconds(4)));
        assert_eq!(PASSWORD.wait(&counter(60, t), t), Some(PASSWORD.max_delay));
        assert_eq!(
            PASSWORD.wait(&counter(5, t), t + Duration::seconds(2)),
            None,
            "the wait passes"
        );
    }

    #[test]
    fn addresses_are_limited_per_window() {
        let t = Utc::now();
        assert_eq!(address_wait(&counter(29, t), t), None);
        assert_eq!(
            address_wait(&counter(30, t), t + Duration::seconds(20)),
            Some(Duration::seconds(40))
        );
        assert_eq!(
            address_wait(&counter(30, t), t + Duration::minutes(2)),
            None
        );
    }

    #[test]
    fn concurrent_reservations_pass_only_within_the_free_failures() {
        let t = Utc::now();
        // 24 attempts reserved at once after one reading of "no failures".
        let admitted = (1..=24)
            .filter(|n| PASSWORD.admits(None, &counter(*n, t), t).is_none())
            .count();
        assert_eq!(admitted as i64, PASSWORD.free_failures + 1);
    }

    #[test]
    fn a_sequential_attempt_after_its_wait_is_admitted() {
        let t = Utc::now();
        let seen = counter(6, t - Duration::minutes(1));
        assert_eq!(PASSWORD.wait(&seen, t), None);
        assert_eq!(PASSWORD.admits(Some(&seen), &counter(7, t), t), None);
        // Another attempt raced in between: refused.
        assert!(PASSWORD.admits(Some(&seen), &counter(8, t), t).is_some());
    }

    #[test]
    fn addresses_admit_up_to_the_limit() {
        let t = Utc::now();
        assert_eq!(address_admits(&counter(ADDRESS_LIMIT, t), t), None);
        assert!(address_admits(&counter(ADDRESS_LIMIT + 1, t), t).is_some());
    }

    #[test]
    fn second_factor_codes_lock_well_before_nist_limit() {
        assert!(!codes_locked(SECOND_FACTOR_LOCKOUT - 1));
        assert!(codes_locked(SECOND_FACTOR_LOCKOUT));
        const { assert!(SECOND_FACTOR_LOCKOUT < 100) };
        // Until the lock, the backoff alone spaces the guesses out.
        let t = Utc::now();
        assert_eq!(
            SECOND_FACTOR.wait(&counter(SECOND_FACTOR_LOCKOUT - 1, t), t),
            Some(SECOND_FACTOR.max_delay)
        );
    }
}
