//! The Auth Service's interfaces: gRPC handlers, Envoy's external
//! authorization, and the HTTP routes (JWKS, discovery, forward auth,
//! introspection).

pub mod client;
pub mod ext_authz;
pub mod grpc;
pub mod http;
