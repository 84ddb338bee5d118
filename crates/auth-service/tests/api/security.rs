//! Account security: login throttling (per account and per client address, with
//! a retry delay), client secrets counted against the same address budget on
//! both ports, the audit log, and mutual TLS on the gRPC port.

use crate::helpers::{
    Backend, PASSWORD, TestApp, assert_code, bearer, both_backends, settings, spawn_app,
    spawn_replica, spawn_with, unique_email,
};
use identity_proto::auth::v1 as pb;
use tonic::Code;
use tonic_types::StatusExt;

both_backends!(
    accounts_back_off_and_addresses_are_limited,
    audit_log_records_events_without_secrets,
    client_secret_refusals_count_against_the_address,
);

async fn login_from(
    app: &TestApp,
    email: &str,
    password: &str,
    forwarded: Option<&str>,
) -> Result<pb::LoginResponse, tonic::Status> {
    let mut r = tonic::Request::new(pb::LoginRequest {
        email: email.into(),
        password: password.into(),
    });
    if let Some(addr) = forwarded {
        r.metadata_mut()
            .insert("x-forwarded-for", addr.parse().unwrap());
    }
    app.grpc
        .clone()
        .login(r)
        .await
        .map(tonic::Response::into_inner)
}

async fn accounts_back_off_and_addresses_are_limited(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    app.register(&email, PASSWORD).await.unwrap();
    for _ in 0..5 {
        assert_code(
            app.login(&email, "wrong password").await,
            Code::Unauthenticated,
        );
    }
    // The 6th attempt waits, even with the right password, and says how long.
    let throttled = app.login(&email, PASSWORD).await.unwrap_err();
    assert_eq!(throttled.code(), Code::ResourceExhausted, "{throttled:?}");
    let delay = throttled
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .expect("RetryInfo");
    assert!(delay >= std::time::Duration::from_secs(1), "{delay:?}");
    // Once the delay has passed, a success resets the count.
    app.clock.advance(chrono::Duration::seconds(2));
    app.login(&email, PASSWORD)
        .await
        .expect("a login after the delay");
    assert_code(
        app.login(&email, "wrong password").await,
        Code::Unauthenticated,
    );
    app.login(&email, PASSWORD)
        .await
        .expect("one failure does not throttle");

    // One address spraying many accounts is limited, whatever the accounts
    // (in a fresh one-minute window).
    app.clock.advance(chrono::Duration::minutes(2));
    for i in 0..30 {
        let r = app
            .login(&format!("nobody{i}@example.com"), "wrong password")
            .await;
        assert_code(r, Code::Unauthenticated);
    }
    let sprayed = app
        .login(&unique_email(), "wrong password")
        .await
        .unwrap_err();
    assert_eq!(sprayed.code(), Code::ResourceExhausted);
    // A forwarded address from an untrusted caller is ignored: still limited.
    let dodge = login_from(
        &app,
        &unique_email(),
        "wrong password",
        Some("198.51.100.1"),
    )
    .await;
    assert_code(dodge, Code::ResourceExhausted);
    // Behind a trusted gateway, each end client has its own budget.
    let gateway = spawn_replica(&app, |s| s.trusted_proxies = "127.0.0.0/8".into()).await;
    let other = login_from(
        &gateway,
        &unique_email(),
        "wrong password",
        Some("198.51.100.2"),
    )
    .await;
    assert_code(other, Code::Unauthenticated);
    app.clock.advance(chrono::Duration::minutes(2));
    assert_code(
        app.login(&unique_email(), "wrong password").await,
        Code::Unauthenticated,
    );
}

