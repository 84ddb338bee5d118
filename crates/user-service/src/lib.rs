//! The platform's User Service: user profiles and their integrity. `main.rs` only
//! parses flags and calls [`startup::Application`].

pub mod config;
pub mod domain;
pub mod error;
pub mod policy;
pub mod reads;
pub mod relay;
pub mod service;
pub mod startup;
pub mod storage;
pub mod transport;
