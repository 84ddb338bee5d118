//! Every credential or address change × every artefact issued under the old
//! state (Hardening II, items 2 and 8), through the real gRPC interface with
//! the tokens taken from delivered notifications. The changes are walked from
//! the service's own table, so a change added there without a case here does
//! not compile.

use crate::helpers::{Backend, PASSWORD, TestApp, bearer, both_backends, unique_email};
use crate::mfa::{base32, challenge, enrolled, now, totp, verify};
use crate::recovery::{request_reset, reset, verify as verify_email};
use crate::webhook::{Receiver, spawn_notifying};
use auth_service::credentials::changes::CredentialChange;
use identity_proto::auth::v1 as pb;
use std::time::Instant;
use tonic::Code;

both_backends!(
    every_change_ends_every_outstanding_token_and_challenge,
    the_old_address_hears_of_an_email_change_at_once_and_can_stop_it,
    the_owners_link_undoes_a_change_the_thief_verified_at_once,
    a_thiefs_own_later_link_cannot_undo_the_owners_revert,
    the_address_an_account_left_stays_reserved_for_its_revert,
    a_change_email_racing_a_reset_never_outlives_it,
    the_owners_link_racing_the_thiefs_verification_is_never_aborted,
);

const VERIFY: &str = "identity.email_verification.requested";
const RESET: &str = "identity.password_reset.requested";
const CHANGE: &str = "identity.email_change.requested";
const PENDING: &str = "identity.email_change.pending";
const NEW_PASSWORD: &str = "a brand new passphrase";

/// One user and everything outstanding for them.
struct Outstanding {
    email: String,
    user_id: String,
    access_token: String,
    /// The TOTP secret: confirmed when `challenge` is some, else enrolled only.
    secret: Vec<u8>,
    reset: String,
    verification: String,
    email_change: String,
    cancel: String,
    challenge: Option<String>,
}

async fn outstanding(app: &TestApp, hooks: &Receiver, mfa: bool) -> Outstanding {
    let mut grpc = app.grpc.clone();
    let (email, secret, session) = if mfa {
        let user = enrolled(app).await;
        (user.email, user.secret, user.session)
    } else {
        let email = unique_email();
        app.register(&email, PASSWORD).await.unwrap();
        let session = app.login(&email, PASSWORD).await.unwrap();
        let e = grpc
            .enroll_totp(bearer(
                pb::EnrollTotpRequest {
                    password: PASSWORD.into(),
                },
                &session.access_token,
            ))
            .await
            .unwrap()
            .into_inner();
        (email, base32(&e.secret), session)
    };
    let token = session.access_token.clone();
    grpc.request_email_verification(bearer(pb::RequestEmailVerificationRequest {}, &token))
        .await
        .unwrap();
    // The registration sent the first.
    let verification = hooks.token(VERIFY, &email, 2).await;
    let new_email = unique_email();
    grpc.change_email(bearer(
        pb::ChangeEmailRequest {
            new_email: new_email.clone(),
            password: PASSWORD.into(),
        },
        &token,
    ))
    .await
    .unwrap();
    let email_change = hooks.token(CHANGE, &new_email, 1).await;
    let cancel = hooks.token(PENDING, &email, 1).await;
    grpc.request_password_reset(pb::RequestPasswordResetRequest {
        email: email.clone(),
    })
    .await
    .unwrap();
    let reset = hooks.token(RESET, &email, 1).await;
    let challenge = if mfa {
        Some(challenge(app, &email).await)
    } else {
        None
    };
    Outstanding {
        email,
        user_id: session.user_id,
        access_token: token,
        secret,
        reset,
        verification,
        email_change,
        cancel,
        challenge,
    }
}

