//! Writes a realistic caseload into a new Outpost store and prints what it made.
//!
//! cargo run --release -p outpost-tests --bin generate-caseload -- --out PATH [--people N]
//!     [--visits N] [--seed N] [--end YYYY-MM-DD] [--no-reviews]
//! cargo run --release -p outpost-tests --bin generate-caseload -- --bench-cache
//!     (the issue-size store the benches use, generated only if it is not cached yet)

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use outpost_tests::caseload::{self, BENCH_END, Config};

const USAGE: &str = "usage: generate-caseload (--out PATH | --bench-cache) [--people N] [--visits N] [--seed N] \
                     [--end YYYY-MM-DD] [--no-reviews]";

enum Target {
    Out(PathBuf),
    BenchCache,
}

fn parse(args: &[String]) -> Result<(Target, Config), String> {
    let mut config = Config::issue_size();
    let mut target = None;
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: &String| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag}: {v:?} is not a whole number"))
        };
        match flag.as_str() {
            "--out" => target = Some(Target::Out(PathBuf::from(value()?))),
            "--bench-cache" => {
                target = Some(Target::BenchCache);
                config.end = BENCH_END;
            }
            "--people" => config.people = number(value()?)? as usize,
            "--visits" => config.visits = number(value()?)? as usize,
            "--seed" => config.seed = number(value()?)?,
            "--end" => {
                let v = value()?;
                config.end = NaiveDate::parse_from_str(v, "%Y-%m-%d")
                    .map_err(|_| format!("--end: {v:?} is not a date like 2026-11-01"))?;
            }
            "--no-reviews" => config.reviews = false,
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let target = target.ok_or("say where to write: --out PATH or --bench-cache")?;
    Ok((target, config))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (target, config) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("generate-caseload: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = match target {
        Target::Out(path) => caseload::generate(&path, &config).map(|summary| (path, summary, true)),
        Target::BenchCache => caseload::bench_data_dir()
            .map_err(caseload::Error::from)
            .and_then(|dir| caseload::cached(&config, &dir)),
    };
    match result {
        Ok((path, summary, generated)) => {
            let how = if generated { "generated" } else { "already cached" };
            println!("{} ({how})\n{summary}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("generate-caseload: {e}");
            ExitCode::FAILURE
        }
    }
}
