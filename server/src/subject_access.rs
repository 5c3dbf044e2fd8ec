//! Subject access: everything the server holds about one person (their documents, each visit's
//! review history, and the audit trail's record of who touched those documents), gathered once
//! for the admin CLI and the lead's pages. `to_json` writes it as JSON; the pages'
//! `web::subject_access` writes it as HTML.
//!
//! Only documents stored under the person are read, and each is checked again against the
//! person its own header names, so nothing about anyone else can slip in.

mod cli;
mod json;

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use outpost_core::{
    Assessment, Author, DocId, Observations, Person, PersonId, Record, Review, Section, TeamId, Visit, WorkerId,
};

use crate::error::{Error, Result};
use crate::review::SERVER_DEVICE;
use crate::storage::{AuditEntry, AuditFilter, Storage, StoredDoc};

pub use cli::run as run_admin;
pub use json::to_json;

/// How many audit entries one query reads; a record viewed often is read in several.
const AUDIT_PAGE: usize = 500;

/// Everything held about one person, read at one moment.
#[derive(Debug, Clone)]
pub struct Export {
    pub person_id: PersonId,
    pub team: Option<TeamId>,
    pub produced_at: DateTime<Utc>,
    pub person: Person,
    /// Other person records naming this person (a duplicate created offline, say).
    pub other_person_records: Vec<Person>,
    /// Oldest first.
    pub visits: Vec<HeldVisit>,
    pub assessments: Vec<Assessment>,
    pub observations: Vec<Observations>,
    /// Review documents whose visit is not stored (kept: they are still held).
    pub unmatched_reviews: Vec<Review>,
    /// Documents stored under the person that could not be read as their type.
    pub unreadable: Vec<Unreadable>,
    /// Who did what to the person's records, oldest first.
    pub access: Vec<Access>,
    /// Names of the team's workers, to name authors and readers; others show as their id.
    pub staff: HashMap<WorkerId, String>,
}

#[derive(Debug, Clone)]
pub struct HeldVisit {
    pub visit: Visit,
    /// Who wrote each section, from the document's history, in order of first appearance.
    pub authors: Vec<(Section, Vec<Author>)>,
    pub review: Option<Review>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub doc: DocId,
    pub doc_type: String,
    pub reason: String,
}

/// One audit entry about the person's records. The entry's detail and client address are left
/// out: the detail can name other records, and the address is the staff member's, not the
/// person's; who, what, which record and when answer "who accessed my record".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    pub seq: u64,
    pub at: i64,
    pub who: String,
    pub action: String,
    pub subject: String,
}

impl Export {
    /// A worker's name and id, or the id alone for someone outside the person's team.
    pub fn worker(&self, worker: &str) -> String {
        match WorkerId::new(worker).ok().and_then(|w| self.staff.get(&w)) {
            Some(name) => format!("{name} ({worker})"),
            None => worker.to_string(),
        }
    }

    /// An author as a reader would want them: the worker, named, and the device.
    pub fn author(&self, author: &Author) -> String {
        self.who(&format!("{}/{}", author.worker, author.device))
    }

    /// An audit entry's `who` (`worker/device`, `lead/web`, `admin`, `server`), named.
    pub fn who(&self, who: &str) -> String {
        match who.split_once('/') {
            Some((worker, "web")) => format!("{}, on the review pages", self.worker(worker)),
            Some((worker, SERVER_DEVICE)) => format!("{}, through the server", self.worker(worker)),
            Some((worker, device)) => format!("{}, device {device}", self.worker(worker)),
            None => self.worker(who),
        }
    }
}