/// Makes `change` to `u` through the gRPC API, as its real trigger does.
async fn make(app: &TestApp, u: &Outstanding, change: CredentialChange) {
    let mut grpc = app.grpc.clone();
    let token = &u.access_token;
    match change {
        CredentialChange::PasswordChanged => grpc
            .change_password(bearer(
                pb::ChangePasswordRequest {
                    old_password: PASSWORD.into(),
                    new_password: NEW_PASSWORD.into(),
                },
                token,
            ))
            .await
            .map(drop),
        CredentialChange::PasswordReset => grpc
            .reset_password(pb::ResetPasswordRequest {
                token: u.reset.clone(),
                new_password: NEW_PASSWORD.into(),
            })
            .await
            .map(drop),
        CredentialChange::EmailChanged => grpc
            .verify_email(pb::VerifyEmailRequest {
                token: u.email_change.clone(),
            })
            .await
            .map(drop),
        CredentialChange::EmailChangeCancelled => grpc
            .cancel_email_change(pb::CancelEmailChangeRequest {
                token: u.cancel.clone(),
            })
            .await
            .map(drop),
        CredentialChange::MfaEnabled => {
            app.clock.advance(chrono::Duration::seconds(30));
            grpc.confirm_totp(bearer(
                pb::ConfirmTotpRequest {
                    code: totp(&u.secret, now(app)),
                },
                token,
            ))
            .await
            .map(drop)
        }
        CredentialChange::MfaDisabled => {
            app.clock.advance(chrono::Duration::seconds(30));
            grpc.disable_totp(bearer(
                pb::DisableTotpRequest {
                    password: PASSWORD.into(),
                    code: totp(&u.secret, now(app)),
                    recovery_code: String::new(),
                },
                token,
            ))
            .await
            .map(drop)
        }
        CredentialChange::MfaReset => {
            let admin = app.admin_token().await;
            grpc.reset_user_mfa(bearer(
                pb::ResetUserMfaRequest {
                    user_id: u.user_id.clone(),
                },
                &admin,
            ))
            .await
            .map(drop)
        }
        CredentialChange::AccountDisabled | CredentialChange::AccountPurged => {
            let admin = app.admin_token().await;
            grpc.disable_user(bearer(
                pb::DisableUserRequest {
                    user_id: u.user_id.clone(),
                    reason: "deleted".into(),
                    purged: change == CredentialChange::AccountPurged,
                },
                &admin,
            ))
            .await
            .map(drop)
        }
    }
    .unwrap_or_else(|s| panic!("{change:?}: {s:?}"));
}

/// Which setups a change applies to: with the second factor on (a challenge
/// outstanding) and/or off (an enrolment outstanding).
fn setups(change: CredentialChange) -> &'static [bool] {
    match change {
        CredentialChange::MfaEnabled => &[false],
        CredentialChange::MfaDisabled | CredentialChange::MfaReset => &[true],
        _ => &[false, true],
    }
}

fn dead(what: &str, change: CredentialChange, r: Result<(), tonic::Status>) {
    let status = r.expect_err(&format!("{what} must not survive {change:?}"));
    assert_eq!(
        status.code(),
        Code::Unauthenticated,
        "{what} after {change:?}: {status:?}"
    );
}

