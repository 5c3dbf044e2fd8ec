//! What the sync benchmarks stand on: the generated caseload held by a server, a world serving
//! it, and a worker's day of visits typed offline. Shared by `sync-bench` and the criterion
//! bench `sync` (which includes this file by path: `outpost_tests` has no module for it).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use outpost_core::{DocId, DocType, NewVisit, PersonId, ReviewAction, Section, Setting, Store, TeamId, WorkerId};
use outpost_server::AppState;
use outpost_server::storage::sqlite::SqliteStorage;
use outpost_server::storage::{DocWrite, Documents, PersonScope, Role, ScopePolicy, Storage, SyncWrite};
use outpost_tests::caseload::{BENCH_END, Config, Scratch, Summary, bench_data_dir, cached};
use outpost_tests::world::World;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Documents per server write while seeding (one transaction each).
const SEED_BATCH: usize = 500;

/// The generated caseload and a server database holding all of it, both cached under
/// `target/bench-data/`.
#[derive(Debug)]
pub struct Seeded {
    pub summary: Summary,
    /// The server database with every generated document; copy it before serving.
    pub server: PathBuf,
    pub team: TeamId,
    /// The worker whose phones the benches enrol (w01).
    pub worker: WorkerId,
    /// Workers w01.. of the team, as the generator named them.
    pub workers: usize,
    pub dir: PathBuf,
}

impl Seeded {
    /// The issue-size caseload when `full`, else the small one, in one team so that one
    /// worker's phone receives all of it (team scope). Generated and seeded once, then cached.
    pub fn prepare(full: bool) -> Result<Self> {
        let base = if full { Config::issue_size() } else { Config::small() };
        let config = Config {
            teams: 1,
            end: BENCH_END,
            ..base
        };
        let dir = bench_data_dir()?;
        let (store, summary, generated) = cached(&config, &dir)?;
        if generated {
            eprintln!("generated {}:\n{summary}", store.display());
        }
        // `i2`: the seeded database carries each document's index rows, compressed.
        let server = dir.join(format!("server-i2-{}.sqlite3", config.key()));
        let team = TeamId::new("team-north")?;
        if !server.exists() {
            let started = std::time::Instant::now();
            let partial = dir.join(format!(
                "server-{}.partial-{}.sqlite3",
                config.key(),
                std::process::id()
            ));
            seed(&store, &partial, &config, &team, &dir)?;
            fs::rename(&partial, &server)?;
            eprintln!(
                "seeded {} in {:.1} s",
                server.display(),
                started.elapsed().as_secs_f64()
            );
        }
        Ok(Self {
            summary,
            server,
            team,
            worker: WorkerId::new("w01")?,
            workers: config.workers,
            dir,
        })
    }

    /// A world (in-process server) over a copy of the seeded database, on the real disk.
    pub fn world(&self) -> Result<World> {
        let dir = tempfile::tempdir_in(&self.dir)?;
        let db = dir.path().join("server.sqlite3");
        fs::copy(&self.server, &db)?;
        let storage = Arc::new(SqliteStorage::open(&db)?);
        let mut state = AppState::new(storage.clone() as Arc<dyn Storage>)?;
        // `--runs` may sync one device faster than any phone would; the bench times the work.
        state.limits = Arc::new(outpost_server::limits::RateLimits::off());
        Ok(World { dir, state, storage })
    }
}

/// What a device in `device`'s scope must receive: documents and the sum of their saved
/// bytes (each stored as `save()` wrote it), the floor for a fresh pull.
pub fn pull_floor(storage: &SqliteStorage, device: &outpost_server::storage::Device) -> Result<(usize, u64)> {
    let people: Vec<PersonId> = storage.scope(device)?.into_iter().collect();
    let docs = storage.people_docs(&people)?;
    Ok((docs.len(), docs.iter().map(|(_, d)| d.snapshot.len() as u64).sum()))
}

