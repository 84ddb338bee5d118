//! The verifier against a real Auth Service (in-process, on free ports, over
//! SQLite and PostgreSQL alike): revocations reach `verify` within a second,
//! each cause has its effect, a cut feed fails closed and a reconnect resumes
//! without loss.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod helpers;

mod effects;
mod outage;