async fn every_change_ends_every_outstanding_token_and_challenge(backend: Backend) {
    let (app, hooks) = spawn_notifying(backend, |_| {}).await;
    let mut grpc = app.grpc.clone();

    // Control: without a change, what is not itself a change works (the
    // others are each the instrument of a change below, and work there).
    let u = outstanding(&app, &hooks, true).await;
    app.clock.advance(chrono::Duration::seconds(30));
    let code = totp(&u.secret, now(&app));
    verify(&app, u.challenge.as_deref().unwrap(), &code, "")
        .await
        .unwrap();
    grpc.verify_email(pb::VerifyEmailRequest {
        token: u.verification.clone(),
    })
    .await
    .unwrap();

    for change in CredentialChange::ALL {
        for &mfa in setups(change) {
            // Past the per-address limits on registrations and reset requests.
            app.clock.advance(chrono::Duration::minutes(2));
            let u = outstanding(&app, &hooks, mfa).await;
            make(&app, &u, change).await;
            let spend = |token: &String| token.clone();
            if change != CredentialChange::PasswordReset {
                let r = grpc
                    .reset_password(pb::ResetPasswordRequest {
                        token: spend(&u.reset),
                        new_password: "yet another passphrase".into(),
                    })
                    .await;
                dead("a reset token", change, r.map(drop));
            }
            let r = grpc
                .verify_email(pb::VerifyEmailRequest {
                    token: spend(&u.verification),
                })
                .await;
            dead("a verification token", change, r.map(drop));
            if change != CredentialChange::EmailChanged {
                let r = grpc
                    .verify_email(pb::VerifyEmailRequest {
                        token: spend(&u.email_change),
                    })
                    .await;
                dead("a pending email change", change, r.map(drop));
            }
            if let Some(ch) = &u.challenge {
                app.clock.advance(chrono::Duration::seconds(30));
                let code = totp(&u.secret, now(&app));
                dead(
                    "an MFA challenge",
                    change,
                    verify(&app, ch, &code, "").await.map(drop),
                );
            }
            if !mfa && change != CredentialChange::MfaEnabled {
                enrolment_is_gone(&app, &hooks, &u, change).await;
            }
            // The link mailed to the address an email change leaves survives
            // whatever else happens to the account, but its end.
            let cancel = grpc
                .cancel_email_change(pb::CancelEmailChangeRequest {
                    token: spend(&u.cancel),
                })
                .await
                .map(drop);
            match change {
                CredentialChange::AccountDisabled | CredentialChange::AccountPurged => {
                    dead("a cancel link", change, cancel)
                }
                CredentialChange::EmailChangeCancelled => {
                    dead("a used cancel link", change, cancel)
                }
                _ => cancel.unwrap_or_else(|s| panic!("the cancel link after {change:?}: {s:?}")),
            }
        }
    }
    assert_eq!(hooks.bad_signatures(), 0);
}

/// The enrolment a change ended cannot be confirmed, from any session.
async fn enrolment_is_gone(
    app: &TestApp,
    hooks: &Receiver,
    u: &Outstanding,
    change: CredentialChange,
) {
    let password = match change {
        CredentialChange::PasswordChanged | CredentialChange::PasswordReset => NEW_PASSWORD,
        CredentialChange::AccountDisabled | CredentialChange::AccountPurged => return,
        CredentialChange::EmailChangeCancelled => {
            // The password is gone: the mailed reset link sets a new one.
            let token = hooks.token(RESET, &u.email, 2).await;
            reset(app, &token, NEW_PASSWORD).await.unwrap();
            NEW_PASSWORD
        }
        _ => PASSWORD,
    };
    let session = app.login(&u.email, password).await;
    let session = match session {
        Ok(s) => s,
        // The account moved: log in at its new address is not needed, the
        // calling session still works.
        Err(_) => pb::LoginResponse {
            access_token: u.access_token.clone(),
            ..Default::default()
        },
    };
    app.clock.advance(chrono::Duration::seconds(30));
    let r = app
        .grpc
        .clone()
        .confirm_totp(bearer(
            pb::ConfirmTotpRequest {
                code: totp(&u.secret, now(app)),
            },
            &session.access_token,
        ))
        .await;
    let status = r.expect_err("an enrolment must not survive");
    assert_eq!(
        status.code(),
        Code::FailedPrecondition,
        "enrolment after {change:?}: {status:?}"
    );
}

