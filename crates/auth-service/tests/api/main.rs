//! The Auth Service's integration tests: the real service on free ports, over
//! PostgreSQL and SQLite alike.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod helpers;

mod access;
mod bad_input;
mod credential_changes;
mod edge_input;
mod flow;
mod gateway;
mod gateway_paths;
mod hardening;
mod import;
mod import_batch;
mod import_rpc;
mod mfa;
mod operations;
mod outage;
mod plans;
mod recovery;
mod roles;
mod security;
mod signals;
mod ssf_poll;
mod storage;
mod tokens;
mod webhook;
