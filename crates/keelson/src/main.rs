//! `keelson`: Kubernetes in one binary.

mod client;
mod cmd;
mod kubeconfig;
mod pki;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "keelson",
    version,
    about = "Kubernetes in one small, fast binary"
)]
struct Cli {
    /// Log filter, e.g. `info`, `debug`, `apiserver=debug` (also from KEELSON_LOG).
    #[arg(long, global = true, env = "KEELSON_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (API server and its store).
    Server(Box<cmd::server::Args>),
    /// Show the retained revisions of one object: when, by whom, and what changed.
    History(cmd::history::Args),
    /// Simulate nodes: hollow kubelets that register, heartbeat and run the pods bound to them.
    Simulate(cmd::simulate::Args),
    /// Explain a pod's scheduling: which plugins reject which nodes, or how its node scored.
    Why(cmd::why::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| {
            runtime.block_on(async {
                match cli.command {
                    Command::Server(args) => cmd::server::run(*args).await,
                    Command::History(args) => cmd::history::run(args).await,
                    Command::Simulate(args) => cmd::simulate::run(args).await,
                    Command::Why(args) => cmd::why::run(args).await,
                }
            })
        });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line per cause, outermost first: what failed, then why.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
