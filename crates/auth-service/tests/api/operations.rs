//! What operators rely on: health, readiness, metrics, reflection, graceful
//! shutdown and keys sealed at rest.

use crate::helpers::{
    Backend, PASSWORD, both_backends, settings, spawn_app, spawn_with, unique_email,
};
use auth_service::keys::KeySql;
use platform::clock::ManualClock;
use secrecy::SecretString;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

both_backends!(
    health_metrics_and_reflection,
    in_flight_calls_finish_on_shutdown,
    keys_are_sealed_with_the_kek,
    a_kek_turned_on_later_seals_existing_keys
);

async fn health_metrics_and_reflection(backend: Backend) {
    let app = spawn_app(backend).await;
    let get = |path: &str| reqwest::get(format!("{}{path}", app.http));
    assert_eq!(get("/healthz").await.unwrap().status(), 200);
    assert_eq!(get("/readyz").await.unwrap().status(), 200);

    let channel = tonic::transport::Channel::from_shared(app.grpc_url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let status = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: "identity.auth.v1.AuthService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);

    let _ = app.login(&unique_email(), PASSWORD).await;
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains(r#"grpc_server_handled_total{grpc_code="16",grpc_method="/identity.auth.v1.AuthService/Login",service="auth"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("grpc_server_handling_seconds_bucket"),
        "{metrics}"
    );

    // Server reflection lists the service, so grpcurl works without the .proto files.
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    };
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        stream.message().await.unwrap().unwrap().message_response
    else {
        panic!("no service list");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"identity.auth.v1.AuthService".to_owned()),
        "{names:?}"
    );

    if backend == Backend::Postgres {
        // Readiness follows the database.
        let admin = app.db_url.rsplit_once('/').unwrap().0.to_owned() + "/postgres";
        let db = app.db_url.rsplit_once('/').unwrap().1.to_owned();
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
            .await
            .unwrap();
        sqlx::Executor::execute(
            &mut conn,
            format!("DROP DATABASE {db} WITH (FORCE)").as_str(),
        )
        .await
        .unwrap();
        assert_eq!(get("/readyz").await.unwrap().status(), 503);
    }
}

async fn in_flight_calls_finish_on_shutdown(backend: Backend) {
    let mut app = spawn_app(backend).await;
    let email = unique_email();
    app.register(&email, PASSWORD).await.unwrap();
    let client = app.grpc.clone();
    let login = tokio::spawn(async move {
        let mut c = client;
        c.login(identity_proto::auth::v1::LoginRequest {
            email,
            password: PASSWORD.into(),
        })
        .await
    });
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    app.shutdown.cancel();
    login.await.unwrap().expect("the in-flight login completes");
    app.stopped
        .take()
        .unwrap()
        .await
        .unwrap()
        .expect("clean stop");
}

async fn keys_are_sealed_with_the_kek(backend: Backend) {
    let db = backend.fresh_database().await;
    let mut sealed = settings(&db.url);
    sealed.key_encryption_key = Some(SecretString::from(
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_owned(),
    ));
    let app = spawn_with(sealed.clone(), ManualClock::default(), true).await;
    let session = app.new_session().await;
    app.validate(&session.access_token).await.unwrap();

    let store = auth_service::storage::connect(&db.url).await.unwrap();
    let keys = platform::sql!(read(&store), KeySql::signing_keys()).unwrap();
    assert!(
        !keys.is_empty() && keys.iter().all(|k| k.encrypted),
        "private keys are sealed"
    );
    for k in &keys {
        let parsed = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &k.private_key,
        );
        assert!(parsed.is_err(), "a private key is readable at rest");
    }

    // Without the KEK, or with the wrong one, the service refuses to start.
    let plain = settings(&db.url);
    assert!(
        auth_service::startup::Application::build(
            plain,
            std::sync::Arc::new(ManualClock::default())
        )
        .await
        .is_err()
    );
    let mut wrong = settings(&db.url);
    wrong.key_encryption_key = Some(SecretString::from(
        "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=".to_owned(),
    ));
    assert!(
        auth_service::startup::Application::build(
            wrong,
            std::sync::Arc::new(ManualClock::default())
        )
        .await
        .is_err()
    );
    // With it, a restart signs with the same keys.
    let again = spawn_with(sealed, ManualClock::default(), true).await;
    again
        .validate(&session.access_token)
        .await
        .expect("tokens survive a restart");
}

/// Keys made before the KEK was turned on are sealed at the first start with it,
/// and the tokens they signed keep verifying.
async fn a_kek_turned_on_later_seals_existing_keys(backend: Backend) {
    let db = backend.fresh_database().await;
    let plain = spawn_with(settings(&db.url), ManualClock::default(), true).await;
    let session = plain.new_session().await;
    let store = auth_service::storage::connect(&db.url).await.unwrap();
    let keys = platform::sql!(read(&store), KeySql::signing_keys()).unwrap();
    assert!(keys.iter().all(|k| !k.encrypted), "no KEK yet: plaintext");
    plain.shutdown.cancel();

    let mut sealed = settings(&db.url);
    sealed.key_encryption_key = Some(SecretString::from(
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_owned(),
    ));
    let app = spawn_with(sealed, ManualClock::default(), true).await;
    let keys = platform::sql!(read(&store), KeySql::signing_keys()).unwrap();
    assert!(
        !keys.is_empty() && keys.iter().all(|k| k.encrypted),
        "every key sealed at start"
    );
    for k in &keys {
        let parsed = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
            &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &k.private_key,
        );
        assert!(parsed.is_err(), "a private key is readable at rest");
    }
    app.validate(&session.access_token)
        .await
        .expect("tokens signed before keep verifying");
    app.new_session().await;
}
