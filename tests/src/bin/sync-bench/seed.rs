//! Seeding any server storage, SQLite or PostgreSQL, through the storage trait with the cached
//! caseload, as `setup::seed` seeds the cached SQLite database; and past the caseload's size,
//! with renamed copies of it.
//!
//! A copy is each person and their documents again under new ids (`<id>@<k>`; a review keeps
//! `<visit id>.review`), each document its generated self plus one change that names the copy's
//! person (and, for a review, the copy's visit), so every copy is a consistent record set that
//! loads, indexes and lists like the original. Names and text repeat.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ROOT, ReadDoc, ScalarValue, Value};
use outpost_core::DocId;
use outpost_server::storage::sqlite::SqliteStorage;
use outpost_server::storage::{DocWrite, Documents, PersonScope, ReviewIndex, Storage, StoredDoc, SyncWrite};

use crate::setup::{Result, Seeded, seed_accounts};

/// Documents per storage write (one transaction each), as `setup::seed` writes them.
const SEED_BATCH: usize = 500;

/// A person's documents as the cached server database holds them, the person's own first.
type Group = Vec<(DocId, StoredDoc)>;

/// Writes the team and its workers, then `docs` documents (all of the caseload when None):
/// whole people while they fit, the caseload's people first, then their copies. Returns the
/// documents written and the sum of their saved bytes.
pub fn seed_storage(seeded: &Seeded, storage: &dyn Storage, docs: Option<usize>) -> Result<(usize, u64)> {
    seed_accounts(storage, &seeded.team, seeded.workers)?;
    let groups = read_groups(seeded)?;
    let caseload: usize = groups.iter().map(Vec::len).sum();
    let wanted = docs.unwrap_or(caseload);
    let copies = wanted.div_ceil(caseload.max(1)).max(1);
    // Each person with all their copies while they fit; the last one cut short.
    let mut plan = Vec::new();
    let mut left = wanted;
    for (i, group) in groups.iter().enumerate() {
        if left == 0 {
            break;
        }
        let take = (group.len() * copies).min(left);
        plan.push((i, take));
        left -= take;
    }

    // Loading each document is most of the work: spread over the cores, written in order of
    // arrival by this thread.
    let next = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (send, receive) = mpsc::sync_channel::<std::result::Result<Vec<DocWrite>, String>>(4 * threads);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let send = send.clone();
            let (next, plan, groups) = (&next, &plan, &groups);
            scope.spawn(move || {
                loop {
                    let Some(&(group, take)) = plan.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        return;
                    };
                    let writes = copies_of(&groups[group], copies, take).map_err(|e| e.to_string());
                    if send.send(writes).is_err() {
                        return;
                    }
                }
            });
        }
        drop(send);
        let mut written = (0, 0);
        let mut batch = Vec::with_capacity(SEED_BATCH);
        for writes in receive {
            batch.extend(writes?);
            if batch.len() >= SEED_BATCH {
                add(&mut written, write(storage, std::mem::take(&mut batch))?);
            }
        }
        add(&mut written, write(storage, batch)?);
        // Every write carried its document's listing: the server need not list them again
        // (loading each one) when it first starts, as it would after an upgrade.
        storage.relist_done()?;
        Ok(written)
    })
}

fn add(total: &mut (usize, u64), (docs, bytes): (usize, u64)) {
    total.0 += docs;
    total.1 += bytes;
}

/// Writes `docs` in one transaction; returns how many, and their saved bytes.
fn write(storage: &dyn Storage, docs: Vec<DocWrite>) -> Result<(usize, u64)> {
    let n = (docs.len(), docs.iter().map(|d| d.snapshot.len() as u64).sum());
    if n.0 > 0 {
        storage.write(
            None,
            &SyncWrite {
                docs,
                ..SyncWrite::default()
            },
        )?;
    }
    Ok(n)
}

/// Every document of the cached server database, grouped by person, in person id order.
fn read_groups(seeded: &Seeded) -> Result<Vec<Group>> {
    // A copy: opening a database may migrate it, and the cached one stays as seeded.
    let dir = tempfile::tempdir_in(&seeded.dir)?;
    let path = dir.path().join("server.sqlite3");
    std::fs::copy(&seeded.server, &path)?;
    let source = SqliteStorage::open(&path)?;
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for id in source.all_docs()? {
        let stored = source
            .doc(&id)?
            .ok_or_else(|| format!("document {id} is listed but not stored"))?;
        let group = groups.entry(stored.person.to_string()).or_default();
        if id == stored.person {
            group.insert(0, (id, stored));
        } else {
            group.push((id, stored));
        }
    }
    Ok(groups.into_values().collect())
}

