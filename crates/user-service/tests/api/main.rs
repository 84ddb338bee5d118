//! The User Service's integration tests: both services, in-process, on free
//! ports, over PostgreSQL and SQLite alike; and end-to-end tests with both as
//! real processes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod helpers;

mod authorization;
mod e2e;
mod plans;
mod storage;
mod users;
