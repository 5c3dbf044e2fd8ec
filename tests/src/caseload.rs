//! A deterministic, realistic caseload: people supported, visits typed as hundreds of keystrokes,
//! agreed actions, observations, assessments and review steps, written into an Outpost store.
//!
//! Documents are built in memory (`Document`, one Automerge change per edit) and imported in
//! batches, one SQLite transaction each, so generating 1.2 million keystrokes does not pay an
//! fsync per keystroke. The same seed and config give the same content; ids are random uuids.

mod cache;
mod fixture;
mod people;
mod phrases;
mod prose;
mod records;
mod reviews;
mod summary;
mod typing;

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::time::Instant;

use chrono::{DateTime, Datelike, NaiveDate, Utc, Weekday};
use outpost_core::{Author, DeviceId, DocId, Document, NewVisit, PersonId, Setting, Store, TeamId, WorkerId};
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use cache::{BENCH_END, Scratch, bench_data_dir, cached};
pub use fixture::{Fixture, SEARCH_COMMON, SEARCH_RARE, TYPED_SECTION, percentile};
pub use people::days_before;
pub use summary::Summary;

/// Documents per `import_batch` call (one transaction each).
const IMPORT_BATCH: usize = 256;
/// How far back visits go.
const HISTORY_DAYS: u64 = 548;
const TEAM_NAMES: &[&str] = &["north", "south", "west", "east", "central", "fells"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub people: usize,
    pub visits: usize,
    pub seed: u64,
    pub workers: usize,
    pub teams: usize,
    pub edits_per_visit: usize,
    pub chars_per_visit: usize,
    /// The caseload's "today": visits fall in the 18 months before it, actions fall due around it.
    pub end: NaiveDate,
    /// Take review steps (submit, approve, return) on most visits; each is a durable write.
    pub reviews: bool,
}

impl Config {
    /// The size the issue asks for: 300 people and 2,000 visits.
    pub fn issue_size() -> Self {
        Self {
            people: 300,
            visits: 2_000,
            seed: 1,
            workers: 12,
            teams: 3,
            edits_per_visit: 600,
            chars_per_visit: 3_000,
            end: Utc::now().date_naive(),
            reviews: true,
        }
    }

    /// Visits of full size, but few of them: for smoke runs that must finish in seconds.
    pub fn small() -> Self {
        Self {
            people: 12,
            visits: 30,
            workers: 4,
            teams: 2,
            ..Self::issue_size()
        }
    }

    /// A name for a store generated from this config, used to cache one between runs.
    pub fn key(&self) -> String {
        format!(
            "caseload-g{}-p{}-v{}-s{}-w{}-t{}-e{}-c{}-{}{}",
            summary::GENERATOR_VERSION,
            self.people,
            self.visits,
            self.seed,
            self.workers,
            self.teams,
            self.edits_per_visit,
            self.chars_per_visit,
            self.end.format("%Y%m%d"),
            if self.reviews { "" } else { "-noreview" },
        )
    }

    fn check(&self) -> Result<(), Error> {
        let bad = |reason: &str| Err(Error::Config(reason.to_string()));
        if self.people == 0 {
            return bad("people must be at least 1");
        }
        if self.teams == 0 || self.workers < self.teams {
            return bad("need at least one team and at least one worker per team");
        }
        if self.workers > 99 {
            return bad("at most 99 workers (ids are w01..w99)");
        }
        if self.edits_per_visit == 0 || self.chars_per_visit == 0 {
            return bad("edits and characters per visit must be at least 1");
        }
        Ok(())
    }
}

