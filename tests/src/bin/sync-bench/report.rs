//! Turning measurements into the Markdown rows `sync-bench` prints.

use std::time::Duration;

/// Columns shared by the single-device scenarios.
pub const HEADER: &str = "| scenario | runs | rounds | time, median (min–max) | target | request body | response body | \
                          wire up / down | floor | against the floor |\n\
                          |---|---|---|---|---|---|---|---|---|---|";

/// One printed row of `HEADER`.
#[derive(Debug, Default)]
pub struct Row {
    pub scenario: String,
    pub runs: usize,
    pub rounds: Vec<u32>,
    pub times: Vec<Duration>,
    pub target: String,
    pub request: Vec<u64>,
    pub response: Vec<u64>,
    pub wire_up: Vec<u64>,
    pub wire_down: Vec<u64>,
    pub floor: String,
    pub against_floor: String,
}

impl Row {
    pub fn print(&self) {
        let rounds = median(&self.rounds).to_string();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} / {} | {} | {} |",
            self.scenario,
            self.runs,
            rounds,
            time_range(&self.times),
            self.target,
            bytes(median(&self.request)),
            bytes(median(&self.response)),
            bytes(median(&self.wire_up)),
            bytes(median(&self.wire_down)),
            self.floor,
            self.against_floor,
        );
    }
}

/// The median of the samples (the lower middle one for an even count).
pub fn median<T: Copy + Ord + Default>(samples: &[T]) -> T {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted
        .get(sorted.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or_default()
}

pub fn time_range(times: &[Duration]) -> String {
    let (min, max) = (times.iter().min(), times.iter().max());
    match (min, max) {
        (Some(min), Some(max)) if times.len() > 1 => {
            format!("**{}** ({}–{})", secs(median(times)), secs(*min), secs(*max))
        }
        _ => format!("**{}**", secs(median(times))),
    }
}

pub fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

/// A byte count with thousands separators.
pub fn bytes(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { f64::NAN } else { a as f64 / b as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_as_written() {
        assert_eq!(bytes(0), "0");
        assert_eq!(bytes(999), "999");
        assert_eq!(bytes(1_234_567), "1,234,567");
        assert_eq!(median(&[3, 1, 2]), 2);
        assert_eq!(median(&[4, 1, 3, 2]), 2);
        assert_eq!(median::<u32>(&[]), 0);
        assert_eq!(secs(Duration::from_millis(1500)), "1.50 s");
    }
}
