//! The harness's subcommands, run: what `proxima bench`, `proxima attack` and
//! `proxima regions` do once their command lines are parsed.

use crate::args::{AttackArgs, BenchConfig, RegionsConfig};
use crate::attacks;

/// `proxima regions`: prints the share of query circles crossing regions, per size and
/// radius.
pub fn regions(config: &RegionsConfig) {
    let radii: Vec<f64> = config.radius_km.iter().map(|km| km * 1000.0).collect();
    let rows = crate::regions::simulate(
        usize::try_from(config.queries).unwrap_or(usize::MAX),
        config.seed,
        &config.resolutions,
        &radii,
    );
    print!("{}", crate::regions::table(&rows));
}

/// `proxima bench`: runs the workloads, printing a table row (or a JSON line) for each as it
/// ends.
pub async fn bench(config: BenchConfig) -> Result<(), String> {
    let json = config.json;
    if !json {
        print!("{}", crate::report::table(&[]));
    }
    let result = crate::run(&config, |report| {
        if json {
            println!(
                "{}",
                serde_json::to_string(report).expect("reports serialize")
            );
        } else {
            if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                eprint!("\r\x1b[2K"); // clear the progress line
            }
            let table = crate::report::table(std::slice::from_ref(report));
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
    result.map(|_| ()).map_err(|e| e.to_string())
}

/// `proxima attack`: runs each attack, printing a table row (or a JSON line) for each.
pub async fn attack(args: AttackArgs) -> Result<(), String> {
    let config = attacks::AttackConfig::from_args(&args)
        .await
        .map_err(|e| e.to_string())?;
    if !args.json {
        println!("{}", attacks::TABLE_HEAD);
    }
    for attack in &args.attack {
        let report = attacks::run(&config, *attack)
            .await
            .map_err(|e| format!("the {attack:?} attack: {e}"))?;
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
