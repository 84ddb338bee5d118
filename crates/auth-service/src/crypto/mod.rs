//! The Auth Service's cryptography: password hashing on a bounded pool, signing
//! keys and their rotation, access-token JWTs and opaque refresh tokens.

pub mod hasher;
pub mod jwt;
pub mod keys;
pub mod refresh;
pub mod verified;
