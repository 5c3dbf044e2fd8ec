//! Sync benchmarks on the generated caseload, each printing Markdown table rows.
//!
//! sync-bench header                 the header of the single-device table
//! sync-bench pull [--runs N]        a fresh device pulls the whole caseload over loopback TLS
//! sync-bench days-work [--runs N]   a day's work (8 visits typed offline) pushed
//! sync-bench noop [--runs N]        a sync with nothing to exchange
//! sync-bench rural [--runs N]       the day's work over 100 kbit/s with a 400 ms round trip
//! sync-bench load --server-bin PATH [--devices N] [--seconds S] [--team-size N]
//!                 [--splices-per-save N] [--server-cpu CPUS] [--database-url URL] [--servers N]
//!                 [--no-header]
//!                                   many devices against the server binary, open loop; with
//!                                   --database-url, N server processes over one PostgreSQL
//! sync-bench memory --server-bin PATH [--docs 1000,10000,50000] [--database-url URL]
//!                 [--server-cpu CPUS] [--no-header]
//!                                   the server's memory holding N documents: a fresh device
//!                                   pulls them all, then devices push a day's work
//! sync-bench compare (export DIR | pull --docs N --server-bin PATH [--server-cpu CPU])
//!                                   Outpost's half of scripts/compare-automerge-repo.sh
//!
//! `--small` uses the small caseload (seconds rather than minutes; for trying the bench out).
//! The caseload and a server database seeded with it are cached under `target/bench-data/`.
//! `scripts/bench-sync.sh` runs them all.

mod compare;
mod load;
mod memory;
mod records;
mod report;
mod scenarios;
mod seed;
mod server;
mod setup;

use std::path::PathBuf;
use std::process::ExitCode;

use setup::{Result, Seeded};

const USAGE: &str = "usage: sync-bench (header | pull | days-work | noop | rural | load --server-bin PATH \
                     | memory --server-bin PATH) [--small] [--runs N] [--devices N] [--seconds S] [--team-size N] \
                     [--splices-per-save N] [--server-cpu CPUS] [--database-url URL] [--servers N] \
                     [--docs N,N,...] [--no-header]";

#[derive(Debug)]
struct Args {
    scenario: String,
    small: bool,
    no_header: bool,
    runs: Option<usize>,
    load: load::Options,
    /// `memory`: the stored document counts to measure.
    docs: Vec<usize>,
}

fn parse(args: &[String]) -> std::result::Result<Args, String> {
    let mut args = args.iter();
    let scenario = args.next().ok_or("name a scenario")?.clone();
    let mut parsed = Args {
        scenario,
        small: false,
        no_header: false,
        runs: None,
        docs: vec![1_000, 10_000, 50_000],
        load: load::Options {
            server_bin: PathBuf::new(),
            devices: 200,
            seconds: 30.0,
            team_size: 10,
            people_per_team: 8,
            splices_per_save: 10,
            server_cpu: None,
            database_url: None,
            servers: 1,
        },
    };
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: &String| {
            v.parse::<usize>()
                .map_err(|_| format!("{flag}: {v:?} is not a whole number"))
        };
        match flag.as_str() {
            "--small" => parsed.small = true,
            "--no-header" => parsed.no_header = true,
            "--runs" => parsed.runs = Some(number(value()?)?.max(1)),
            "--server-bin" => parsed.load.server_bin = PathBuf::from(value()?),
            "--devices" => parsed.load.devices = number(value()?)?.max(1),
            "--seconds" => {
                let v = value()?;
                parsed.load.seconds = v.parse().map_err(|_| format!("--seconds: {v:?} is not a number"))?;
            }
            "--team-size" => parsed.load.team_size = number(value()?)?.max(1),
            "--splices-per-save" => parsed.load.splices_per_save = number(value()?)?.max(1),
            "--server-cpu" => {
                let v = value()?;
                if v.is_empty() || !v.chars().all(|c| c.is_ascii_digit() || c == ',' || c == '-') {
                    return Err(format!("--server-cpu: {v:?} is not a CPU list such as 0 or 0,1"));
                }
                parsed.load.server_cpu = Some(v.clone());
            }
            "--database-url" => parsed.load.database_url = Some(value()?.clone()),
            "--servers" => parsed.load.servers = number(value()?)?.max(1),
            "--docs" => {
                parsed.docs = value()?
                    .split(',')
                    .map(|n| n.trim().replace('_', "").parse::<usize>().map(|n| n.max(1)))
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|_| "--docs: give document counts such as 1000,10000,50000".to_string())?;
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(parsed)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(("compare", rest)) = args.split_first().map(|(first, rest)| (first.as_str(), rest)) {
        return compare::main(rest);
    }
    let args = match parse(&args) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("sync-bench: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sync-bench {}: {e}", args.scenario);
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<()> {
    match args.scenario.as_str() {
        "header" => {
            println!("{}", report::HEADER);
            return Ok(());
        }
        "pull" | "days-work" | "noop" | "rural" | "load" | "memory" => {}
        other => return Err(format!("unknown scenario {other:?}\n{USAGE}").into()),
    }
    let seeded = Seeded::prepare(!args.small)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        if args.scenario == "memory" {
            if args.load.server_bin.as_os_str().is_empty() {
                return Err("memory needs --server-bin (target/release/outpost-server)".into());
            }
            return memory::run(&seeded, &args.load, &args.docs, args.no_header).await;
        }
        if args.scenario == "load" {
            if args.load.server_bin.as_os_str().is_empty() {
                return Err("load needs --server-bin (target/release/outpost-server)".into());
            }
            if !args.no_header {
                println!("{}", load::HEADER);
            }
            return load::run(&seeded, &args.load).await;
        }
        let bench = scenarios::Bench::start(seeded).await?;
        match args.scenario.as_str() {
            "pull" => scenarios::pull(&bench, args.runs.unwrap_or(3)).await,
            "days-work" => scenarios::days_work(&bench, args.runs.unwrap_or(5)).await,
            "noop" => scenarios::noop(&bench, args.runs.unwrap_or(20)).await,
            _ => scenarios::rural(&bench, args.runs.unwrap_or(3)).await,
        }
    })
}
