//! The `proxima` binary: parses the command line, sets up logging, and calls into the
//! libraries: the server's (`serve`, `import`) and, with the default `harness` feature, the
//! load harness's (`bench`, `attack`, `regions`).

use clap::{Parser, Subcommand};
use proxima::config::{ImportConfig, ServeConfig};

/// mimalloc rather than glibc's malloc: the profile of the HTTP paths showed glibc's
/// malloc and free at 15 % of the server's time, and mimalloc's per-thread free lists
/// serve the small, short-lived allocations of a request much faster.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Proxima: an in-memory geospatial proximity server.
#[derive(Debug, Parser)]
#[command(name = "proxima", version, about)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve(Box<ServeConfig>),
    /// Import POI dumps into a data directory, offline (the server must not be running on it).
    Import(ImportConfig),
    /// Drive a running server over HTTP and report throughput and latency percentiles.
    #[cfg(feature = "harness")]
    Bench(proxima_bench::args::BenchConfig),
    /// Replay the availability attacks against a running server and report what each
    /// costs a victim's writes and `/healthz`.
    #[cfg(feature = "harness")]
    Attack(proxima_bench::args::AttackArgs),
    /// Simulate sharding by region: the share of nearby queries, over the harness's query
    /// centres, whose circle reaches more than one H3 region, per region size and radius.
    #[cfg(feature = "harness")]
    Regions(proxima_bench::args::RegionsConfig),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let command = match Cli::parse().command {
        Command::Import(config) => {
            return match proxima::offline::import(&config) {
                Ok(summary) => {
                    print!("{summary}");
                    std::process::ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("proxima import: {e}");
                    std::process::ExitCode::FAILURE
                }
            };
        }
        #[cfg(feature = "harness")]
        Command::Regions(config) => {
            proxima_bench::commands::regions(&config);
            return std::process::ExitCode::SUCCESS;
        }
        command => command,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("proxima: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result: Result<(), String> = runtime.block_on(async {
        match command {
            Command::Serve(config) => serve(*config).await.map_err(|e| e.to_string()),
            Command::Import(_) => unreachable!("handled above, without a runtime"),
            #[cfg(feature = "harness")]
            Command::Regions(_) => unreachable!("handled above, without a runtime"),
            #[cfg(feature = "harness")]
            Command::Bench(config) => proxima_bench::commands::bench(config).await,
            #[cfg(feature = "harness")]
            Command::Attack(args) => proxima_bench::commands::attack(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("proxima: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(config: ServeConfig) -> Result<(), proxima::RunError> {
    // Register the signal handlers before the address is printed: a SIGTERM that arrives
    // right after must already mean "shut down cleanly", not the default "die".
    let shutdown = shutdown_signal().map_err(proxima::RunError::Serve)?;
    let started = proxima::start(config, shutdown).await?;
    // The one line on stdout: scripts read the chosen address from it.
    println!("proxima listening on http://{}", started.addr);
    tracing::info!(addr = %started.addr, "listening");
    let result = started
        .done
        .await
        .unwrap_or_else(|e| Err(proxima::RunError::Serve(std::io::Error::other(e))));
    tracing::info!("stopped");
    result
}

/// A future that completes on Ctrl-C or SIGTERM; the handlers are registered when this
/// returns.
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("Ctrl-C: shutting down"),
            _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
        }
    })
}

/// A future that completes on Ctrl-C.
#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C: shutting down");
    })
}
