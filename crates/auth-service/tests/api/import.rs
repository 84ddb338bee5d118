//! Importing users from another system: every accepted hash format logs in
//! with the right password (and only it), is replaced by Argon2id at the first
//! login, bad lines are reported by number, and a re-run changes nothing.
//! The vectors were made by the reference implementations
//! (`scripts/import-vectors.py`; Firebase's from its published example).

use crate::helpers::{Backend, assert_code, both_backends, spawn_app};
use auth_service::credentials::IdentitySql;
use auth_service::import::{Import, Imported, Tally};
use platform::outbox::SqlOutbox;
use tonic::Code;

both_backends!(
    imported_hashes_log_in_once_then_become_argon2id,
    racing_imports_of_one_external_id_import_it_once,
);

const PASSWORD: &str = "correct horse battery staple";

/// (email, stored hash, password).
const VECTORS: &[(&str, &str, &str)] = &[
    (
        "bcrypt@example.com",
        "$2b$05$z0Z5tr4U6ddWoYLTFQhFduUykitdTYyqyhH6plQ7eaqwKI8PIJGPy",
        PASSWORD,
    ),
    (
        "bcrypt2a@example.com",
        "$2a$05$LZAkNQkimZwkBvUh8xqQ/uDg5SNO1IXrofgFCV0fFF8LOezxnHDXa",
        PASSWORD,
    ),
    (
        "pbkdf2@example.com",
        "$pbkdf2-sha256$i=1000$MDEyMzQ1Njc4OWFiY2RlZg$yqSq2SygY1sB4EcH9f2FG0JTMES+wqLsOT5YmiRBplI",
        PASSWORD,
    ),
    (
        "pbkdf2-512@example.com",
        "$pbkdf2-sha512$i=1000$MDEyMzQ1Njc4OWFiY2RlZg$5bTW2oeyDJyGJPcmEr+mRDE11ghpozWrDGnSNhRXo2ZCu0KHRDiUMAVEGzLJC+oDhRoeIja9J1iLIv9ptDJMfQ",
        PASSWORD,
    ),
    (
        "django@example.com",
        "pbkdf2_sha256$1000$djangosalt$88j730hNlmgRpKNE1Xryye28W+/5SkbhIUTmwgrwT7g=",
        PASSWORD,
    ),
    (
        "scrypt@example.com",
        "$scrypt$ln=10,r=8,p=1$MDEyMzQ1Njc4OWFiY2RlZg$7AnzIswxwEinpwz+ntydndYfVHPvOACmX9Vvo8hO1qM",
        PASSWORD,
    ),
    (
        "argon2i@example.com",
        "$argon2i$v=19$m=1024,t=1,p=1$ke6hly8T83o6t4BW6t0QRQ$EGBlwNJIVMNuxaAfkguvjA3cFzpurApYQ+HQAN7WZbo",
        PASSWORD,
    ),
    (
        "argon2id@example.com",
        "$argon2id$v=19$m=1024,t=1,p=1$ZXkJ+qq7YHRKW1ZCyMb1oQ$zq7g3/Mm0WIrqBjwCfg5mjvtMi/JFp3B9+i8RCeFNA4",
        PASSWORD,
    ),
    (
        "firebase@example.com",
        "$firescrypt$ln=14,r=8,p=1$42xEC+ixf3L2lw==$lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==$Bw==$jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==",
        "user1password",
    ),
];

fn file() -> String {
    let mut lines: Vec<String> = VECTORS
        .iter()
        .enumerate()
        .map(|(i, (email, hash, _))| {
            serde_json::json!({
                "email": email, "password_hash": hash, "email_verified": true,
                "display_name": "Imported", "external_id": format!("ext-{i}"),
            })
            .to_string()
        })
        .collect();
    lines.extend([
        String::new(),
        "{not json".into(),
        r#"{"email": "not-an-address"}"#.into(),
        r#"{"email": "md5@example.com", "password_hash": "$1$saltsalt$qjXMvbEw8oaL.CzflDugX/"}"#
            .into(),
        r#"{"email": "BCRYPT@Example.com"}"#.into(),
        r#"{"email": "roles@example.com", "roles": ["no-such-role"]}"#.into(),
        r#"{"email": "nopassword@example.com", "username": "no.password"}"#.into(),
    ]);
    lines.join("\n")
}