/// Gathers everything held about `person`; a person the server does not hold is `NotFound`.
pub fn gather(storage: &dyn Storage, person: &PersonId) -> Result<Export> {
    let missing = || Error::NotFound(format!("person {person}"));
    let mut docs: Vec<(DocId, StoredDoc)> = storage
        .people_docs(std::slice::from_ref(person))?
        .into_iter()
        // Asked for one person, so every row should be theirs; a row that is not is never shown.
        .filter(|(_, stored)| stored.person == *person)
        .collect();
    // Stable order, so two exports of the same records read the same.
    docs.sort_by(|a, b| a.0.cmp(&b.0));
    let position = docs
        .iter()
        .position(|(id, stored)| id == person && stored.doc_type == "person")
        .ok_or_else(missing)?;
    let (id, stored) = docs.remove(position);
    let main = Record::load(id, &stored.snapshot)?.person()?;

    let mut held = Held::default();
    let mut subjects = vec![person.clone()];
    for (id, stored) in docs {
        subjects.push(id.clone());
        held.add(person, id, stored);
    }
    let team = storage.person_team(person)?;
    let staff = match &team {
        Some(team) => storage
            .team_workers(std::slice::from_ref(team))?
            .into_iter()
            .map(|(id, name, _)| (id, name))
            .collect(),
        None => HashMap::new(),
    };
    let Held {
        other_people,
        mut visits,
        mut reviews,
        mut assessments,
        mut observations,
        unreadable,
    } = held;
    visits.sort_by_key(|v| v.visit.at.value);
    for visit in &mut visits {
        visit.review = reviews.remove(&DocId::review_of(&visit.visit.id));
    }
    assessments.sort_by_key(|a| a.at.value);
    observations.sort_by_key(|o| o.taken_at.value);
    Ok(Export {
        person_id: person.clone(),
        team,
        produced_at: Utc::now(),
        person: main,
        other_person_records: other_people,
        visits,
        assessments,
        observations,
        unmatched_reviews: reviews.into_values().collect(),
        unreadable,
        access: access(storage, &subjects)?,
        staff,
    })
}

/// The person's documents other than their own record, sorted by kind as they are read.
#[derive(Default)]
struct Held {
    other_people: Vec<Person>,
    visits: Vec<HeldVisit>,
    reviews: BTreeMap<DocId, Review>,
    assessments: Vec<Assessment>,
    observations: Vec<Observations>,
    unreadable: Vec<Unreadable>,
}

impl Held {
    fn add(&mut self, person: &PersonId, id: DocId, stored: StoredDoc) {
        let doc_type = stored.doc_type.clone();
        if let Err(e) = self.read(person, &id, &stored) {
            self.unreadable.push(Unreadable {
                doc: id,
                doc_type,
                reason: e.to_string(),
            });
        }
    }

    fn read(&mut self, person: &PersonId, id: &DocId, stored: &StoredDoc) -> Result<()> {
        let record = Record::load(id.clone(), &stored.snapshot)?;
        // The document's own header must name the person too: the store's column and the
        // document agree unless something went wrong, and then nothing is shown.
        let named = |named: &PersonId| {
            if named == person {
                Ok(())
            } else {
                Err(Error::Internal(format!(
                    "document {id} is stored under this person but names another"
                )))
            }
        };
        match stored.doc_type.as_str() {
            "person" => {
                // Another person record the store files under this person (its header names
                // them, which is how it was filed); its own id is its document's.
                self.other_people.push(record.person()?);
            }
            "visit" => {
                let visit = record.visit()?;
                named(&visit.person)?;
                let authors = Section::ALL
                    .iter()
                    .map(|s| (*s, section_authors(&record, *s)))
                    .collect();
                self.visits.push(HeldVisit {
                    visit,
                    authors,
                    review: None,
                });
            }
            "review" => {
                let review = record.review()?;
                named(&review.person)?;
                self.reviews.insert(id.clone(), review);
            }
            "assessment" => {
                let assessment = record.assessment()?;
                named(&assessment.person)?;
                self.assessments.push(assessment);
            }
            "observations" => {
                let observations = record.observations()?;
                named(&observations.person)?;
                self.observations.push(observations);
            }
            other => {
                return Err(Error::Internal(format!("document {id} is of unknown type {other:?}")));
            }
        }
        Ok(())
    }
}

fn section_authors(record: &Record, section: Section) -> Vec<Author> {
    let mut authors = Vec::new();
    for span in record.authorship(section).unwrap_or_default() {
        if let Some(author) = span.author
            && !authors.contains(&author)
        {
            authors.push(author);
        }
    }
    authors
}

/// Every audit entry whose subject is one of `subjects`, oldest first, each once.
fn access(storage: &dyn Storage, subjects: &[DocId]) -> Result<Vec<Access>> {
    let mut found = BTreeMap::new();
    for subject in subjects {
        let filter = AuditFilter {
            record: Some(subject.to_string()),
            ..AuditFilter::default()
        };
        let mut after = 0;
        loop {
            let page = storage.audit_entries(&filter, after, AUDIT_PAGE)?;
            let full = page.len() == AUDIT_PAGE;
            for chained in page {
                after = chained.seq;
                let AuditEntry {
                    at,
                    who,
                    action,
                    subject,
                    ..
                } = chained.entry;
                found.insert(
                    chained.seq,
                    Access {
                        seq: chained.seq,
                        at,
                        who,
                        action,
                        subject,
                    },
                );
            }
            if !full {
                break;
            }
        }
    }
    Ok(found.into_values().collect())
}
