//! The User Service's interface: gRPC handlers.

pub mod grpc;
