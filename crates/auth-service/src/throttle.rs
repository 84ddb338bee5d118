//! Login throttling, shared by every replica through counters in the database.
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
const ACCOUNT_WINDOW: Duration = Duration::hours(24);
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

/// The throttle over a store.
pub struct Throttle<'a> {
    pub store: &'a dyn ThrottleStore,
}

/// What the throttle found before a login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// How long the caller must wait, if at all.
    pub wait: Option<Duration>,
    /// Whether the account has failures on record (a success then clears them).
    account_failures: bool,
}

impl Throttle<'_> {
    /// Reads the counters before a login attempt.
    pub async fn check(
        &self,
        email: &str,
        address: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Checked, StoreError> {
        let mut wait = None;
        let account = self.store.counter(&account_key(email)).await?;
        if let Some(c) = &account {
            wait = account_wait(c, now);
        }
        if let Some(addr) = address
            && let Some(c) = self.store.counter(&address_key(addr)).await?
        {
            wait = wait.max(address_wait(&c, now));
        }
        Ok(Checked {
            wait,
            account_failures: account.is_some(),
        })
    }

    /// Counts a failed attempt.
    pub async fn failed(
        &self,
        email: &str,
        address: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.store
            .bump_counter(&account_key(email), now, ACCOUNT_WINDOW)
            .await?;
        if let Some(addr) = address {
            self.store
                .bump_counter(&address_key(addr), now, ADDRESS_WINDOW)
                .await?;
        }
        Ok(())
    }

    /// Forgets an account's failures after a success; a write only when there
    /// were failures, so an ordinary login costs no throttle write.
    pub async fn succeeded(&self, email: &str, checked: &Checked) -> Result<(), StoreError> {
        if !checked.account_failures {
            return Ok(());
        }
        self.store.clear_counter(&account_key(email)).await
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
}
