//! What the identity services truly share: the clock, telemetry, graceful shutdown,
//! database pools, the auxiliary HTTP port (health, readiness, metrics), gRPC
//! request metrics, caller identification and the transactional outbox.

pub mod caller;
pub mod clock;
pub mod db;
pub mod grpc;
pub mod http_aux;
pub mod metrics;
pub mod outbox;
pub mod shutdown;
pub mod status;
pub mod telemetry;
pub mod validation;
