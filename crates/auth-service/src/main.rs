//! The `auth-service` binary: parse the configuration, run the chosen subcommand.

use auth_service::accounts::{Accounts, NewServiceAccount};
use auth_service::audit::ClientInfo;
use auth_service::config::{AuthService, Cli, Command};
use auth_service::credentials::Credentials;
use auth_service::domain::{DisplayName, Email, NewPassword};
use auth_service::import::Import;
use auth_service::retention::Pruner;
use auth_service::startup::{self, Application};
use clap::Parser;
use platform::clock::{SharedClock, SystemClock};
use platform::server::Command::{Migrate, Serve};
use secrecy::ExposeSecret;
use std::sync::Arc;

/// jemalloc gives freed memory back to the system after a short decay, so the
/// Argon2 buffers of a login burst (19 MiB each) do not stay resident once the
/// burst is over, as they do with glibc's per-thread arenas.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    platform::telemetry::init(cli.settings.server.log_format);
    platform::server::exit_code::<AuthService>(run(cli).await)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let clock: SharedClock = Arc::new(SystemClock);
    match cli.command.unwrap_or(Command::Server(Serve)) {
        Command::Server(Serve) => {
            let app = Application::build(cli.settings, clock).await?;
            platform::shutdown::run_until_signal(|shutdown| app.run_until_stopped(shutdown)).await
        }
        Command::Server(Migrate) => {
            startup::open_store(&cli.settings).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::RotateKeys => {
            let store = startup::open_store(&cli.settings).await?;
            startup::key_ring(&cli.settings, store, clock)?
                .rotate_now()
                .await?;
            tracing::info!("signing key rotated");
            Ok(())
        }
        Command::CreateAdmin {
            email,
            display_name,
            promote,
        } => {
            let core = startup::build_core(&cli.settings, clock).await?;
            let email = Email::parse(&email, "--email")?;
            let name = DisplayName::parse(&display_name, "--display-name")?;
            let id = Credentials(&core.authenticator)
                .create_admin(email, name, promote, || {
                    Ok(NewPassword::parse(
                        admin_password()?,
                        "AUTH_ADMIN_PASSWORD",
                    )?)
                })
                .await?;
            println!("{id}");
            tracing::info!(user_id = %id, "administrator ready");
            Ok(())
        }
        Command::Import { file } => {
            let core = startup::build_core(&cli.settings, clock).await?;
            let tally = Import(&core.authenticator).from_file(&file).await?;
            if tally.failed > 0 {
                anyhow::bail!("{} lines were not imported", tally.failed);
            }
            Ok(())
        }
        Command::Prune => {
            cli.settings.validate()?;
            let store = startup::open_store(&cli.settings).await?;
            let pruner = Pruner::new(store, clock, startup::retention(&cli.settings)?);
            let started = platform::clock::monotonic_now();
            let pruned = pruner.prune_once().await?;
            let out = serde_json::json!({
                "seconds": started.elapsed().as_secs_f64(),
                "refresh_tokens": pruned.refresh_tokens,
                "sessions": pruned.sessions,
                "throttle_counters": pruned.throttle_counters,
                "outbox_events": pruned.outbox_events,
                "audit_events": pruned.audit_events,
                "one_time_tokens": pruned.one_time_tokens,
                "mfa_challenges": pruned.mfa_challenges,
            });
            println!("{out}");
            Ok(())
        }
        Command::CreateServiceAccount { name, roles } => {
            let core = startup::build_core(&cli.settings, clock).await?;
            let account = NewServiceAccount::parse(&name, &roles)?;
            let (account, secret) = Accounts(&core.authenticator)
                .create_service_account(None, account, &ClientInfo::default())
                .await?;
            let out = serde_json::json!({
                "id": account.id,
                "client_id": account.client_id,
                "client_secret": secret.expose_secret(),
            });
            println!("{out}");
            Ok(())
        }
    }
}

/// The first administrator's password: from the environment, or one line of stdin.
fn admin_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("AUTH_ADMIN_PASSWORD") {
        return Ok(p);
    }
    eprintln!("password for the new administrator (one line on standard input):");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