async fn import(app: &crate::helpers::TestApp) -> (Tally, Vec<(u64, String)>) {
    let mut refused = Vec::new();
    let tally = Import(&app.handle.core)
        .run(file().as_bytes(), |n, outcome| {
            if let Imported::Refused(why) = outcome {
                refused.push((n, why.clone()));
            }
        })
        .await
        .unwrap();
    (tally, refused)
}

async fn imported_hashes_log_in_once_then_become_argon2id(backend: Backend) {
    let app = spawn_app(backend).await;
    let db = auth_service::storage::connect(&app.db_url).await.unwrap();
    let backlog = platform::sql!(read(&db), SqlOutbox::backlog()).unwrap();
    let (tally, refused) = import(&app).await;
    let lines: Vec<u64> = refused.iter().map(|(n, _)| *n).collect();
    assert_eq!(lines, [11, 12, 13, 14, 15], "{refused:?}");
    assert!(
        refused[2].1.contains("unknown password hash format"),
        "{refused:?}"
    );
    assert!(refused[3].1.contains("email"), "{refused:?}");
    let imported = VECTORS.len() as u64 + 1;
    assert_eq!(
        (tally.imported, tally.skipped, tally.failed),
        (imported, 0, 5)
    );
    // Every profile is owed to the User Service, as a registration's is.
    let owed = platform::sql!(read(&db), SqlOutbox::backlog()).unwrap();
    assert_eq!(owed - backlog, i64::try_from(imported).unwrap());

    for (email, stored, password) in VECTORS {
        assert_code(
            app.login(email, "wrong password").await,
            Code::Unauthenticated,
        );
        app.login(email, password)
            .await
            .unwrap_or_else(|e| panic!("{email}: {e}"));
        let now = platform::sql!(read(&db), IdentitySql::identity_by_email(email))
            .unwrap()
            .unwrap()
            .password_hash;
        assert!(
            now.starts_with("$argon2id$") && now != *stored,
            "{email}: {now}"
        );
        app.login(email, password).await.unwrap();
    }
    // Without a hash there is no password until a reset.
    assert_code(
        app.login("nopassword@example.com", "!").await,
        Code::Unauthenticated,
    );

    // A re-run brings nothing twice; the refused lines are refused again.
    let (again, refused) = import(&app).await;
    assert_eq!(
        (again.imported, again.skipped, again.failed),
        (0, imported, 5)
    );
    assert_eq!(refused.len(), 5);
    assert_eq!(
        platform::sql!(read(&db), SqlOutbox::backlog()).unwrap(),
        owed
    );
}

/// Two imports at once bring the same external ids under different addresses:
/// each id is imported once, the other line refused, and neither run fails.
async fn racing_imports_of_one_external_id_import_it_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let file = |prefix: &str| {
        (0..20)
            .map(|i| {
                format!(r#"{{"email": "{prefix}{i}@example.com", "external_id": "race-{i}"}}"#)
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (a, b) = (file("a"), file("b"));
    let run = |text: &'static str| {
        let core = app.handle.core.clone();
        async move {
            let mut reasons = Vec::new();
            let tally = Import(&core)
                .run(text.as_bytes(), |_, outcome| {
                    if let Imported::Refused(why) = outcome {
                        reasons.push(why.clone());
                    }
                })
                .await
                .unwrap();
            (tally, reasons)
        }
    };
    let (a, b): (&'static str, &'static str) = (a.leak(), b.leak());
    let ((ta, ra), (tb, rb)) = tokio::join!(run(a), run(b));
    assert_eq!((ta.imported + tb.imported, ta.failed + tb.failed), (20, 20));
    assert!(
        ra.iter().chain(&rb).all(|why| why.contains("external_id")),
        "{ra:?} {rb:?}"
    );
}
