//! What the store benchmarks and the report share: the cached caseload, the worker, person and
//! visit they work on, and latency percentiles.

use std::path::PathBuf;
use std::time::Duration;

use outpost_core::{Author, DeviceId, DocId, PersonId, Section, Store, WorkerId};

use super::{BENCH_END, Config, Error, Summary, bench_data_dir, cached};

/// Words the benches search for: one in a minority of visits, one phrase common to many.
pub const SEARCH_RARE: &str = "dialysis";
pub const SEARCH_COMMON: &str = "falls night";
/// The section keystrokes go into.
pub const TYPED_SECTION: Section = Section::Goals;

#[derive(Debug)]
pub struct Fixture {
    pub config: Config,
    /// The cached store; copy it (`Scratch`) before writing.
    pub store: PathBuf,
    pub dir: PathBuf,
    pub summary: Summary,
    /// Whether this run generated the store (rather than finding it cached).
    pub generated: bool,
    /// w01, on their phone.
    pub worker: Author,
    /// The person on w01's caseload with the most visits.
    pub person: PersonId,
    /// That person's newest visit: the note a worker is most likely typing into.
    pub visit: DocId,
}

impl Fixture {
    /// The issue-size caseload when `full`, else the small one; generated once, then cached.
    pub fn prepare(full: bool) -> Result<Self, Error> {
        let base = if full { Config::issue_size() } else { Config::small() };
        let config = Config { end: BENCH_END, ..base };
        let dir = bench_data_dir()?;
        let (store, summary, generated) = cached(&config, &dir)?;
        let worker = Author::new(WorkerId::new("w01")?, DeviceId::new("phone-w01")?);
        let opened = Store::open(&store, worker.clone())?;
        let mut best: Option<(usize, PersonId, DocId)> = None;
        for row in opened.caseload(&worker.worker)? {
            let visits = opened.visits_for_person(&row.person)?;
            if let Some(newest) = visits.first()
                && best.as_ref().is_none_or(|(n, _, _)| visits.len() > *n)
            {
                best = Some((visits.len(), row.person.clone(), newest.visit.clone()));
            }
        }
        let (_, person, visit) =
            best.ok_or_else(|| Error::Config("w01 has no visits in the generated caseload".into()))?;
        Ok(Self {
            config,
            store,
            dir,
            summary,
            generated,
            worker,
            person,
            visit,
        })
    }
}

/// The `p`th percentile (0 to 100) of sorted latencies, nearest rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&ms, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&ms, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&[], 99.0), Duration::ZERO);
    }
}
