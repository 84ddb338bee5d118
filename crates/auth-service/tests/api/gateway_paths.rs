//! Gateway decisions are made on the path the upstream acts on: forward auth
//! reads the original request target from the one configured header, never a
//! client's other one, and fails closed; both gateway transports refuse every
//! path a server may read as another one (dot segments, encoded separators,
//! `;` parameters, backslashes), rather than deciding on its raw form.

use crate::gateway::{check, code, denied_status};
use crate::helpers::{Backend, TestApp, both_backends, spawn_app, spawn_replica};
use reqwest::header::{HeaderName, HeaderValue};
use tonic::Code;

both_backends!(
    forward_auth_reads_only_the_configured_header,
    gateways_refuse_paths_the_upstream_reads_differently,
);

const RULE: &str = "?permission=users:write&resource=users/%7Bpath.2%7D";

/// `/forward-auth` for the `users/{path.2}` route, with these headers as bytes.
async fn forward_auth(app: &TestApp, token: &str, headers: &[(&str, &[u8])]) -> reqwest::Response {
    let mut r = reqwest::Client::new()
        .get(format!("{}/forward-auth{RULE}", app.http))
        .header("authorization", format!("Bearer {token}"));
    for (name, value) in headers {
        r = r.header(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    r.send().await.unwrap()
}

async fn forward_auth_reads_only_the_configured_header(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.new_session().await;
    let bob = app.new_session().await;
    let ada_path = format!("/users/{}", ada.user_id);
    let bob_path = format!("/users/{}", bob.user_id);
    let status = |r: reqwest::Response| r.status().as_u16();

    // The default, X-Forwarded-Uri (Traefik, Caddy), decides.
    let own = [("x-forwarded-uri", ada_path.as_bytes())];
    assert_eq!(
        status(forward_auth(&app, &ada.access_token, &own).await),
        200
    );
    // A client's own X-Original-URI naming its own profile changes nothing
    // (the proxy passes it on, and it was read first).
    let confused = [
        ("x-forwarded-uri", bob_path.as_bytes()),
        ("x-original-uri", ada_path.as_bytes()),
    ];
    assert_eq!(
        status(forward_auth(&app, &ada.access_token, &confused).await),
        403
    );
    // The configured header missing: refused, whatever else is there.
    let only_other = [("x-original-uri", ada_path.as_bytes())];
    let missing = forward_auth(&app, &ada.access_token, &only_other).await;
    assert_eq!(missing.status(), 403);
    assert!(missing.text().await.unwrap().contains("x-forwarded-uri"));
    assert_eq!(
        status(forward_auth(&app, &ada.access_token, &[]).await),
        403
    );
    // Raw non-ASCII bytes in it (nginx's `$request_uri` passes them): refused,
    // not skipped in favour of a client-supplied header.
    let bytes = [bob_path.as_bytes(), b"?note=\xff\xfe"].concat();
    let raw = [
        ("x-forwarded-uri", bytes.as_slice()),
        ("x-original-uri", ada_path.as_bytes()),
    ];
    assert_eq!(
        status(forward_auth(&app, &ada.access_token, &raw).await),
        403
    );
    // Twice (a proxy that appends to the client's): refused.
    let twice = [
        ("x-forwarded-uri", ada_path.as_bytes()),
        ("x-forwarded-uri", ada_path.as_bytes()),
    ];
    assert_eq!(
        status(forward_auth(&app, &ada.access_token, &twice).await),
        403
    );
    // Not a request target at all.
    let absolute = format!("http://example.com{ada_path}");
    let absolute = [("x-forwarded-uri", absolute.as_bytes())];
    assert_eq!(
        status(forward_auth(&app, &ada.access_token, &absolute).await),
        403
    );

    // AUTH_FORWARD_URI_HEADER names another header: only that one is read.
    let nginx = spawn_replica(&app, |s| {
        s.forward_uri_header = "x-original-uri".parse().unwrap();
    })
    .await;
    assert_eq!(
        status(forward_auth(&nginx, &ada.access_token, &only_other).await),
        200
    );
    let swapped = [
        ("x-original-uri", bob_path.as_bytes()),
        ("x-forwarded-uri", ada_path.as_bytes()),
    ];
    assert_eq!(
        status(forward_auth(&nginx, &ada.access_token, &swapped).await),
        403
    );
    assert_eq!(
        status(forward_auth(&nginx, &ada.access_token, &own).await),
        403
    );
}

/// Paths that name Ada's profile as written but Bob's (or nothing certain)
/// once a server normalises them, or reads `;`, `\` or `%2F` its own way.
fn traversals(ada: &str, bob: &str) -> Vec<String> {
    vec![
        format!("/users/{ada}/../{bob}"),
        format!("/users/{ada}/%2e%2e/{bob}"),
        format!("/users/{ada}/%2E%2E/{bob}"),
        format!("/users/{ada}/.%2e/{bob}"),
        format!("/users/{ada}/./../{bob}"),
        format!("/users/{ada}/..;/{bob}"),
        format!("/users/{ada};/../{bob}"),
        format!("/users/{ada}/..%2f{bob}"),
        format!("/users/{ada}/..%2F{bob}"),
        format!("/users/{ada}/..%5c{bob}"),
        format!("/users/{ada}/..\\{bob}"),
        format!("/users/{ada}\\..\\{bob}"),
        format!("/users/{ada}//../{bob}"),
        format!("/users/{ada}/%2e%2e%2f{bob}"),
        // Normalised, these are Ada's own: refused all the same, not repaired.
        format!("/users/{bob}/../{ada}"),
        format!("/users/./{ada}"),
        format!("/users//{ada}"),
        format!("/%75sers/{ada}"),
    ]
}

async fn gateways_refuse_paths_the_upstream_reads_differently(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.new_session().await;
    let bob = app.new_session().await;
    let rules = [
        ("permission", "users:write"),
        ("resource", "users/{path.2}"),
    ];
    let own = format!("/users/{}?x=/../y", ada.user_id);
    let ok = check(&app, Some(&ada.access_token), &own, &rules).await;
    assert_eq!(code(&ok), 0, "the normal form of her own path");
    let header = [("x-forwarded-uri", own.as_bytes())];
    let allowed = forward_auth(&app, &ada.access_token, &header).await;
    assert_eq!(allowed.status(), 200);

    for path in traversals(&ada.user_id, &bob.user_id) {
        // ext_authz: 400 with the reason, and no challenge (a token would not help).
        let denied = check(&app, Some(&ada.access_token), &path, &rules).await;
        assert_eq!(code(&denied), Code::InvalidArgument as i32, "{path}");
        assert_eq!(denied_status(&denied), (400, None), "{path}");
        // Forward auth: 403 (all nginx's auth_request passes on besides 401).
        let r = forward_auth(
            &app,
            &ada.access_token,
            &[("x-forwarded-uri", path.as_bytes())],
        )
        .await;
        assert_eq!(r.status(), 403, "{path}");
        assert!(r.headers().get("x-user-id").is_none(), "{path}");
        assert!(r.text().await.unwrap().contains("path"), "{path}");
        // Even on a route with no resource: the path is refused, not ignored.
        let any = check(&app, Some(&ada.access_token), &path, &[]).await;
        assert_eq!(code(&any), Code::InvalidArgument as i32, "{path}");
    }
}
