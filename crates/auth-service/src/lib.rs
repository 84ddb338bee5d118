//! The platform's Auth Service: registration, login, sessions, JWT issue and
//! validation. `main.rs` only parses flags and calls [`startup::Application`].
//!
//! One folder per feature (its types in `model.rs`, its SQL in `sql.rs`, its
//! use cases in `mod.rs`), over a shared [`context::Context`]; `transport`
//! maps gRPC and HTTP onto the use cases. `docs/ARCHITECTURE.md` walks it.

pub mod access;
pub mod accounts;
pub mod audit;
pub mod config;
pub mod context;
pub mod credentials;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod gateway;
pub mod import;
pub mod keys;
pub mod mfa;
pub mod notify;
pub mod recovery;
pub mod relay;
pub mod retention;
pub mod sessions;
pub mod signals;
pub mod startup;
pub mod storage;
pub mod throttle;
pub mod transport;
