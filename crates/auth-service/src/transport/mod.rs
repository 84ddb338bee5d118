//! The Auth Service's interfaces: gRPC handlers and the JWKS HTTP route.

pub mod client;
pub mod grpc;
pub mod http;