#[derive(Debug)]
pub enum Error {
    Config(String),
    Core(outpost_core::Error),
    Io(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(reason) => write!(f, "bad caseload config: {reason}"),
            Error::Core(e) => write!(f, "store: {e}"),
            Error::Io(e) => write!(f, "file: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<outpost_core::Error> for Error {
    fn from(e: outpost_core::Error) -> Self {
        Error::Core(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}

#[derive(Debug)]
struct Worker {
    author: Author,
    team: usize,
    nurse: bool,
}

#[derive(Debug)]
struct Staff {
    teams: Vec<TeamId>,
    workers: Vec<Worker>,
    /// One team lead per team, who approves or returns the team's visits.
    leads: Vec<Author>,
}

/// Workers are spread across teams in turn; every other worker in a team is a community nurse,
/// so the teams are integrated (social care and nursing on the same person's record).
fn staff(config: &Config) -> Result<Staff, Error> {
    let team_name = |t: usize| {
        TEAM_NAMES
            .get(t)
            .map_or_else(|| format!("t{t:02}"), |n| (*n).to_string())
    };
    let teams = (0..config.teams)
        .map(|t| TeamId::new(format!("team-{}", team_name(t))))
        .collect::<outpost_core::Result<Vec<_>>>()?;
    let leads = (0..config.teams)
        .map(|t| {
            let name = format!("lead-{}", team_name(t));
            Ok(Author::new(
                WorkerId::new(&name)?,
                DeviceId::new(format!("laptop-{name}"))?,
            ))
        })
        .collect::<outpost_core::Result<Vec<_>>>()?;
    let workers = (0..config.workers)
        .map(|i| {
            let id = format!("w{:02}", i + 1);
            Ok(Worker {
                author: Author::new(WorkerId::new(&id)?, DeviceId::new(format!("phone-{id}"))?),
                team: i % config.teams,
                nurse: (i / config.teams) % 2 == 1,
            })
        })
        .collect::<outpost_core::Result<Vec<_>>>()?;
    Ok(Staff { teams, workers, leads })
}

/// Saved documents waiting to be imported together.
struct Batch<'a> {
    store: &'a mut Store,
    pending: Vec<(DocId, Vec<u8>)>,
    saved_bytes: u64,
    documents: usize,
    import_secs: f64,
}

impl Batch<'_> {
    fn push(&mut self, mut doc: Document) -> Result<(), Error> {
        let bytes = doc.save();
        self.saved_bytes += bytes.len() as u64;
        self.documents += 1;
        self.pending.push((doc.id().clone(), bytes));
        if self.pending.len() >= IMPORT_BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        let started = Instant::now();
        let items: Vec<(DocId, &[u8])> = self.pending.iter().map(|(id, b)| (id.clone(), b.as_slice())).collect();
        self.store.import_batch(&items)?;
        self.pending.clear();
        self.import_secs += started.elapsed().as_secs_f64();
        Ok(())
    }
}

#[derive(Debug)]
struct PersonState {
    id: PersonId,
    team: usize,
    allocated: Vec<usize>,
    profile: prose::Profile,
}

/// A weekday working-hours time on `date`, moved off the weekend.
fn working_time(rng: &mut StdRng, date: NaiveDate) -> DateTime<Utc> {
    let date = match date.weekday() {
        Weekday::Sat => people::days_before(date, 1),
        Weekday::Sun => people::days_before(date, 2),
        _ => date,
    };
    let minutes = rng.random_range(9 * 60..17 * 60);
    date.and_hms_opt(minutes / 60, minutes % 60, 0)
        .map_or_else(Utc::now, |t| t.and_utc())
}

/// Generates the caseload into a new store at `path` (which must not exist yet).
pub fn generate(path: &Path, config: &Config) -> Result<Summary, Error> {
    config.check()?;
    if path.exists() {
        return Err(Error::Config(format!(
            "{} already exists; the generator only writes a new store",
            path.display()
        )));
    }
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(config.seed);
    let Staff { teams, workers, leads } = staff(config)?;
    let importer = Author::new(WorkerId::new("generator")?, DeviceId::new("caseload-generator")?);
    let mut store = Store::open(path, importer)?;
    let mut batch = Batch {
        store: &mut store,
        pending: Vec::new(),
        saved_bytes: 0,
        documents: 0,
        import_secs: 0.0,
    };
    let mut summary = Summary::default();

    // People, their contacts and consents, and a proportionate assessment for about one in three.
    let mut used_nhs = BTreeSet::new();
    let mut people = Vec::with_capacity(config.people);
    for i in 0..config.people {
        let team = i % config.teams;
        let team_workers: Vec<usize> = (0..workers.len()).filter(|w| workers[*w].team == team).collect();
        let ids: Vec<WorkerId> = team_workers.iter().map(|w| workers[*w].author.worker.clone()).collect();
        let plan = people::plan_person(&mut rng, config.end, &teams[team], &ids, &mut used_nhs);
        let allocated: Vec<usize> = plan
            .new
            .allocated_workers
            .iter()
            .filter_map(|id| workers.iter().position(|w| &w.author.worker == id))
            .collect();
        let author = &workers[allocated.first().copied().unwrap_or(team_workers[0])].author;
        let mut doc = Document::new_person(author, &plan.new)?;
        for contact in &plan.contacts {
            doc.edit_person(|p| p.add_contact(contact).map(|_| ()))?;
        }
        for consent in &plan.consents {
            doc.edit_person(|p| p.record_consent(consent).map(|_| ()))?;
        }
        let profile = prose::Profile::new(&mut rng, &plan);
        let id = doc.id().clone();
        batch.push(doc)?;
        if rng.random_bool(1.0 / 3.0) {
            let assessor = allocated
                .iter()
                .copied()
                .find(|w| !workers[*w].nurse)
                .unwrap_or(team_workers[0]);
            let date = people::days_before(config.end, rng.random_range(0..HISTORY_DAYS));
            let at = working_time(&mut rng, date);
            batch.push(records::assessment(&mut rng, &workers[assessor].author, &id, at)?)?;
            summary.assessments += 1;
        }
        people.push(PersonState {
            id,
            team,
            allocated,
            profile,
        });
    }
    summary.people = people.len();

    // Every person has at least one visit; the rest go more to some people than others.
    let weights: Vec<f64> = (0..people.len())
        .map(|_| rng.random_range(0.1f64..1.0).powi(2))
        .collect();
    let chooser = WeightedIndex::new(&weights).map_err(|e| Error::Config(e.to_string()))?;
    let mut planned_reviews = Vec::new();
    for v in 0..config.visits {
        let person = &people[if v < people.len() { v } else { chooser.sample(&mut rng) }];
        let covering = person.allocated.is_empty() || rng.random_bool(0.15);
        let worker_index = if covering {
            let team: Vec<usize> = (0..workers.len()).filter(|w| workers[*w].team == person.team).collect();
            team[rng.random_range(0..team.len())]
        } else {
            person.allocated[rng.random_range(0..person.allocated.len())]
        };
        let worker = &workers[worker_index];
        let age_days = rng.random_range(0..HISTORY_DAYS);
        let at = working_time(&mut rng, people::days_before(config.end, age_days));
        let setting = match (worker.nurse, rng.random_range(0..20)) {
            (true, 0..15) | (false, 0..13) => Setting::HomeVisit,
            (true, 15..19) | (false, 13) => Setting::Clinic,
            (false, 14..17) => Setting::CommunityHub,
            _ => Setting::Phone,
        };
        let new = NewVisit {
            person: person.id.clone(),
            worker: worker.author.worker.clone(),
            at,
            setting,
        };
        let (mut visit, review) = Document::new_visit(&worker.author, &new)?;
        let plan = prose::visit_sections(&mut rng, &person.profile, config.chars_per_visit);
        let typed = typing::type_visit(&mut visit, &mut rng, &plan, config.edits_per_visit)?;
        let visited = at.date_naive();
        let extras = records::finish_visit(
            &mut visit,
            &mut rng,
            &person.profile,
            &worker.author.worker,
            visited,
            config.end,
        )?;
        summary.add_visit(&typed, &extras);
        if worker.nurse && rng.random_bool(0.5) {
            let (obs, extreme) = records::observations(&mut rng, &worker.author, &person.id, at, &person.profile)?;
            batch.push(obs)?;
            summary.observations += 1;
            summary.extreme_observations += usize::from(extreme);
        }
        if config.reviews {
            planned_reviews.push(reviews::Planned {
                visit: visit.id().clone(),
                worker: worker_index,
                lead: worker.team,
                outcome: reviews::plan(&mut rng, age_days as i64),
            });
        }
        batch.push(visit)?;
        batch.push(review)?;
    }
    batch.flush()?;
    summary.documents = batch.documents;
    summary.saved_bytes = batch.saved_bytes;
    summary.import_secs = batch.import_secs;
    drop(store);

    let reviews_started = Instant::now();
    let authors: Vec<Author> = workers.iter().map(|w| w.author.clone()).collect();
    summary.review_steps = reviews::apply(path, &authors, &leads, &planned_reviews, &mut rng)?;
    summary.review_secs = reviews_started.elapsed().as_secs_f64();
    for p in &planned_reviews {
        summary.count_review(p.outcome);
    }
    summary.drafts = config.visits - summary.submitted - summary.approved - summary.returned;
    summary.elapsed_secs = started.elapsed().as_secs_f64();
    summary.build_secs = summary.elapsed_secs - summary.import_secs - summary.review_secs;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visit_texts(path: &Path) -> Result<Vec<String>, Box<dyn std::error::Error>> {
        let store = Store::open(path, Author::new(WorkerId::new("w01")?, DeviceId::new("phone-w01")?))?;
        // Ids are random uuids; the text after the last column separator is the note itself.
        let mut bodies: Vec<String> = store
            .index_dump()?
            .into_iter()
            .filter(|row| row.starts_with("visit_text:"))
            .filter_map(|row| row.rsplit(" | ").next().map(str::to_string))
            .collect();
        bodies.sort();
        Ok(bodies)
    }

    #[test]
    fn the_same_seed_writes_the_same_notes() -> Result<(), Box<dyn std::error::Error>> {
        let config = Config {
            people: 3,
            visits: 4,
            edits_per_visit: 60,
            chars_per_visit: 400,
            reviews: false,
            ..Config::small()
        };
        let dir = tempfile::tempdir()?;
        let (a, b) = (dir.path().join("a.sqlite3"), dir.path().join("b.sqlite3"));
        let summary = generate(&a, &config)?;
        generate(&b, &config)?;
        assert_eq!(summary.visits, 4);
        assert_eq!(visit_texts(&a)?, visit_texts(&b)?);
        assert!(
            matches!(generate(&a, &config), Err(Error::Config(_))),
            "refuses to overwrite"
        );
        Ok(())
    }
}
