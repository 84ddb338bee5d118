//! The Auth Service's cryptography: password hashing on a bounded pool (signing
//! keys are in `crate::keys`), access-token JWTs and opaque refresh tokens.

pub mod hasher;
pub mod imported;
pub mod jwt;
pub mod refresh;
pub mod verified;