/// The first `take` documents of `copies` copies of one person's documents, copy by copy.
fn copies_of(group: &Group, copies: usize, take: usize) -> Result<Vec<DocWrite>> {
    let mut loaded = Vec::with_capacity(group.len());
    for (id, stored) in group {
        loaded.push(AutoCommit::load(&stored.snapshot).map_err(|e| format!("{id} does not load: {e}"))?);
    }
    let mut writes = Vec::with_capacity(take);
    'copies: for k in 0..copies {
        for ((id, stored), doc) in group.iter().zip(&mut loaded) {
            if writes.len() == take {
                break 'copies;
            }
            writes.push(copy_write(id, stored, doc, k)?);
        }
    }
    Ok(writes)
}

/// Copy `k` of a stored document (the document itself for 0) as the server would store it.
fn copy_write(id: &DocId, stored: &StoredDoc, loaded: &mut AutoCommit, k: usize) -> Result<DocWrite> {
    let (id, doc, snapshot, heads) = if k == 0 {
        (id.clone(), None, stored.snapshot.clone(), stored.heads.clone())
    } else {
        let mut copy = loaded.fork();
        copy.put(ROOT, "person", copy_id(&stored.person, k)?.as_str())?;
        if let Some((Value::Scalar(visit), _)) = copy.get(ROOT, "visit")?
            && let ScalarValue::Str(visit) = visit.as_ref()
        {
            let visit = copy_id(&DocId::new(visit.as_str())?, k)?;
            copy.put(ROOT, "visit", visit.as_str())?;
        }
        copy.commit();
        let (snapshot, heads) = (copy.save(), copy.get_heads());
        (copy_id(id, k)?, Some(copy), snapshot, heads)
    };
    let doc = doc.as_ref().unwrap_or(loaded);
    let summary = outpost_core::sync::summarise(doc, &id)?;
    Ok(DocWrite {
        index_rows: outpost_core::sync::index_rows(doc, &id)?,
        listing: Some(outpost_core::sync::listing(doc, &id)?),
        person: summary.person,
        doc_type: stored.doc_type.clone(),
        heads,
        // The log entry holds the saved document too, as `setup::seed` writes it.
        changes: snapshot.clone(),
        snapshot,
        person_scope: summary.team.map(|team| PersonScope {
            team,
            allocated: summary.allocated,
        }),
        doc: id,
    })
}

/// A document's id in copy `k`: `<id>@<k>`, and a review's `<visit's copy>.review`.
fn copy_id(id: &DocId, k: usize) -> Result<DocId> {
    if k == 0 {
        return Ok(id.clone());
    }
    match id.as_str().strip_suffix(".review") {
        Some(visit) => Ok(DocId::review_of(&copy_id(&DocId::new(visit)?, k)?)),
        None => Ok(DocId::new(format!("{id}@{k}"))?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_consistent_record_sets() {
        let seeded = Seeded::prepare(false).expect("the small caseload");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let storage = SqliteStorage::open(dir.path().join("copies.sqlite3")).expect("a server database");
        let caseload = read_groups(&seeded)
            .expect("the caseload")
            .iter()
            .map(Vec::len)
            .sum::<usize>();
        let wanted = caseload * 2 + 7;
        assert_eq!(seed_storage(&seeded, &storage, Some(wanted)).expect("seeded").0, wanted);
        let ids = storage.all_docs().expect("documents");
        assert_eq!(ids.len(), wanted);
        // The copy an id belongs to: what follows its `@`.
        let copy = |id: &DocId| {
            id.as_str()
                .trim_end_matches(".review")
                .split_once('@')
                .map(|(_, k)| k.to_string())
        };
        let mut copied = 0;
        for id in ids.iter().filter(|id| copy(id).is_some()) {
            let stored = storage.doc(id).expect("read").expect("stored");
            let doc = AutoCommit::load(&stored.snapshot).expect("a copy loads");
            let summary = outpost_core::sync::summarise(&doc, id).expect("a copy reads as its type");
            assert_eq!(
                summary.person, stored.person,
                "{id} names the person it is stored under"
            );
            assert_eq!(copy(&stored.person), copy(id), "{id} and its person are of one copy");
            if let Ok(outpost_core::sync::Listing::Review { visit, .. }) = outpost_core::sync::listing(&doc, id) {
                assert_eq!(DocId::review_of(&visit), *id, "a review names its copy's visit");
            }
            copied += 1;
        }
        assert!(
            copied > caseload,
            "three copies of some people: {copied} copied documents"
        );
        let stored: std::collections::HashSet<&DocId> = ids.iter().collect();
        for id in &ids {
            let person = storage.doc(id).expect("read").expect("stored").person;
            assert!(stored.contains(&person), "{id}'s person {person} is stored too");
        }
        assert_eq!(
            copy_id(&DocId::new("v1.review").unwrap(), 2).unwrap().as_str(),
            "v1@2.review"
        );
    }
}
