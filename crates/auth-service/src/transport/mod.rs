//! The Auth Service's interfaces: gRPC handlers and the JWKS HTTP route.

pub mod grpc;
pub mod client;
pub mod http;
