//! The `user-service` binary: parse the configuration, run the chosen subcommand.

use clap::Parser;
use platform::clock::{SharedClock, SystemClock};
use std::sync::Arc;
use user_service::config::{Cli, Command};
use user_service::startup::{self, Application};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    platform::telemetry::init(cli.settings.log_format);
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "user-service failed");
            eprintln!("user-service: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let clock: SharedClock = Arc::new(SystemClock);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(cli.settings, clock).await?;
            platform::shutdown::run_until_signal(|shutdown| app.run_until_stopped(shutdown)).await
        }
        Command::Migrate => {
            startup::open_store(&cli.settings).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
    }
}
