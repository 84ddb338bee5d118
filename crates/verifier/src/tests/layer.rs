//! The tower layer (axum, tonic) and the tonic interceptor.

use super::*;

/// The layer in an axum router: claims in, refusals out with what to do.
#[tokio::test]
async fn the_layer_puts_claims_in_extensions_and_refuses_with_a_reason() {
    use axum::body::Body;
    use http::{Request, StatusCode, header};
    use tower::ServiceExt;
    let b = Bench::new();
    let (user, sid) = (Uuid::new_v4(), Uuid::new_v4());
    let token = b.token(user, sid, &["editor"], b.now());
    let app = axum::Router::new()
        .route(
            "/me",
            axum::routing::get(|claims: axum::Extension<crate::Claims>| async move {
                format!("{} {}", claims.subject, claims.allows("users:write"))
            }),
        )
        .layer(b.verifier.layer());
    let call = |auth: Option<String>, grpc: bool| {
        let app = app.clone();
        async move {
            let mut req = Request::get("/me");
            if let Some(a) = auth {
                req = req.header(header::AUTHORIZATION, a);
            }
            if grpc {
                req = req.header(header::CONTENT_TYPE, "application/grpc");
            }
            app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
        }
    };
    let ok = call(Some(format!("Bearer {token}")), false).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let body = axum::body::to_bytes(ok.into_body(), 1024).await.unwrap();
    assert_eq!(body, format!("{user} true").as_bytes());

    let missing = call(None, false).await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let too_long = call(Some(format!("Bearer {}", "a".repeat(9000))), false).await;
    assert_eq!(too_long.status(), StatusCode::UNAUTHORIZED);

    b.apply(&b.event(
        EventType::SessionRevoked,
        &user.to_string(),
        SubjectKind::User,
        Some(sid),
        b.now(),
        json!({}),
    ));
    let revoked = call(Some(format!("Bearer {token}")), false).await;
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
    let challenge = revoked.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap();
    assert!(
        challenge.contains("invalid_token") && challenge.contains("log in again"),
        "{challenge}"
    );
    let grpc = call(Some(format!("Bearer {token}")), true).await;
    assert_eq!(
        grpc.status(),
        StatusCode::OK,
        "gRPC errors travel in headers"
    );
    assert_eq!(grpc.headers()["grpc-status"], "16");
    assert!(
        grpc.headers()["grpc-message"]
            .to_str()
            .unwrap()
            .contains("revoked")
    );

    b.advance_mono(Duration::from_secs(11));
    let other = b.token(Uuid::new_v4(), Uuid::new_v4(), &[], b.now());
    let stale = call(Some(format!("Bearer {other}")), false).await;
    assert_eq!(stale.status(), StatusCode::SERVICE_UNAVAILABLE);
    let stale = call(Some(format!("Bearer {other}")), true).await;
    assert_eq!(stale.headers()["grpc-status"], "14");
}

#[test]
fn the_interceptor_puts_claims_in_extensions() {
    use tonic::service::Interceptor;
    let b = Bench::new();
    let token = b.token(Uuid::new_v4(), Uuid::new_v4(), &["user"], b.now());
    let mut interceptor = b.verifier.interceptor();
    let mut req = tonic::Request::new(());
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let req = interceptor.call(req).unwrap();
    assert!(req.extensions().get::<crate::Claims>().is_some());
    let refused = interceptor.call(tonic::Request::new(())).unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let mut req = tonic::Request::new(());
    req.metadata_mut()
        .insert("authorization", "Bearer garbage".parse().unwrap());
    let refused = interceptor.call(req).unwrap_err();
    assert_eq!(refused.message(), "access token is malformed");
}

/// The same layer in a tonic server: a refused call never reaches the service.
#[tokio::test]
async fn the_layer_guards_a_tonic_server() {
    use identity_proto::auth::v1::auth_service_client::AuthServiceClient;
    use identity_proto::auth::v1::auth_service_server::{AuthService, AuthServiceServer};
    struct Unimplemented;
    impl AuthService for Unimplemented {}
    let b = Bench::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tonic::transport::Server::builder()
        .layer(b.verifier.layer())
        .add_service(AuthServiceServer::new(Unimplemented))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    let test = async {
        let mut client = AuthServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        let call = |token: Option<String>| {
            let mut client = client.clone();
            async move {
                let mut req = tonic::Request::new(identity_proto::auth::v1::GetJwksRequest {});
                if let Some(t) = token {
                    req.metadata_mut()
                        .insert("authorization", format!("Bearer {t}").parse().unwrap());
                }
                client.get_jwks(req).await.unwrap_err()
            }
        };
        let token = b.token(Uuid::new_v4(), Uuid::new_v4(), &["user"], b.now());
        assert_eq!(call(Some(token)).await.code(), tonic::Code::Unimplemented);
        let refused = call(None).await;
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        assert!(
            refused.message().contains("authorization"),
            "{}",
            refused.message()
        );
        let _ = &mut client;
    };
    tokio::select! {
        stopped = server => panic!("server stopped: {stopped:?}"),
        () = test => {}
    }
}
