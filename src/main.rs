//! The `proxima` binary: parses the command line, sets up logging, and calls into the library.

use clap::Parser;
use proxima::config::{Cli, Command};

/// mimalloc rather than glibc's malloc: the profile of the HTTP paths showed glibc's
/// malloc and free at 15 % of the server's time, and mimalloc's per-thread free lists
/// serve the small, short-lived allocations of a request much faster.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    if let Command::Import(config) = &cli.command {
        return match proxima::offline::import(config) {
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
    if let Command::Regions(config) = &cli.command {
        let radii: Vec<f64> = config.radius_km.iter().map(|km| km * 1000.0).collect();
        let rows = proxima::bench::regions::simulate(
            usize::try_from(config.queries).unwrap_or(usize::MAX),
            config.seed,
            &config.resolutions,
            &radii,
        );
        print!("{}", proxima::bench::regions::table(&rows));
        return std::process::ExitCode::SUCCESS;
    }
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
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(config) => serve(*config).await,
            Command::Import(_) | Command::Regions(_) => {
                unreachable!("handled above, without a runtime")
            }
            Command::Bench(config) => bench(config).await,
            Command::Attack(args) => attack(args).await,
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

async fn serve(config: proxima::config::ServeConfig) -> Result<(), proxima::RunError> {
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

async fn bench(config: proxima::config::BenchConfig) -> Result<(), proxima::RunError> {
    let json = config.json;
    if !json {
        print!("{}", proxima::bench::report::table(&[]));
    }
    let result = proxima::bench::run(&config, |report| {
        if json {
            println!(
                "{}",
                serde_json::to_string(report).expect("reports serialize")
            );
        } else {
            if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                eprint!("\r\x1b[2K"); // clear the progress line
            }
            let table = proxima::bench::report::table(std::slice::from_ref(report));
            print!(
                "{}",
                table
                    .lines()
                    .skip(1)
                    .map(|l| format!("{l}\n"))
                    .collect::<String>()
            );
        }
    })
    .await;
    result
        .map(|_| ())
        .map_err(|e| proxima::RunError::Serve(std::io::Error::other(e)))
}

async fn attack(args: proxima::config::AttackArgs) -> Result<(), proxima::RunError> {
    use proxima::bench::attacks;
    let failed = |e: String| proxima::RunError::Serve(std::io::Error::other(e));
    let config = attacks::AttackConfig::from_args(&args)
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !args.json {
        println!("{}", attacks::TABLE_HEAD);
    }
    for attack in &args.attack {
        let report = attacks::run(&config, *attack)
            .await
            .map_err(|e| failed(format!("the {attack:?} attack: {e}")))?;
        if args.json {
            println!(
                "{}",
                serde_json::to_string(&report).expect("reports serialize")
            );
        } else {
            println!("{}", report.row());
        }
    }
    Ok(())
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
