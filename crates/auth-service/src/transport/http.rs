//! The Auth Service's own HTTP route: the JWKS at `/.well-known/jwks.json`.

use crate::service::Authenticator;
use axum::{
    Router, extract::State, http::StatusCode, http::header, response::IntoResponse, routing::get,
};
use std::sync::Arc;

/// `GET /.well-known/jwks.json`.
pub fn routes(core: Arc<Authenticator>) -> Router {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .with_state(core)
}

async fn jwks(State(core): State<Arc<Authenticator>>) -> impl IntoResponse {
    match core.key_set() {
        Ok(keys) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/jwk-set+json"),
                // Short enough that a rotation's next key is seen long before use.
                (header::CACHE_CONTROL, "public, max-age=300"),
            ],
            keys.jwks_json.clone(),
        )
            .into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "signing keys not loaded\n").into_response(),
    }
}
