//! Two-factor login with TOTP (RFC 6238: HMAC-SHA-1, 6 digits, 30-second
//! steps, one step of clock skew either way). A code is accepted once: the
//! last accepted step is stored, so a replay is refused across restarts and
//! replicas. Ten recovery codes, stored hashed, each work once. Wrong codes
//! count against the factor's own counter (`throttle::reserve_code`), which
//! a right password never resets.

mod model;
mod sql;

pub use model::*;
pub use sql::MfaSql;

use crate::access::authz::Principal;
use crate::audit::ClientInfo;
use crate::context::{IssuedTokens, MfaChallenge};
use crate::credentials::Credentials;
use crate::credentials::EndsSql;
use crate::credentials::IdentityRecord;
use crate::credentials::IdentitySql;
use crate::credentials::changes::CredentialChange;
use crate::crypto::refresh;
use crate::domain::Password;
use crate::error::AuthError;
use crate::notify::{MFA_DISABLED, MFA_ENABLED, MFA_LOCKED};
use crate::recovery::Recovery;
use crate::sessions::Amr;
use crate::sessions::SessionSql;
use crate::sessions::Sessions;
use crate::throttle::{Reserved, Throttle, codes_locked};
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use chrono::{DateTime, Utc};
use platform::ids::UserId;
use platform::outbox::SqlOutbox;
use platform::validation::FieldViolation;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

const DIGITS: usize = 6;
const STEP_SECONDS: i64 = 30;
const SKEW_STEPS: i64 = 1;
/// 160 bits, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;
const RECOVERY_CODES: usize = 10;
/// Wrong answers after which a login's challenge ends (log in again).
const CHALLENGE_WRONG_ANSWERS: i64 = 5;
/// 16 characters of 32: 80 bits each.
const RECOVERY_CODE_LEN: usize = 16;
/// No 0/o, 1/l look-alikes; 32 symbols, so a random byte maps without bias.
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// A second-factor code as a caller gave it, parsed at the edge.
#[derive(Debug)]
pub enum MfaCode {
    /// Six digits from the authenticator app.
    Totp(SecretString),
    /// A recovery code, normalised (lower case, no separators).
    Recovery(SecretString),
}

impl MfaCode {
    /// Exactly one of `code` (6 digits) and `recovery_code` must be given.
    pub fn parse(code: String, recovery_code: String) -> Result<Self, FieldViolation> {
        match (code.is_empty(), recovery_code.is_empty()) {
            (false, true) => Self::totp(code, "code"),
            // Bounded before any work: separators may pad an issued code, not more.
            (true, false) if recovery_code.len() > 4 * RECOVERY_CODE_LEN => Err(
                FieldViolation::new("recovery_code", "is too long for a recovery code"),
            ),
            (true, false) => {
                let normal: String = recovery_code
                    .chars()
                    .filter(|c| !matches!(c, '-' | ' '))
                    .map(|c| c.to_ascii_lowercase())
                    .collect();
                if normal.len() == RECOVERY_CODE_LEN
                    && normal.bytes().all(|b| RECOVERY_ALPHABET.contains(&b))
                {
                    Ok(Self::Recovery(SecretString::from(normal)))
                } else {
                    Err(FieldViolation::new(
                        "recovery_code",
                        "must be a recovery code as issued (xxxx-xxxx-xxxx-xxxx)",
                    ))
                }
            }
            _ => Err(FieldViolation::new(
                "code",
                "give exactly one of `code` and `recovery_code`",
            )),
        }
    }

    /// A 6-digit code in `field`.
    pub fn totp(code: String, field: &'static str) -> Result<Self, FieldViolation> {
        if code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self::Totp(SecretString::from(code)))
        } else {
            Err(FieldViolation::new(
                field,
                "must be the 6 digits of the authenticator app",
            ))
        }
    }
}

/// What EnrollTotp returns: the secret, for the authenticator app.
#[derive(Debug)]
pub struct TotpEnrolment {
    pub secret_base32: SecretString,
    pub otpauth_uri: SecretString,
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, bytes).as_ref());
    out
}

/// The additional data a sealed TOTP secret is bound to.
fn aad(user_id: UserId) -> String {
    format!("totp:{user_id}")
}

