//! The platform's Auth Service: registration, login, sessions, JWT issue and
//! validation. `main.rs` only parses flags and calls [`startup::Application`].

pub mod config;
pub mod crypto;
pub mod domain;
pub mod audit;
pub mod authz;
pub mod error;
pub mod relay;
pub mod revocation;
pub mod service;
pub mod throttle;
pub mod startup;
pub mod storage;
pub mod transport;
