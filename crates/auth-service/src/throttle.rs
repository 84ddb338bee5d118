//! Login throttling, shared by every replica through counters in the database.
//! An attempt is reserved (counted) before its password is checked and given
//! back only on success, so concurrent attempts cannot share one reading.
//!
//! An account that keeps failing is slowed down: from the 5th consecutive failure
//! on, each attempt must wait 1 s, 2 s, 4 s, ... (capped at 15 minutes) after the
//! last failure; a success resets it. A client address is limited to 30 failed
//! logins a minute across all accounts, so one host cannot spray many accounts.

use crate::storage::{Counter, StoreError, ThrottleStore};
use chrono::{DateTime, Duration, Utc};

/// Failures an account may have before backoff starts.
pub const ACCOUNT_FREE_FAILURES: i64 = 4;
/// The longest an account waits.
const ACCOUNT_MAX_DELAY: Duration = Duration::minutes(15);
/// Failures are forgotten a day after the last one.
pub const ACCOUNT_WINDOW: Duration = Duration::hours(24);
/// Failed logins a client address may make per window.
pub const ADDRESS_LIMIT: i64 = 30;
const ADDRESS_WINDOW: Duration = Duration::minutes(1);

/// How long until an account with `c` may try again, if it must wait.
pub fn account_wait(c: &Counter, now: DateTime<Utc>) -> Option<Duration> {
    if c.count <= ACCOUNT_FREE_FAILURES {
        return None;
    }
    let exp = (c.count - ACCOUNT_FREE_FAILURES - 1).clamp(0, 20) as u32;
    let delay = Duration::seconds(1i64 << exp).min(ACCOUNT_MAX_DELAY);
    let until = c.updated_at + delay;
    (until > now).then(|| until - now)
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

/// Whether a reserved attempt may go ahead: `seen` is the account's counter read
/// before the reservation, `after` the counter the reservation left. Attempts
/// within the free failures always may; beyond them, only an attempt no other
/// attempt raced since `seen` (whose wait had passed) may.
pub fn account_admits(
    seen: Option<&Counter>,
    after: &Counter,
    now: DateTime<Utc>,
) -> Option<Duration> {
    let before = after.count - 1;
    if before <= ACCOUNT_FREE_FAILURES || seen.is_some_and(|s| s.count == before) {
        return None;
    }
    account_wait(
        &Counter {
            count: before,
            window_start: after.window_start,
            updated_at: now,
        },
        now,
    )
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

/// The throttle over a store.
pub struct Throttle<'a> {
    pub store: &'a dyn ThrottleStore,
}

/// An attempt counted as a failure until it is known to be a success.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a successful attempt must be released"]
pub struct Reserved {
    account: String,
    address: Option<String>,
    /// The account's failures after this attempt, counting it.
    pub failures: i64,
}

impl Throttle<'_> {
    /// Refuses while the account or the address must wait; otherwise reserves
    /// the attempt (counted as a failure) before the password is checked, so
    /// concurrent attempts cannot all pass on the same reading of the counters.
    pub async fn reserve(
        &self,
        email: &str,
        address: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Result<Reserved, Duration>, StoreError> {
        let account = account_key(email);
        let address = address.map(address_key);
        // A cheap read first: an attempt already throttled costs no write.
        let seen = self.store.counter(&account).await?;
        let mut wait = seen.as_ref().and_then(|c| account_wait(c, now));
        if let Some(key) = &address
            && let Some(c) = self.store.counter(key).await?
        {
            wait = wait.max(address_wait(&c, now));
        }
        if let Some(wait) = wait {
            return Ok(Err(wait));
        }
        let mut keys = vec![(account.as_str(), ACCOUNT_WINDOW)];
        if let Some(key) = &address {
            keys.push((key.as_str(), ADDRESS_WINDOW));
        }
        let after = self.store.reserve(&keys, now).await?;
        let mut wait = after
            .first()
            .and_then(|c| account_admits(seen.as_ref(), c, now));
        if let Some(c) = after.get(1) {
            wait = wait.max(address_admits(c, now));
        }
        if let Some(wait) = wait {
            return Ok(Err(wait));
        }
        Ok(Ok(Reserved {
            account,
            address,
            failures: after.first().map_or(0, |c| c.count),
        }))
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
        let after = self.store.reserve(&[(key, window)], now).await?;
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

    /// Forgets an account's failed logins (its password was just reset by
    /// someone who proved they own the address).
    pub async fn forgive(&self, email: &str) -> Result<(), StoreError> {
        self.store.release(&account_key(email), None).await
    }

    /// The attempt succeeded: the account's failures are forgotten and the
    /// address gets its reservation back.
    pub async fn succeeded(&self, reserved: Reserved) -> Result<(), StoreError> {
        self.store
            .release(&reserved.account, reserved.address.as_deref())
            .await
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
        assert_eq!(account_wait(&counter(4, t), t), None);
        assert_eq!(account_wait(&counter(5, t), t), Some(Duration::seconds(1)));
        assert_eq!(account_wait(&counter(7, t), t), Some(Duration::seconds(4)));
        assert_eq!(account_wait(&counter(60, t), t), Some(ACCOUNT_MAX_DELAY));
        assert_eq!(
            account_wait(&counter(5, t), t + Duration::seconds(2)),
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
            .filter(|n| account_admits(None, &counter(*n, t), t).is_none())
            .count();
        assert_eq!(admitted as i64, ACCOUNT_FREE_FAILURES + 1);
    }

    #[test]
    fn a_sequential_attempt_after_its_wait_is_admitted() {
        let t = Utc::now();
        let seen = counter(6, t - Duration::minutes(1));
        assert_eq!(account_wait(&seen, t), None);
        assert_eq!(account_admits(Some(&seen), &counter(7, t), t), None);
        // Another attempt raced in between: refused.
        assert!(account_admits(Some(&seen), &counter(8, t), t).is_some());
    }

    #[test]
    fn addresses_admit_up_to_the_limit() {
        let t = Utc::now();
        assert_eq!(address_admits(&counter(ADDRESS_LIMIT, t), t), None);
        assert!(address_admits(&counter(ADDRESS_LIMIT + 1, t), t).is_some());
    }
}
