//! The gateway interfaces through their real transports: Envoy's ext_authz
//! `Check` over gRPC, HTTP forward auth, OpenID discovery, the JWKS's caching
//! headers and RFC 7662 introspection.

use crate::helpers::{Backend, assert_code, bearer, both_backends, spawn_app};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest, CheckResponse};
use identity_proto::auth::v1 as pb;
use std::collections::HashMap;
use tonic::Code;

both_backends!(
    ext_authz_check_decides_like_check_permission,
    forward_auth_answers_nginx_and_traefik,
    discovery_jwks_caching_and_introspection,
);

pub(crate) async fn check(
    app: &crate::helpers::TestApp,
    token: Option<&str>,
    path: &str,
    extensions: &[(&str, &str)],
) -> CheckResponse {
    let mut headers = HashMap::new();
    if let Some(t) = token {
        headers.insert("authorization".to_owned(), format!("Bearer {t}"));
    }
    headers.insert("x-user-id".to_owned(), "forged".to_owned());
    let request = CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(Request {
                http: Some(HttpRequest {
                    method: "GET".into(),
                    path: path.into(),
                    headers,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            context_extensions: extensions
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..Default::default()
        }),
    };
    let channel = tonic::transport::Channel::from_shared(app.grpc_url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    AuthorizationClient::new(channel)
        .check(request)
        .await
        .unwrap()
        .into_inner()
}

pub(crate) fn code(r: &CheckResponse) -> i32 {
    r.status.as_ref().map_or(-1, |s| s.code)
}

pub(crate) fn denied_status(r: &CheckResponse) -> (i32, Option<String>) {
    use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
    match &r.http_response {
        Some(HttpResponse::DeniedResponse(d)) => (
            d.status.as_ref().map_or(0, |s| s.code),
            d.headers
                .iter()
                .filter_map(|h| h.header.as_ref())
                .find(|h| h.key == "www-authenticate")
                .map(|h| h.value.clone()),
        ),
        other => panic!("not a denial: {other:?}"),
    }
}

fn forwarded(r: &CheckResponse) -> HashMap<String, String> {
    use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
    match &r.http_response {
        Some(HttpResponse::OkResponse(ok)) => ok
            .headers
            .iter()
            .filter_map(|h| h.header.as_ref())
            .map(|h| (h.key.clone(), h.value.clone()))
            .collect(),
        other => panic!("not allowed: {other:?}"),
    }
}

async fn ext_authz_check_decides_like_check_permission(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.new_session().await;
    let bob = app.new_session().await;

    let none = check(&app, None, "/users", &[]).await;
    assert_eq!(code(&none), Code::Unauthenticated as i32);
    assert_eq!(denied_status(&none), (401, Some("Bearer".into())));
    let garbage = check(&app, Some("garbage"), "/users", &[]).await;
    assert_eq!(
        denied_status(&garbage),
        (401, Some(r#"Bearer error="invalid_token""#.into()))
    );

    let ok = check(&app, Some(&ada.access_token), "/anything", &[]).await;
    assert_eq!(code(&ok), 0);
    let headers = forwarded(&ok);
    assert_eq!(
        headers["x-user-id"], ada.user_id,
        "overwrites the forged value"
    );
    assert_eq!(headers["x-session-id"], ada.session_id);
    assert_eq!(headers["x-user-roles"], "user");

    // Per-route permission, and {path.N} ownership.
    let own = format!("/users/{}/avatar", ada.user_id);
    let rules = [
        ("permission", "users:write"),
        ("resource", "users/{path.2}"),
    ];
    assert_eq!(
        code(&check(&app, Some(&ada.access_token), &own, &rules).await),
        0
    );
    let theirs = check(&app, Some(&bob.access_token), &own, &rules).await;
    assert_eq!(code(&theirs), Code::PermissionDenied as i32);
    assert_eq!(denied_status(&theirs).0, 403);
    let short = check(&app, Some(&ada.access_token), "/users", &rules).await;
    assert_eq!(denied_status(&short).0, 403);

    // Revoked: logout, and the next Check is a 401.
    app.logout(&ada.refresh_token).await.unwrap();
    let revoked = check(&app, Some(&ada.access_token), "/anything", &[]).await;
    assert_eq!(denied_status(&revoked).0, 401);
}

async fn forward_auth_answers_nginx_and_traefik(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.new_session().await;
    let bob = app.new_session().await;
    let http = reqwest::Client::new();
    let ask = |token: Option<&str>, uri_header: &str, uri: &str, query: &str| {
        let mut r = http
            .get(format!("{}/forward-auth{query}", app.http))
            .header(uri_header, uri)
            .header("x-user-id", "forged");
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        r.send()
    };
    let none = ask(None, "x-forwarded-uri", "/x", "").await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    let bad = ask(Some("nope"), "x-forwarded-uri", "/x", "")
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    assert_eq!(
        bad.headers()["www-authenticate"],
        r#"Bearer error="invalid_token""#
    );

    let ok = ask(Some(&ada.access_token), "x-forwarded-uri", "/x", "")
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-user-id"], ada.user_id.as_str());
    assert_eq!(ok.headers()["x-session-id"], ada.session_id.as_str());
    assert_eq!(ok.headers()["x-user-roles"], "user");

    let own = format!("/users/{}", ada.user_id);
    let rule = "?permission=users:write&resource=users/%7Bpath.2%7D";
    let mine = ask(Some(&ada.access_token), "x-forwarded-uri", &own, rule)
        .await
        .unwrap();
    assert_eq!(mine.status(), 200);
    let not = ask(Some(&bob.access_token), "x-forwarded-uri", &own, rule)
        .await
        .unwrap();
    assert_eq!(not.status(), 403);
    assert_eq!(
        not.headers()["www-authenticate"],
        r#"Bearer error="insufficient_scope""#
    );
    // Any method; the original target is still required.
    let post = |uri: Option<&str>| {
        let mut r = http
            .post(format!("{}/forward-auth", app.http))
            .header("authorization", format!("Bearer {}", ada.access_token));
        if let Some(uri) = uri {
            r = r.header("x-forwarded-uri", uri);
        }
        r.send()
    };
    assert_eq!(post(Some("/x")).await.unwrap().status(), 200);
    assert_eq!(post(None).await.unwrap().status(), 403);
}

async fn discovery_jwks_caching_and_introspection(backend: Backend) {
    let app = spawn_app(backend).await;
    let http = reqwest::Client::new();
    let discovery: serde_json::Value = http
        .get(format!("{}/.well-known/openid-configuration", app.http))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], "identity-auth");
    let jwks_uri = discovery["jwks_uri"].as_str().unwrap();
    assert_eq!(jwks_uri, format!("{}/.well-known/jwks.json", app.http));
    assert!(
        discovery["introspection_endpoint"]
            .as_str()
            .unwrap()
            .starts_with("http://")
    );

    let jwks = http.get(jwks_uri).send().await.unwrap();
    let cache = jwks.headers()["cache-control"].to_str().unwrap().to_owned();
    // 30-day rotation: the next key is published an hour ahead; caches keep 30 min.
    assert_eq!(cache, "public, max-age=1800");
    let tag = jwks.headers()["etag"].to_str().unwrap().to_owned();
    let again = http
        .get(jwks_uri)
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    // Introspection, for a service account holding tokens:introspect.
    let (client_id, secret, _) = app.service_account(&["gateway"]).await;
    let (plain_id, plain_secret, _) = app.service_account(&["user"]).await;
    let ada = app.new_session().await;
    let introspect = |id: &str, secret: &str, token: &str| {
        http.post(format!("{}/oauth2/introspect", app.http))
            .basic_auth(id, Some(secret))
            .form(&[("token", token)])
            .send()
    };
    let active: serde_json::Value = introspect(&client_id, &secret, &ada.access_token)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(active["active"], true);
    assert_eq!(active["sub"], ada.user_id.as_str());
    assert_eq!(active["roles"], serde_json::json!(["user"]));
    assert_eq!(active["email_verified"], false);
    assert_eq!(active["amr"], serde_json::json!(["pwd"]));
    let bad_client = introspect(&client_id, "wrong", &ada.access_token)
        .await
        .unwrap();
    assert_eq!(bad_client.status(), 401);
    let no_permission = introspect(&plain_id, &plain_secret, &ada.access_token)
        .await
        .unwrap();
    assert_eq!(no_permission.status(), 401);
    app.logout(&ada.refresh_token).await.unwrap();
    let inactive: serde_json::Value = introspect(&client_id, &secret, &ada.access_token)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inactive, serde_json::json!({"active": false}));
    let garbage: serde_json::Value = introspect(&client_id, &secret, "garbage")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(garbage["active"], false);
    // The gRPC interface is unchanged by all this.
    assert_code(
        app.grpc
            .clone()
            .validate_token(bearer(
                pb::ValidateTokenRequest {
                    access_token: "garbage".into(),
                },
                "x",
            ))
            .await,
        Code::Unauthenticated,
    );
}
