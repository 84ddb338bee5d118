//! The `user-service` binary: parse the configuration, run the chosen subcommand.

use clap::Parser;
use platform::clock::{SharedClock, SystemClock};
use platform::server::Command;
use std::sync::Arc;
use user_service::config::{Cli, UserService};
use user_service::startup::{self, Application};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    platform::telemetry::init(cli.settings.server.log_format);
    platform::server::exit_code::<UserService>(run(cli).await)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let clock: SharedClock = Arc::new(SystemClock);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = Application::build(cli.settings, clock).await?;
            platform::shutdown::run_until_signal(|shutdown| app.run_until_stopped(shutdown)).await
        }
        Command::Migrate => {
            startup::open_database(&cli.settings).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
    }
}
