//! The ceilings results are divided by: a bare tonic unary server answering
//! `ValidateToken` with a response of the real size (the gRPC ceiling) and
//! Envoy's `Check` with an allow of the real shape (the ext_authz ceiling: what
//! Envoy itself spends on an authorization call), and raw
//! Argon2id hashes per second with the service's own parameters on every core
//! (the login ceiling).

use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, HeaderAppendAction,
};
use envoy_types::ext_authz::v3::{CheckResponseExt, OkHttpResponseBuilder};
use identity_proto::auth::v1 as pb;
use identity_proto::auth::v1::auth_service_server::{AuthService, AuthServiceServer};
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status};

/// Answers ValidateToken at once with a response shaped like the real one; every
/// other RPC is UNIMPLEMENTED.
#[derive(Debug, Default)]
struct Echo;

#[tonic::async_trait]
impl AuthService for Echo {
    async fn validate_token(
        &self,
        request: Request<pb::ValidateTokenRequest>,
    ) -> Result<Response<pb::ValidateTokenResponse>, Status> {
        let token = request.into_inner().access_token;
        let id = uuid::Uuid::nil().to_string();
        Ok(Response::new(pb::ValidateTokenResponse {
            user_id: id.clone(),
            session_id: id.clone(),
            roles: vec!["user".into()],
            expires_at: Some(prost_types::Timestamp {
                seconds: token.len() as i64,
                nanos: 0,
            }),
            token_id: id,
            issued_at: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: 0,
            }),
            permissions: vec!["users:read".into()],
            subject_kind: pb::SubjectKind::User as i32,
            email_verified: true,
            amr: vec!["pwd".into()],
        }))
    }
}

/// Allows every request with the three headers the Auth Service sets, so that
/// Envoy does the same work on the answer.
#[tonic::async_trait]
impl Authorization for Echo {
    async fn check(
        &self,
        _request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let id = uuid::Uuid::nil().to_string();
        let mut ok = OkHttpResponseBuilder::new();
        for (name, value) in [("x-user-id", &id), ("x-session-id", &id)] {
            ok.add_header(
                name,
                value,
                Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
                true,
            );
        }
        ok.add_header(
            "x-user-roles",
            "user",
            Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
            true,
        );
        let mut response = CheckResponse::new();
        response.set_status(Status::ok("")).set_http_response(ok);
        Ok(Response::new(response))
    }
}

/// Serves the echo server on `addr` until killed (the bench runs it as its own
/// process, so that it competes for the cores as the services do).
pub async fn serve_echo(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    tonic::transport::Server::builder()
        .add_service(AuthServiceServer::new(Echo))
        .add_service(AuthorizationServer::new(Echo))
        .serve(addr)
        .await?;
    Ok(())
}

/// Argon2id hashes per second with the service's parameters, one thread per
/// core, each reusing one memory buffer (as the service's hashing threads do;
/// a fresh 19 MiB allocation per hash would cost page faults and zeroing and
/// make the ceiling lower than it is).
pub fn argon2_ceiling(threads: usize, for_how_long: Duration) -> f64 {
    use argon2::{Algorithm, Argon2, Block, Params, Version};
    let p = auth_service::crypto::hasher::HashParams::default();
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            std::thread::spawn(move || {
                let Ok(params) = Params::new(p.memory_kib, p.iterations, p.parallelism, Some(32))
                else {
                    return 0u64;
                };
                let mut memory = vec![Block::default(); params.block_count()];
                let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
                let salt = [i as u8; 16];
                let mut out = [0u8; 32];
                let mut n = 0u64;
                while start.elapsed() < for_how_long {
                    if argon
                        .hash_password_into_with_memory(
                            b"correct horse battery staple",
                            &salt,
                            &mut out,
                            &mut memory,
                        )
                        .is_ok()
                    {
                        n += 1;
                    }
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    total as f64 / start.elapsed().as_secs_f64()
}
