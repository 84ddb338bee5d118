//! What the identity services truly share: the clock, telemetry, graceful shutdown,
//! the auxiliary HTTP port (health, readiness, metrics) and gRPC request metrics.

pub mod clock;
pub mod http_aux;
pub mod metrics;
pub mod shutdown;
pub mod telemetry;