/// Writes every document of the generated store into a new server database, as the server
/// would hold them had their authors' devices pushed them. Seeding goes straight to storage:
/// the documents carry a dozen workers' and leads' changes, and the server accepts from a
/// device only changes that device wrote.
fn seed(generated: &Path, path: &Path, config: &Config, team: &TeamId, dir: &Path) -> Result<()> {
    let storage = SqliteStorage::open(path)?;
    seed_accounts(&storage, team, config.workers)?;

    // A copy: opening a store records a new actor in it, and the cached one stays as generated.
    let scratch = Scratch::copy(generated, dir)?;
    let mut store = Store::open(
        scratch.path(),
        outpost_core::Author::new(WorkerId::new("w01")?, outpost_core::DeviceId::new("seeder")?),
    )?;
    let mut people = Vec::new();
    let mut others = Vec::new();
    for row in store.team_caseload(team)? {
        let person = store.person(&row.person)?;
        people.push((row.person.clone(), DocType::Person, Some(person.allocated_workers)));
        let visits: Vec<DocId> = store
            .visits_for_person(&row.person)?
            .into_iter()
            .map(|v| v.visit)
            .collect();
        for doc in store.documents_of_person(&row.person)? {
            let kind = if doc == row.person {
                continue;
            } else if visits.contains(&doc) {
                DocType::Visit
            } else if visits.iter().any(|v| DocId::review_of(v) == doc) {
                DocType::Review
            } else if store.observations(&doc).is_ok() {
                DocType::Observations
            } else {
                store.assessment(&doc)?;
                DocType::Assessment
            };
            others.push((row.person.clone(), doc, kind));
        }
    }
    let expected = store.all_heads()?.len();
    if people.len() + others.len() != expected {
        return Err(format!(
            "the generated store holds {expected} documents but its people account for {}; \
             is every person in {team}?",
            people.len() + others.len()
        )
        .into());
    }
    // People first, so their visits find them; then the rest in the store's (random id) order.
    others.sort_by(|a, b| a.1.as_str().cmp(b.1.as_str()));
    let mut writes = Vec::with_capacity(expected);
    for (person, kind, allocated) in people {
        writes.push(doc_write(
            &mut store,
            &person,
            &person,
            kind,
            allocated.map(|a| (team, a)),
        )?);
    }
    for (person, doc, kind) in others {
        writes.push(doc_write(&mut store, &doc, &person, kind, None)?);
    }
    for batch in writes.chunks(SEED_BATCH) {
        storage.write(
            None,
            &SyncWrite {
                docs: batch.to_vec(),
                ..SyncWrite::default()
            },
        )?;
    }
    Ok(())
}

/// The team, its workers w01.. and its lead, with the generator's ids.
pub fn seed_accounts(storage: &dyn Storage, team: &TeamId, workers: usize) -> Result<()> {
    storage.create_team(team, "North locality", ScopePolicy::Team)?;
    for i in 0..workers {
        let id = WorkerId::new(format!("w{:02}", i + 1))?;
        storage.add_worker(&id, id.as_str(), Role::Worker, team)?;
    }
    storage.add_worker(&WorkerId::new("lead-north")?, "lead-north", Role::Lead, team)?;
    Ok(())
}

fn doc_write(
    store: &mut Store,
    doc: &DocId,
    person: &PersonId,
    kind: DocType,
    scope: Option<(&TeamId, Vec<WorkerId>)>,
) -> Result<DocWrite> {
    let saved = store.export_changes(doc, &[])?;
    let loaded = automerge::AutoCommit::load(&saved)?;
    Ok(DocWrite {
        index_rows: outpost_core::sync::index_rows(&loaded, doc)?,
        listing: Some(outpost_core::sync::listing(&loaded, doc)?),
        doc: doc.clone(),
        person: person.clone(),
        doc_type: kind.code().to_string(),
        heads: store.heads(doc)?,
        // The log entry holds the saved document too: a valid set of changes, and smaller.
        changes: saved.clone(),
        snapshot: saved,
        person_scope: scope.map(|(team, allocated)| PersonScope {
            team: team.clone(),
            allocated,
        }),
    })
}

/// Phrases a worker types into a visit note after a strengths-based conversation.
const PHRASES: &[&str] = &[
    "She said what matters most is staying in her own home and seeing her grandchildren on Sundays. ",
    "He is proud that he still does his own shopping at the corner shop, with a stick. ",
    "Her daughter visits twice a week and helps with paperwork and medication. ",
    "They enjoy the lunch club at the community centre and want to go more often. ",
    "He wants to get back to the allotment this spring; his neighbour has offered a lift. ",
    "She manages her insulin herself and keeps a clear diary of her readings. ",
    "We talked about falls at night: she agreed to try a sensor light on the landing. ",
    "His son lives abroad but phones every evening, which he looks forward to. ",
    "She would like help to get to the library, where she used to volunteer. ",
    "The stairs are getting harder; we agreed to ask occupational therapy about a second rail. ",
    "He described the days as long since his wife died, and would like some company. ",
    "Agreed actions: referral to the befriending scheme, and a review in four weeks. ",
    "She is clear that she does not want carers in the morning, only help with a bath weekly. ",
    "Money worries came up; he agreed to a benefits check with the advice service. ",
    "Her neighbour checks on her most days and has a key; she is happy for us to contact him. ",
    "Mood seemed brighter than last visit; she has been walking to the park with a friend. ",
    "He keeps the house warm and tidy and is cooking simple meals for himself. ",
    "She would like to learn to video call her sister, and the library runs sessions. ",
    "Risks discussed openly: she understands them and chooses to keep using the bath. ",
    "The district nurse is dressing his leg twice a week and it is healing well. ",
];