/// Hardening II, item 8: ChangeEmail tells the current address at once, with
/// a link that stops the change and signs every session out.
async fn the_old_address_hears_of_an_email_change_at_once_and_can_stop_it(backend: Backend) {
    let (app, hooks) = spawn_notifying(backend, |_| {}).await;
    let email = unique_email();
    app.register(&email, PASSWORD).await.unwrap();
    let thief = app.login(&email, PASSWORD).await.unwrap();
    let owner = app.login(&email, PASSWORD).await.unwrap();
    let thief_address = unique_email();
    app.grpc
        .clone()
        .change_email(bearer(
            pb::ChangeEmailRequest {
                new_email: thief_address.clone(),
                password: PASSWORD.into(),
            },
            &thief.access_token,
        ))
        .await
        .unwrap();
    // Before anything has moved, the owner's address has the notice.
    let notice = hooks.wait_for(PENDING, &email, 1).await.remove(0);
    let cancel = notice["data"]["token"].as_str().unwrap().to_owned();
    assert_eq!(
        notice["data"]["link"],
        format!("https://app.example/cancel-email-change?token={cancel}")
    );
    let verification = hooks.token(CHANGE, &thief_address, 1).await;

    app.grpc
        .clone()
        .cancel_email_change(pb::CancelEmailChangeRequest {
            token: cancel.clone(),
        })
        .await
        .unwrap();
    // The thief's link is dead, and so is every session.
    let r = app
        .grpc
        .clone()
        .verify_email(pb::VerifyEmailRequest {
            token: verification,
        })
        .await;
    dead(
        "the thief's verification",
        CredentialChange::EmailChangeCancelled,
        r.map(drop),
    );
    for session in [&thief, &owner] {
        assert_eq!(
            app.validate(&session.access_token)
                .await
                .unwrap_err()
                .code(),
            Code::Unauthenticated
        );
    }
    // The password the thief knows is gone; a reset link went to the owner.
    assert_eq!(
        app.login(&email, PASSWORD).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let link = hooks.token(RESET, &email, 1).await;
    reset(&app, &link, NEW_PASSWORD).await.unwrap();
    app.login(&email, NEW_PASSWORD).await.unwrap();
    // The link works once.
    let again = app
        .grpc
        .clone()
        .cancel_email_change(pb::CancelEmailChangeRequest { token: cancel })
        .await;
    dead(
        "a used cancel link",
        CredentialChange::EmailChangeCancelled,
        again.map(drop),
    );
    let bad = app
        .grpc
        .clone()
        .cancel_email_change(pb::CancelEmailChangeRequest {
            token: String::new(),
        })
        .await;
    assert_eq!(bad.unwrap_err().code(), Code::InvalidArgument);
}

async fn change_email(app: &TestApp, token: &str, to: &str) -> Result<(), tonic::Status> {
    app.grpc
        .clone()
        .change_email(bearer(
            pb::ChangeEmailRequest {
                new_email: to.into(),
                password: PASSWORD.into(),
            },
            token,
        ))
        .await
        .map(drop)
}

/// The thief owns the new mailbox and verifies a second after asking; the
/// owner reads the notice later. The link then undoes the change: the account
/// is back at the owner's address, the thief's password and sessions are gone,
/// and a reset link waits in the owner's mailbox. (Found by review.)
async fn the_owners_link_undoes_a_change_the_thief_verified_at_once(backend: Backend) {
    let (app, hooks) = spawn_notifying(backend, |_| {}).await;
    let email = unique_email();
    app.register(&email, PASSWORD).await.unwrap();
    let thief = app.login(&email, PASSWORD).await.unwrap();
    let thief_address = unique_email();
    change_email(&app, &thief.access_token, &thief_address)
        .await
        .unwrap();
    let verification = hooks.token(CHANGE, &thief_address, 1).await;
    verify_email(&app, &verification).await.unwrap();
    app.login(&thief_address, PASSWORD).await.unwrap();
    // A day later the owner follows the link.
    app.clock.advance(chrono::Duration::days(1));
    let cancel = hooks.token(PENDING, &email, 1).await;
    app.grpc
        .clone()
        .cancel_email_change(pb::CancelEmailChangeRequest { token: cancel })
        .await
        .unwrap();
    for address in [&email, &thief_address] {
        assert_eq!(
            app.login(address, PASSWORD).await.unwrap_err().code(),
            Code::Unauthenticated
        );
    }
    assert_eq!(
        app.validate(&thief.access_token).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    // The address the account left is told.
    hooks
        .wait_for("identity.email.changed", &thief_address, 1)
        .await;
    let link = hooks.token(RESET, &email, 1).await;
    reset(&app, &link, NEW_PASSWORD).await.unwrap();
    app.login(&email, NEW_PASSWORD).await.unwrap();
}

/// A ChangeEmail in flight (its password already checked) while the owner's
/// ResetPassword commits must not issue a link that outlives the reset: it
/// checked an older credential version. Timed over the length of one
/// password check. (Found by review.)
async fn a_change_email_racing_a_reset_never_outlives_it(backend: Backend) {
    let (app, hooks) = spawn_notifying(backend, |_| {}).await;
    let email = unique_email();
    app.register(&email, PASSWORD).await.unwrap();
    let t = Instant::now();
    app.login(&email, PASSWORD).await.unwrap();
    let hash = t.elapsed();
    for trial in 0..8u32 {
        app.clock.advance(chrono::Duration::minutes(2));
        let delay = hash * trial / 8;
        let email = unique_email();
        app.register(&email, PASSWORD).await.unwrap();
        let thief = app.login(&email, PASSWORD).await.unwrap();
        request_reset(&app, &email).await.unwrap();
        let reset = hooks.token(RESET, &email, 1).await;
        let owner = {
            let mut grpc = app.grpc.clone();
            tokio::spawn(async move {
                grpc.reset_password(pb::ResetPasswordRequest {
                    token: reset,
                    new_password: NEW_PASSWORD.into(),
                })
                .await
            })
        };
        tokio::time::sleep(delay).await;
        let thief_address = unique_email();
        let changed = change_email(&app, &thief.access_token, &thief_address).await;
        owner.await.unwrap().expect("the owner's reset");
        if let Err(s) = changed {
            // Refused: the session ended, the password it knew is no longer
            // current, or the account changed while it was checked.
            assert!(
                matches!(
                    s.code(),
                    Code::Unauthenticated | Code::PermissionDenied | Code::Aborted
                ),
                "{s:?}"
            );
            continue;
        }
        let verification = hooks.token(CHANGE, &thief_address, 1).await;
        let moved = verify_email(&app, &verification).await;
        assert_eq!(
            moved.map_err(|s| s.code()),
            Err(Code::Unauthenticated),
            "trial {trial} ({delay:?} after the reset began): the thief's link outlived the reset"
        );
    }
}

/// The thief's VerifyEmail and the owner's cancel fired together: one order
/// or the other, never a deadlock or an ABORTED owner. (Found by review.)
async fn the_owners_link_racing_the_thiefs_verification_is_never_aborted(backend: Backend) {
    let (app, hooks) = spawn_notifying(backend, |_| {}).await;
    for round in 0..12 {
        app.clock.advance(chrono::Duration::minutes(2));
        let email = unique_email();
        app.register(&email, PASSWORD).await.unwrap();
        let thief = app.login(&email, PASSWORD).await.unwrap();
        let thief_address = unique_email();
        change_email(&app, &thief.access_token, &thief_address)
            .await
            .unwrap();
        let verification = hooks.token(CHANGE, &thief_address, 1).await;
        let cancel = hooks.token(PENDING, &email, 1).await;
        let (mut a, mut b) = (app.grpc.clone(), app.grpc.clone());
        let (v, c) = tokio::join!(
            a.verify_email(pb::VerifyEmailRequest {
                token: verification
            }),
            b.cancel_email_change(pb::CancelEmailChangeRequest { token: cancel }),
        );
        c.unwrap_or_else(|s| panic!("round {round}: the owner's link: {s:?}"));
        if let Err(s) = v {
            assert_eq!(s.code(), Code::Unauthenticated, "round {round}: {s:?}");
        }
        // Whatever the order, the owner's address has the account.
        let link = hooks.token(RESET, &email, 1).await;
        reset(&app, &link, NEW_PASSWORD).await.unwrap();
        app.login(&email, NEW_PASSWORD).await.unwrap();
    }
}

/// Moves `email`'s account (with the session `token`) to `to`, verified at once.
async fn moved(app: &TestApp, hooks: &Receiver, token: &str, to: &str) {
    change_email(app, token, to).await.unwrap();
    let verification = hooks.token(CHANGE, to, 1).await;
    verify_email(app, &verification).await.unwrap();
}

async fn cancel(app: &TestApp, token: String) -> Result<(), tonic::Status> {
    app.grpc
        .clone()
        .cancel_email_change(pb::CancelEmailChangeRequest { token })
        .await
        .map(drop)
}

/// The thief moves the account twice (owner → thief1 → thief2), so a cancel
/// link also went to thief1, which the thief owns. Restoring the owner's state
/// ends the links of every later change: the thief's link can never take the
/// account back; and a thief who uses theirs first cannot kill the owner's.
async fn a_thiefs_own_later_link_cannot_undo_the_owners_revert(backend: Backend) {
    let (app, hooks) = spawn_notifying(backend, |_| {}).await;
    for thief_first in [false, true] {
        app.clock.advance(chrono::Duration::minutes(2));
        let owner = unique_email();
        app.register(&owner, PASSWORD).await.unwrap();
        let session = app.login(&owner, PASSWORD).await.unwrap();
        let (thief1, thief2) = (unique_email(), unique_email());
        moved(&app, &hooks, &session.access_token, &thief1).await;
        app.clock.advance(chrono::Duration::seconds(1));
        moved(&app, &hooks, &session.access_token, &thief2).await;
        let owners_link = hooks.token(PENDING, &owner, 1).await;
        let thiefs_link = hooks.token(PENDING, &thief1, 1).await;
        if thief_first {
            cancel(&app, thiefs_link).await.unwrap();
            cancel(&app, owners_link).await.unwrap();
        } else {
            cancel(&app, owners_link).await.unwrap();
            dead(
                "a thief's later cancel link",
                CredentialChange::EmailChangeCancelled,
                cancel(&app, thiefs_link).await,
            );
        }
        // Either way the account ends at the owner's address, and only the
        // owner's mailbox can set a password.
        let link = hooks.token(RESET, &owner, 1).await;
        reset(&app, &link, NEW_PASSWORD).await.unwrap();
        app.login(&owner, NEW_PASSWORD).await.unwrap();
        for thief in [&thief1, &thief2] {
            assert_eq!(
                app.login(thief, NEW_PASSWORD).await.unwrap_err().code(),
                Code::Unauthenticated
            );
        }
    }
}

/// The address an account left cannot be registered (or moved to) by anyone
/// else while the link that brings the account back lives: a thief must not
/// squat it to block the owner's revert (found by review).
async fn the_address_an_account_left_stays_reserved_for_its_revert(backend: Backend) {
    let (app, hooks) = spawn_notifying(backend, |_| {}).await;
    let owner = unique_email();
    app.register(&owner, PASSWORD).await.unwrap();
    let session = app.login(&owner, PASSWORD).await.unwrap();
    let thief1 = unique_email();
    moved(&app, &hooks, &session.access_token, &thief1).await;
    assert_eq!(
        app.register(&owner, PASSWORD).await.unwrap_err().code(),
        Code::AlreadyExists
    );
    let other = app.new_session().await;
    assert_eq!(
        change_email(&app, &other.access_token, &owner)
            .await
            .unwrap_err()
            .code(),
        Code::AlreadyExists
    );
    let owners_link = hooks.token(PENDING, &owner, 1).await;
    cancel(&app, owners_link).await.unwrap();
    let link = hooks.token(RESET, &owner, 1).await;
    reset(&app, &link, NEW_PASSWORD).await.unwrap();
    app.login(&owner, NEW_PASSWORD).await.unwrap();
    // Once the window has passed, an address left for good is free again.
    let left = unique_email();
    app.register(&left, PASSWORD).await.unwrap();
    let session = app.login(&left, PASSWORD).await.unwrap();
    moved(&app, &hooks, &session.access_token, &unique_email()).await;
    app.clock.advance(chrono::Duration::days(8));
    app.register(&left, PASSWORD).await.unwrap();
}