fn wrong_code() -> AuthError {
    AuthError::Unauthenticated("the code is wrong or was already used".into())
}

/// A wrong code from an authenticated caller: their session is fine, so not
/// UNAUTHENTICATED (which clients take for "log in again"); as ChangePassword's
/// wrong old password.
fn wrong_own_code() -> AuthError {
    AuthError::PermissionDenied("code: is wrong or was already used".into())
}

/// What a code is offered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attempt {
    /// An authenticator code for a factor in force.
    Totp,
    /// A recovery code.
    Recovery,
    /// The first code of an enrolment.
    Enrolment,
}

fn codes_locked_out() -> AuthError {
    AuthError::FailedPrecondition(
        "too many wrong codes: authenticator codes are locked for this account; use a \
         recovery code, or ask an administrator to reset the second factor"
            .into(),
    )
}

fn dead_challenge() -> AuthError {
    AuthError::Unauthenticated("the MFA challenge is invalid or expired; log in again".into())
}

crate::context::use_cases! {
    /// The second factor: enrolment, login challenges, codes.
    Mfa
}

impl Mfa<'_> {
    fn totp(&self, secret: Vec<u8>, email: &str) -> TOTP {
        // The label's issuer may not hold ':' (an issuer URL's scheme would).
        let issuer = self
            .tokens
            .issuer()
            .rsplit("://")
            .next()
            .unwrap_or_default()
            .trim_end_matches('/')
            .replace(':', "-");
        TOTP::new_unchecked(
            Algorithm::SHA1,
            DIGITS,
            SKEW_STEPS as u8,
            STEP_SECONDS as u64,
            secret,
            Some(issuer),
            email.to_owned(),
        )
    }

    /// The time step a code matches now (±1 step), if any; constant-time compare.
    fn matching_step(&self, totp: &TOTP, code: &SecretString, now: DateTime<Utc>) -> Option<i64> {
        let current = now.timestamp().div_euclid(STEP_SECONDS);
        let given = code.expose_secret().as_bytes();
        (current - SKEW_STEPS..=current + SKEW_STEPS).find(|step| {
            let expected = totp.generate((step * STEP_SECONDS) as u64);
            bool::from(expected.as_bytes().ct_eq(given))
        })
    }

    /// The generator of `identity`'s stored secret (unsealed if it is sealed).
    fn stored_totp(
        &self,
        identity: &IdentityRecord,
        record: &TotpRecord,
    ) -> Result<TOTP, AuthError> {
        let secret = self
            .keys
            .open_secret(&aad(identity.id), &record.secret, record.encrypted)
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        Ok(self.totp(secret, &identity.email))
    }

    /// Starts (or restarts) an enrolment: a new secret, not yet in force.
    #[tracing::instrument(skip_all, fields(user_id = %caller.subject_id))]
    pub async fn enroll_totp(
        &self,
        caller: &Principal,
        password: Password,
        client: &ClientInfo,
    ) -> Result<TotpEnrolment, AuthError> {
        let identity = self.own_identity(caller).await?;
        // Binding a factor is changing an authenticator: a stolen access
        // token alone must not do it (ASVS 3.7.1).
        let reserved = Credentials(self.0)
            .confirm_own_password(caller, &identity, &password, "mfa.enrolment_failed", client)
            .await?;
        self.throttle().succeeded(reserved).await?;
        let mut secret = vec![0u8; SECRET_BYTES];
        SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| AuthError::Internal("no randomness".into()))?;
        let (stored, sealed) = self
            .keys
            .seal_secret(&aad(identity.id), &secret)
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        let (user_id, now) = (identity.id, self.clock.now());
        let mut tx = self.db.write().await?;
        // Not if a credential changed since the password was checked.
        platform::sql!(&mut tx, EndsSql::lock_identity(user_id))?
            .filter(|l| !l.disabled && l.credential_version == identity.credential_version)
            .ok_or(AuthError::Changed)?;
        if !platform::sql!(
            &mut tx,
            MfaSql::begin_enrolment(user_id, &stored, sealed, now)
        )? {
            return Err(AuthError::FailedPrecondition(
                "two-factor login is already on; disable it first".into(),
            ));
        }
        tx.commit().await?;
        let totp = self.totp(secret, &identity.email);
        self.audit(
            self.event("mfa.enrolment_started", client)
                .actor(identity.id)
                .subject(identity.id),
        )
        .await;
        Ok(TotpEnrolment {
            secret_base32: SecretString::from(totp.get_secret_base32()),
            otpauth_uri: SecretString::from(totp.get_url()),
        })
    }

    /// Turns two-factor login on with a first code; returns the recovery
    /// codes, shown this once.
    #[tracing::instrument(skip_all, fields(user_id = %caller.subject_id))]
    pub async fn confirm_totp(
        &self,
        caller: &Principal,
        code: MfaCode,
        client: &ClientInfo,
    ) -> Result<Vec<SecretString>, AuthError> {
        let identity = self.own_identity(caller).await?;
        let MfaCode::Totp(code) = code else {
            return Err(FieldViolation::new(
                "code",
                "must be the 6 digits of the authenticator app",
            )
            .into());
        };
        let record = platform::sql!(read(&self.db), MfaSql::totp(identity.id))?
            .filter(|r| !r.confirmed)
            .ok_or_else(|| {
                AuthError::FailedPrecondition(
                    "no enrolment in progress: call EnrollTotp first".into(),
                )
            })?;
        let now = self.clock.now();
        // Codes for a secret the caller was just given guess nothing: the
        // backoff applies, the lockout (for codes of a factor in force) does not.
        let reserved = self
            .reserve_code(&identity, &record, Attempt::Enrolment, client, now)
            .await?;
        let totp = self.stored_totp(&identity, &record)?;
        let Some(step) = self.matching_step(&totp, &code, now) else {
            self.audit(self.event("mfa.failed", client).actor(identity.id))
                .await;
            return Err(wrong_own_code());
        };
        let codes = recovery_codes()?;
        let hashes: Vec<[u8; 32]> = codes
            .iter()
            .map(|c| sha256(c.expose_secret().replace('-', "").as_bytes()))
            .collect();
        let (user_id, checked) = (identity.id, &record.secret);
        let mut tx = self.db.write().await?;
        let locked = platform::sql!(&mut tx, EndsSql::lock_identity(user_id))?
            .filter(|l| !l.disabled)
            .ok_or(AuthError::Changed)?;
        if !platform::sql!(
            &mut tx,
            MfaSql::confirm((user_id, checked), step, &hashes, now)
        )? {
            return Err(wrong_own_code());
        }
        platform::sql!(
            &mut tx,
            EndsSql::end_artefacts(user_id, CredentialChange::MfaEnabled, None, now)
        )?;
        let notice = Recovery(self.0).notice(MFA_ENABLED, (user_id, &locked.email), now)?;
        platform::sql!(&mut tx, SqlOutbox::insert_all(notice.as_slice()))?;
        tx.commit().await?;
        self.throttle().succeeded(reserved).await?;
        self.outbox_wake.notify_one();
        self.audit(
            self.event("mfa.enabled", client)
                .actor(identity.id)
                .subject(identity.id),
        )
        .await;
        Ok(codes)
    }

    /// A login's second-factor challenge: its row (bound to the password
    /// hash and credential version the login checked) and what the client gets.
    pub(crate) fn new_challenge(
        &self,
        identity: &IdentityRecord,
        credential: &str,
        client: &ClientInfo,
    ) -> Result<(NewChallenge, MfaChallenge), AuthError> {
        let now = self.clock.now();
        let minted = refresh::mint().map_err(|_| AuthError::Internal("no randomness".into()))?;
        let expires_at = now + self.recovery.mfa_challenge_ttl;
        let row = NewChallenge {
            hash: minted.hash,
            user_id: identity.id,
            credential: sha256(credential.as_bytes()),
            credential_version: identity.credential_version,
            client_address: client.address.clone(),
            user_agent: client.user_agent.clone(),
            created_at: now,
            expires_at,
        };
        let challenge = MfaChallenge {
            challenge: minted.token,
            expires_at,
        };
        Ok((row, challenge))
    }

    /// Reserves one code attempt: the one gate every code check passes.
    /// Context codes count against the factor's own counter (refused
    /// while it must wait, and once locked out); recovery codes (80 bits, not
    /// guessable) only against the client address, so a password holder's
    /// wrong guesses can never keep the owner's recovery code out.
    async fn reserve_code(
        &self,
        identity: &IdentityRecord,
        factor: &TotpRecord,
        attempt: Attempt,
        client: &ClientInfo,
        now: DateTime<Utc>,
    ) -> Result<Reserved, AuthError> {
        if attempt == Attempt::Totp && codes_locked(factor.failures) {
            self.audit(self.event("mfa.locked", client).subject(identity.id))
                .await;
            return Err(codes_locked_out());
        }
        let throttle = self.throttle();
        let address = client.address.as_deref();
        match attempt {
            Attempt::Recovery => throttle.reserve_address(identity.id, address, now).await,
            Attempt::Totp => {
                // Someone who can reach the second factor knows the password:
                // the owner hears of it when the codes lock.
                let notice =
                    Recovery(self.0).notice(MFA_LOCKED, (identity.id, &identity.email), now)?;
                let factor = (factor, notice.as_ref());
                throttle
                    .reserve_code(identity.id, factor, address, now)
                    .await
            }
            Attempt::Enrolment => {
                throttle
                    .reserve_code(identity.id, (factor, None), address, now)
                    .await
            }
        }?
        .map_err(AuthError::Throttled)
    }

    /// Checks `code` for `identity`'s confirmed factor (a TOTP step not used
    /// before, or an unused recovery code), throttled by the factor's
    /// counter, spending it; the method that matched. A wrong code keeps its
    /// reservation (a failure); a right one clears the factor's failures.
    async fn check_code(
        &self,
        identity: &IdentityRecord,
        code: &MfaCode,
        client: &ClientInfo,
        now: DateTime<Utc>,
    ) -> Result<Option<&'static str>, AuthError> {
        let Some(factor) =
            platform::sql!(read(&self.db), MfaSql::totp(identity.id))?.filter(|f| f.confirmed)
        else {
            return Ok(None);
        };
        let attempt = match code {
            MfaCode::Totp(_) => Attempt::Totp,
            MfaCode::Recovery(_) => Attempt::Recovery,
        };
        let reserved = self
            .reserve_code(identity, &factor, attempt, client, now)
            .await?;
        let accepted = match code {
            MfaCode::Totp(code) => {
                let totp = self.stored_totp(identity, &factor)?;
                match self.matching_step(&totp, code, now) {
                    Some(step) => {
                        platform::sql!(read(&self.db), MfaSql::spend_step(identity.id, step))?
                    }
                    None => false,
                }
                .then_some("totp")
            }
            MfaCode::Recovery(code) => {
                let hash = sha256(code.expose_secret().as_bytes());
                platform::sql!(
                    read(&self.db),
                    MfaSql::spend_recovery_code(identity.id, &hash, now)
                )?
                .then_some("recovery_code")
            }
        };
        match accepted {
            Some(_) => self.throttle().succeeded(reserved).await?,
            None => {
                self.audit(self.event("mfa.failed", client).actor(identity.id))
                    .await;
            }
        }
        Ok(accepted)
    }

    /// Answers a login's challenge with a second factor: the session's tokens.
    /// After the attempt is counted (committed first, so concurrent guesses
    /// see it), one transaction spends the code and the challenge, clears the
    /// factor's failures and opens the session: all of it or none (a failure
    /// part-way leaves the code unspent and no session).
    #[tracing::instrument(skip_all)]
    pub async fn verify_mfa(
        &self,
        challenge: &SecretString,
        code: MfaCode,
        client: &ClientInfo,
    ) -> Result<IssuedTokens, AuthError> {
        let hash = refresh::parse(challenge).ok_or_else(dead_challenge)?;
        let now = self.clock.now();
        let pending = platform::sql!(read(&self.db), MfaSql::challenge(&hash, now))?
            .ok_or_else(dead_challenge)?;
        let identity =
            platform::sql!(read(&self.db), IdentitySql::identity_by_id(pending.user_id))?
                .filter(|i| !i.disabled)
                .ok_or_else(dead_challenge)?;
        let factor = platform::sql!(read(&self.db), MfaSql::totp(identity.id))?
            .filter(|f| f.confirmed)
            .ok_or_else(dead_challenge)?;
        let attempt = match code {
            MfaCode::Totp(_) => Attempt::Totp,
            MfaCode::Recovery(_) => Attempt::Recovery,
        };
        let reserved = self
            .reserve_code(&identity, &factor, attempt, client, now)
            .await?;
        let opening = Sessions(self.0).new_session(identity.id, Amr::PasswordAndOtp, client)?;
        let user_id = identity.id;
        let mut tx = self.db.write().await?;
        // The identity first, as every transaction that changes its factor.
        let locked = platform::sql!(&mut tx, EndsSql::lock_identity(user_id))?;
        let method = match &code {
            MfaCode::Totp(code) => {
                let totp = self.stored_totp(&identity, &factor)?;
                match self.matching_step(&totp, code, now) {
                    Some(step) => platform::sql!(&mut tx, MfaSql::spend_step(user_id, step))?,
                    None => false,
                }
                .then_some("totp")
            }
            MfaCode::Recovery(code) => {
                let code = sha256(code.expose_secret().as_bytes());
                platform::sql!(&mut tx, MfaSql::spend_recovery_code(user_id, &code, now))?
                    .then_some("recovery_code")
            }
        };
        let Some(method) = method else {
            // The reservation stays: a wrong code is a failure. A challenge
            // takes only a few, so guesses sprayed from many addresses (which
            // recovery codes only count per address) each cost a login.
            drop(tx);
            platform::sql!(
                read(&self.db),
                MfaSql::fail_challenge(&hash, CHALLENGE_WRONG_ANSWERS, now)
            )?;
            self.audit(self.event("mfa.failed", client).actor(user_id))
                .await;
            return Err(wrong_code());
        };
        // A credential changed since the challenge was issued: start over.
        let current = sha256(identity.password_hash.as_bytes());
        let unchanged = bool::from(current.ct_eq(&pending.credential[..]))
            && locked
                .is_some_and(|l| !l.disabled && l.credential_version == pending.credential_version);
        if !unchanged || !platform::sql!(&mut tx, MfaSql::spend_challenge_row(&hash, now))? {
            return Err(dead_challenge());
        }
        Throttle::succeeded_in(&mut tx, reserved).await?;
        let credential = (identity.password_hash.as_str(), pending.credential_version);
        let (session, token) = (&opening.session, &opening.token);
        if !platform::sql!(
            &mut tx,
            SessionSql::open_session_rows(session, token, credential)
        )? {
            drop(tx);
            return Err(Sessions(self.0).login_lost_race(user_id, client).await);
        }
        tx.commit().await?;
        self.audit(
            self.event("mfa.verified", client)
                .actor(user_id)
                .detail("method", method),
        )
        .await;
        Sessions(self.0)
            .session_opened(opening, identity.email_verified, client)
            .await
    }

    /// Turns the caller's second factor off, with their password and a code.
    #[tracing::instrument(skip_all, fields(user_id = %caller.subject_id))]
    pub async fn disable_totp(
        &self,
        caller: &Principal,
        password: Password,
        code: MfaCode,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let identity = self.own_identity(caller).await?;
        let reserved = Credentials(self.0)
            .confirm_own_password(caller, &identity, &password, "mfa.disable_failed", client)
            .await?;
        self.throttle().succeeded(reserved).await?;
        let now = self.clock.now();
        if !platform::sql!(read(&self.db), MfaSql::totp(identity.id))?.is_some_and(|f| f.confirmed)
        {
            return Err(AuthError::FailedPrecondition(
                "two-factor login is not on".into(),
            ));
        }
        if self
            .check_code(&identity, &code, client, now)
            .await?
            .is_none()
        {
            return Err(wrong_own_code());
        }
        self.remove_factor(&identity, CredentialChange::MfaDisabled, now)
            .await?
            .ok_or_else(|| AuthError::FailedPrecondition("two-factor login is not on".into()))?;
        self.audit(
            self.event("mfa.disabled", client)
                .actor(identity.id)
                .subject(identity.id),
        )
        .await;
        Ok(())
    }

    /// Removes `identity`'s second factor as `change` (disabled by the user or
    /// reset by an admin): what the change ends, the notice, the sessions
    /// revoked here at once. `None` when there was no factor.
    async fn remove_factor(
        &self,
        identity: &IdentityRecord,
        change: CredentialChange,
        now: DateTime<Utc>,
    ) -> Result<Option<()>, AuthError> {
        let user_id = identity.id;
        let mut tx = self.db.write().await?;
        let Some(locked) = platform::sql!(&mut tx, EndsSql::lock_identity(user_id))? else {
            return Ok(None);
        };
        if !platform::sql!(&mut tx, MfaSql::remove(user_id))? {
            return Ok(None);
        }
        let revoked = platform::sql!(&mut tx, EndsSql::end_artefacts(user_id, change, None, now))?;
        let notice = Recovery(self.0).notice(MFA_DISABLED, (user_id, &locked.email), now)?;
        platform::sql!(&mut tx, SqlOutbox::insert_all(notice.as_slice()))?;
        tx.commit().await?;
        for session in &revoked {
            self.revoked.insert(*session, now);
        }
        self.outbox_wake.notify_one();
        Ok(Some(()))
    }

    /// Removes a user's second factor (a lost phone and lost recovery codes).
    /// Caller: `mfa:admin`.
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn reset_user_mfa(
        &self,
        caller: &Principal,
        user_id: UserId,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.require(caller, "mfa:admin", None)?;
        let identity = platform::sql!(read(&self.db), IdentitySql::identity_by_id(user_id))?
            .ok_or_else(|| AuthError::NotFound(format!("no user {user_id}")))?;
        let now = self.clock.now();
        self.remove_factor(&identity, CredentialChange::MfaReset, now)
            .await?
            .ok_or_else(|| AuthError::FailedPrecondition("the user has no second factor".into()))?;
        self.audit(
            self.event("mfa.reset", client)
                .actor(caller.subject_id)
                .subject(identity.id),
        )
        .await;
        Ok(())
    }
}

