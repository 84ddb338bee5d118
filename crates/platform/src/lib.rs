//! What the identity services truly share: the server shell (common flags, the app
//! builder), the clock, telemetry, graceful shutdown, database pools, the auxiliary
//! HTTP port (health, readiness, metrics), gRPC request metrics, access checks and
//! the transactional outbox.

pub mod access;
pub mod clock;
pub mod db;
pub mod grpc;
pub mod http_aux;
pub mod ids;
pub mod metrics;
pub mod outbox;
pub mod paging;
pub mod security_events;
pub mod server;
pub mod shutdown;
pub mod sql;
pub mod status;
pub mod tasks;
pub mod telemetry;
pub mod tls;
pub mod validation;
