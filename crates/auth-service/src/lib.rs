//! The platform's Auth Service: registration, login, sessions, JWT issue and
//! validation. `main.rs` only parses flags and calls [`startup::Application`].

pub mod audit;
pub mod authz;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod error;
pub mod feed;
pub mod freshness;
pub mod notify;
pub mod relay;
pub mod retention;
pub mod revocation;
pub mod service;
pub mod startup;
pub mod storage;
pub mod throttle;
pub mod transport;