/// Ten fresh recovery codes, `xxxx-xxxx-xxxx-xxxx`.
fn recovery_codes() -> Result<Vec<SecretString>, AuthError> {
    let mut raw = [0u8; RECOVERY_CODES * RECOVERY_CODE_LEN];
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| AuthError::Internal("no randomness".into()))?;
    Ok(raw
        .chunks(RECOVERY_CODE_LEN)
        .map(|chunk| {
            let chars: Vec<char> = chunk
                .iter()
                .map(|b| char::from(RECOVERY_ALPHABET[usize::from(b % 32)]))
                .collect();
            let groups: Vec<String> = chars.chunks(4).map(|g| g.iter().collect()).collect();
            SecretString::from(groups.join("-"))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_parse_at_the_edge() {
        assert!(matches!(
            MfaCode::parse("123456".into(), String::new()),
            Ok(MfaCode::Totp(_))
        ));
        assert!(MfaCode::parse("12345".into(), String::new()).is_err());
        assert!(MfaCode::parse("12345a".into(), String::new()).is_err());
        assert!(MfaCode::parse("123456".into(), "abcd".into()).is_err());
        assert!(MfaCode::parse(String::new(), String::new()).is_err());
        assert!(MfaCode::parse(String::new(), "-".repeat(100_000)).is_err());
        let code = recovery_codes().unwrap().remove(0);
        let upper = code.expose_secret().to_ascii_uppercase();
        assert!(matches!(
            MfaCode::parse(String::new(), upper),
            Ok(MfaCode::Recovery(c)) if *c.expose_secret() == code.expose_secret().replace('-', "")
        ));
    }

    #[test]
    fn recovery_codes_differ_and_use_the_alphabet() {
        let codes = recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let set: std::collections::HashSet<_> =
            codes.iter().map(|c| c.expose_secret().to_owned()).collect();
        assert_eq!(set.len(), RECOVERY_CODES);
        for c in &codes {
            assert_eq!(c.expose_secret().len(), 19);
        }
    }
}
