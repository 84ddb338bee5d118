//! Generated gRPC code for the identity platform's contracts (`proto/` at the repository root).

#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// `identity.auth.v1`: the Auth Service.
pub mod auth {
    /// Version 1 of the Auth Service contract.
    pub mod v1 {
        tonic::include_proto!("identity.auth.v1");
    }
}

/// `identity.user.v1`: the User Service.
pub mod user {
    /// Version 1 of the User Service contract.
    pub mod v1 {
        tonic::include_proto!("identity.user.v1");
    }
}

/// The encoded `FileDescriptorSet` of every contract, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("identity_descriptor");