async fn audit_log_records_events_without_secrets(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin_token().await;
    let email = unique_email();
    app.register(&email, PASSWORD).await.unwrap();
    let _ = app.login(&email, "wrong password").await;
    let login = app.login(&email, PASSWORD).await.unwrap();
    let refreshed = app.refresh(&login.refresh_token).await.unwrap();
    let _ = app.refresh(&login.refresh_token).await; // reuse
    let second = app.login(&email, PASSWORD).await.unwrap();
    let mut grpc = app.grpc.clone();
    grpc.change_password(bearer(
        pb::ChangePasswordRequest {
            old_password: PASSWORD.into(),
            new_password: "another long passphrase".into(),
        },
        &second.access_token,
    ))
    .await
    .unwrap();
    grpc.assign_role(bearer(
        pb::AssignRoleRequest {
            subject_id: login.user_id.clone(),
            role: "admin".into(),
        },
        &admin,
    ))
    .await
    .unwrap();
    let (client_id, secret, service_token) = app.service_account(&[]).await;
    app.logout(&second.refresh_token).await.unwrap();

    let list = |kind: &str, page_token: String, size: i32| {
        let mut c = app.grpc.clone();
        let (kind, admin) = (kind.to_owned(), admin.clone());
        async move {
            c.list_audit_events(bearer(
                pb::ListAuditEventsRequest {
                    page_size: size,
                    page_token,
                    kind,
                    ..Default::default()
                },
                &admin,
            ))
            .await
            .unwrap()
            .into_inner()
        }
    };
    let all = list("", String::new(), 500).await.events;
    let kinds: std::collections::HashSet<&str> = all.iter().map(|e| e.kind.as_str()).collect();
    for kind in [
        "user.registered",
        "login.failed",
        "login.succeeded",
        "refresh_token.reused",
        "password.changed",
        "role.assigned",
        "service_account.created",
        "service_token.issued",
        "logout",
    ] {
        assert!(kinds.contains(kind), "no {kind} event in {kinds:?}");
    }
    let failed = list("login.failed", String::new(), 10).await.events;
    assert!(
        failed
            .iter()
            .all(|e| e.kind == "login.failed" && e.subject == email.to_lowercase())
    );
    assert!(
        failed.iter().all(|e| e.client_address == "127.0.0.1"),
        "{failed:?}"
    );
    // Paging walks every event once, newest first.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = list("", token, 3).await;
        seen.extend(page.events.into_iter().map(|e| e.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, all.iter().map(|e| e.id.clone()).collect::<Vec<_>>());

    let dump = format!("{all:?}");
    for secret in [
        PASSWORD,
        "another long passphrase",
        &login.access_token,
        &login.refresh_token,
        &refreshed.refresh_token,
        &secret,
        &service_token,
    ] {
        assert!(!dump.contains(secret), "a secret is in the audit log");
    }
    assert!(dump.contains(&client_id) || kinds.contains("service_token.issued"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_accepts_only_certified_clients() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, pem: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf = |san: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![san.to_owned()])
            .unwrap()
            .signed_by(&key, &ca, &ca_key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf("localhost");
    let (client_cert, client_key) = leaf("user-service");
    let db = Backend::Sqlite.fresh_database().await;
    let mut s = settings(&db.url);
    s.server.tls_cert = Some(write("server.pem", server_cert));
    s.server.tls_key = Some(write("server.key", server_key));
    s.server.tls_client_ca = Some(write("ca.pem", ca.pem()));
    let app = spawn_with(s, platform::clock::ManualClock::default(), false).await;

    use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
    let url = format!("https://localhost:{}", app.grpc_addr.port());
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca.pem()))
        .domain_name("localhost");
    let with_cert = Channel::from_shared(url.clone())
        .unwrap()
        .tls_config(
            tls.clone()
                .identity(Identity::from_pem(client_cert, client_key)),
        )
        .unwrap()
        .connect()
        .await
        .expect("a certified client connects");
    let mut client = pb::auth_service_client::AuthServiceClient::new(with_cert);
    client
        .get_jwks(pb::GetJwksRequest {})
        .await
        .expect("and is served");

    let without = Channel::from_shared(url)
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await;
    let refused = match without {
        Err(_) => true,
        Ok(ch) => pb::auth_service_client::AuthServiceClient::new(ch)
            .get_jwks(pb::GetJwksRequest {})
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate was served");
    let plain = Channel::from_shared(format!("http://127.0.0.1:{}", app.grpc_addr.port()))
        .unwrap()
        .connect()
        .await;
    let refused = match plain {
        Err(_) => true,
        Ok(ch) => pb::auth_service_client::AuthServiceClient::new(ch)
            .get_jwks(pb::GetJwksRequest {})
            .await
            .is_err(),
    };
    assert!(refused, "a plaintext client was served");
}

async fn client_secret_refusals_count_against_the_address(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin_token().await;
    let (client_id, secret, _) = app.service_account(&["gateway"]).await;
    let issue = |secret: &str| {
        let mut grpc = app.grpc.clone();
        let request = pb::IssueServiceTokenRequest {
            client_id: client_id.clone(),
            client_secret: secret.to_owned(),
        };
        async move { grpc.issue_service_token(request).await }
    };
    // A burst of wrong secrets at once: the address's budget is spent...
    let burst = futures::future::join_all((0..40).map(|_| issue("a wrong secret"))).await;
    let refused = burst
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == Code::Unauthenticated))
        .count();
    assert!(refused >= 30, "{refused} refused before the limit");
    // ...and after it even the right secret waits, and says how long.
    let throttled = issue(&secret).await.unwrap_err();
    assert_eq!(throttled.code(), Code::ResourceExhausted, "{throttled:?}");
    assert!(throttled.get_details_retry_info().is_some());
    // The HTTP port counts the same address: introspection and SSF poll.
    let http = reqwest::Client::new();
    for path in ["oauth2/introspect", "ssf/poll"] {
        let r = http
            .post(format!("{}/{path}", app.http))
            .basic_auth(&client_id, Some(&secret))
            .form(&[("token", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 429, "{path}");
        let after: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&after), "{path}: {after}");
    }
    // Throttled refusals are not audited: the trail holds the counted ones.
    let events = app.audit_events(&admin, "service_token.refused").await;
    assert_eq!(events.len(), refused, "one audit row per counted refusal");
    // A budget apart from logins': users failing logins behind one NAT never
    // keep a service there from its tokens, nor the other way round.
    let email = unique_email();
    app.register(&email, PASSWORD).await.unwrap();
    app.login(&email, PASSWORD)
        .await
        .expect("logins are not throttled by refused client secrets");
    // The window passes: the right secret works again, from this address too.
    app.clock.advance(chrono::Duration::minutes(2));
    issue(&secret).await.expect("a token after the window");
}