/// What a worker wrote offline in a day.
#[derive(Debug, Clone, Default)]
pub struct DaysWork {
    /// The new visits and their review documents, all new to the server.
    pub docs: Vec<DocId>,
    pub visits: usize,
    pub splices: usize,
    pub saves: usize,
    pub chars: usize,
}

impl DaysWork {
    /// The push floor: what `export_changes` returns for each changed document from what the
    /// server acknowledged (nothing, for a new document: its whole saved self).
    pub fn floor_bytes(&self, store: &mut Store) -> Result<u64> {
        let mut total = 0;
        for doc in &self.docs {
            total += store.export_changes(doc, &[])?.len() as u64;
        }
        Ok(total)
    }
}

/// Writes `visits` visits to people in `people`, each typed as `splices` splices (a word or
/// two at a time, with the odd typo put right) saved `per_save` splices at a time, then
/// submitted for review. Deterministic for a seed.
pub fn write_days_work(
    store: &mut Store,
    people: &[PersonId],
    worker: &WorkerId,
    visits: usize,
    splices: usize,
    per_save: usize,
    seed: u64,
) -> Result<DaysWork> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut work = DaysWork {
        visits,
        ..DaysWork::default()
    };
    for v in 0..visits {
        let person = &people[v % people.len()];
        let visit = store.create_visit(&NewVisit {
            person: person.clone(),
            worker: worker.clone(),
            at: Utc::now(),
            setting: Setting::HomeVisit,
        })?;
        let typed = type_note(store, &visit, &mut rng, splices, per_save.max(1))?;
        work.splices += typed.0;
        work.saves += typed.1;
        work.chars += typed.2;
        store.review_visit(&visit, ReviewAction::Submit, None)?;
        work.docs.push(DocId::review_of(&visit));
        work.docs.push(visit);
    }
    Ok(work)
}

/// One splice of a typist: insert (or delete) at a position in a section.
struct Splice {
    section: Section,
    pos: usize,
    delete: usize,
    insert: String,
}

/// Types a note into `visit`: returns (splices, saves, characters in the note).
fn type_note(
    store: &mut Store,
    visit: &DocId,
    rng: &mut StdRng,
    splices: usize,
    per_save: usize,
) -> Result<(usize, usize, usize)> {
    let mut plan = Vec::with_capacity(splices);
    let mut lengths = [0usize; Section::ALL.len()];
    'sections: for _ in 0.. {
        for (s, section) in Section::ALL.into_iter().enumerate() {
            let sentences = rng.random_range(1..=3);
            for _ in 0..sentences {
                let phrase: Vec<char> = PHRASES[rng.random_range(0..PHRASES.len())].chars().collect();
                let mut at = 0;
                while at < phrase.len() {
                    if plan.len() >= splices {
                        break 'sections;
                    }
                    let n = rng.random_range(2..=9).min(phrase.len() - at);
                    let chunk: String = phrase[at..at + n].iter().collect();
                    if rng.random_bool(0.04) && plan.len() + 2 < splices {
                        // A slip of the thumb, deleted straight away.
                        plan.push(Splice {
                            section,
                            pos: lengths[s],
                            delete: 0,
                            insert: "sd".into(),
                        });
                        plan.push(Splice {
                            section,
                            pos: lengths[s],
                            delete: 2,
                            insert: String::new(),
                        });
                        continue;
                    }
                    plan.push(Splice {
                        section,
                        pos: lengths[s],
                        delete: 0,
                        insert: chunk,
                    });
                    lengths[s] += n;
                    at += n;
                }
            }
        }
    }
    let mut saves = 0;
    for group in plan.chunks(per_save) {
        store.edit_visit(visit, |v| {
            for s in group {
                v.splice(s.section, s.pos, s.delete, &s.insert)?;
            }
            Ok(())
        })?;
        saves += 1;
    }
    Ok((plan.len(), saves, lengths.iter().sum()))
}
