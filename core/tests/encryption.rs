//! Encryption at rest: a keyed store is unreadable without its key, a wrong key is a clear error
//! that changes nothing, a store written before encryption is encrypted on its first keyed open
//! (tested like a schema upgrade), and a store can be rekeyed.
#![allow(clippy::unwrap_used)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};

use outpost_core::{
    Author, Device, DeviceId, DocId, Enrolment, Error, ReviewAction, ReviewState, Section, Server, Store, StoreKey,
    TeamId, WorkerId, schema,
};
use rusqlite::Connection;
use support::{author, new_person, new_visit};

const PLAINTEXT_HEADER: &[u8] = b"SQLite format 3\0";

fn key(byte: u8) -> StoreKey {
    StoreKey::new(&[byte; 32]).unwrap()
}

fn writer() -> Author {
    author("w1", "w1-phone")
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn is_plaintext(path: &Path) -> bool {
    fs::read(path).unwrap().starts_with(PLAINTEXT_HEADER)
}

/// Every file in `dir` with its bytes, to show a refused open changed nothing.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                fs::read(entry.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A person and a visit with text in it, as a worker's store holds them.
struct Written {
    person: DocId,
    visit: DocId,
}

fn write_some(store: &mut Store, note: &str) -> Written {
    let person = store.create_person(&new_person("Ann Lee", &["w1"])).unwrap();
    let visit = store.create_visit(&new_visit(&person, "w1", 11)).unwrap();
    store
        .edit_visit(&visit, |v| v.splice(Section::WhatMatters, 0, 0, note))
        .unwrap();
    store.review_visit(&visit, ReviewAction::Submit, None).unwrap();
    Written { person, visit }
}

fn assert_intact(store: &mut Store, written: &Written, note: &str) {
    assert_eq!(store.visit(&written.visit).unwrap().section(Section::WhatMatters), note);
    assert_eq!(store.person(&written.person).unwrap().name.value, "Ann Lee");
    let caseload = store.caseload(&WorkerId::new("w1").unwrap()).unwrap();
    assert_eq!(caseload.len(), 1);
    assert_eq!(caseload[0].person, written.person);
    assert_eq!(
        store.review(&written.visit).unwrap().state.value,
        ReviewState::Submitted
    );
    assert_eq!(store.visits_in_review_state(ReviewState::Submitted).unwrap().len(), 1);
    assert_eq!(store.search("wedding", 10).unwrap().len(), 1, "the full-text index");
}

fn assert_wrong_key(result: Result<Store, Error>) -> String {
    match result {
        Err(Error::WrongKey(reason)) => reason,
        Err(other) => panic!("expected a wrong-key error, got {other}"),
        Ok(_) => panic!("expected a wrong-key error, but the store opened"),
    }
}

#[test]
fn a_keyed_store_is_created_encrypted_and_reopens_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite3");
    let mut store = Store::open_with_key(&path, writer(), Some(&key(1))).unwrap();
    let written = write_some(&mut store, "Her grandson's wedding");
    drop(store);

    assert!(
        !is_plaintext(&path),
        "the file does not start as a plaintext SQLite file does"
    );
    let mut store = Store::open_with_key(&path, writer(), Some(&key(1))).unwrap();
    assert_intact(&mut store, &written, "Her grandson's wedding");
    assert_eq!(store.synchronous_mode().unwrap(), 2, "still synchronous = FULL");
}

#[test]
fn a_wrong_key_is_refused_and_leaves_the_store_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite3");
    let mut store = Store::open_with_key(&path, writer(), Some(&key(1))).unwrap();
    let written = write_some(&mut store, "Her grandson's wedding");
    drop(store);
    let before = snapshot(dir.path());

    let wrong = key(2);
    let reason = assert_wrong_key(Store::open_with_key(&path, writer(), Some(&wrong)));
    assert!(reason.contains("key"), "{reason}");
    // Through the device too, which reads its enrolment from the store first.
    let err = Device::open(&path, Some(&[2; 32])).unwrap_err();
    assert!(matches!(err, Error::WrongKey(_)), "{err}");
    // Neither the key nor its hex ever appears in what the error says.
    for shown in [err.to_string(), format!("{err:?}"), format!("{wrong:?}")] {
        assert!(!shown.contains(&"02".repeat(32)), "{shown}");
    }
    assert_eq!(snapshot(dir.path()), before, "the same files with the same bytes");

    let mut store = Store::open_with_key(&path, writer(), Some(&key(1))).unwrap();
    assert_intact(&mut store, &written, "Her grandson's wedding");
}

#[test]
fn an_encrypted_store_opened_without_a_key_says_it_needs_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite3");
    let mut store = Store::open_with_key(&path, writer(), Some(&key(1))).unwrap();
    write_some(&mut store, "Her grandson's wedding");
    drop(store);
    let before = snapshot(dir.path());

    let reason = assert_wrong_key(Store::open(&path, writer()));
    assert!(reason.contains("encrypted") && reason.contains("key"), "{reason}");
    let err = Device::open(&path, None).unwrap_err();
    assert!(matches!(err, Error::WrongKey(_)), "{err}");
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn a_plaintext_store_is_encrypted_on_its_first_keyed_open_with_every_record_intact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite3");
    // Written by the unkeyed code, as every store was before encryption.
    let mut store = Store::open(&path, writer()).unwrap();
    let written = write_some(&mut store, "Her grandson's wedding");
    drop(store);
    assert!(is_plaintext(&path));

    let mut store = Store::open_with_key(&path, writer(), Some(&key(1))).unwrap();
    assert_intact(&mut store, &written, "Her grandson's wedding");
    // It takes new writes, under the key.
    store
        .edit_visit(&written.visit, |v| v.splice(Section::Goals, 0, 0, "Dance"))
        .unwrap();
    drop(store);

    assert!(!is_plaintext(&path));
    assert!(!sibling(&path, ".encrypting").exists(), "no copy is left behind");
    assert_wrong_key(Store::open(&path, writer()));
    let raw = Connection::open(&path).unwrap();
    let unreadable = raw.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0));
    assert!(unreadable.is_err(), "SQLite without the key cannot read it");
    drop(raw);

    let mut store = Store::open_with_key(&path, writer(), Some(&key(1))).unwrap();
    assert_intact(&mut store, &written, "Her grandson's wedding");
    assert_eq!(store.visit(&written.visit).unwrap().section(Section::Goals), "Dance");
    drop(store);
    let raw = Connection::open(&path).unwrap();
    raw.execute_batch(&format!("PRAGMA key = \"x'{}'\"", "01".repeat(32)))
        .unwrap();
    let version: i64 = raw.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, schema::CURRENT_VERSION, "the schema version came across");
}

#[test]
fn a_plaintext_store_from_every_schema_version_is_upgraded_and_encrypted() {
    for from in 0..=schema::CURRENT_VERSION {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite3");
        {
            let mut conn = Connection::open(&path).unwrap();
            schema::migrate_to(&mut conn, from).unwrap();
        }
        let mut store = Store::open_with_key(&path, writer(), Some(&key(1))).unwrap();
        let id = store.create_person(&new_person("Bea", &["w1"])).unwrap();
        drop(store);
        assert!(!is_plaintext(&path), "from version {from}");
        let mut store = Store::open_with_key(&path, writer(), Some(&key(1))).unwrap();
        assert_eq!(store.person(&id).unwrap().name.value, "Bea", "from version {from}");
    }
}

#[test]
fn a_plaintext_store_whose_last_changes_are_still_in_its_wal_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite3");
    let crashed = dir.path().join("crashed.sqlite3");
    let mut store = Store::open(&path, writer()).unwrap();
    let written = write_some(&mut store, "Her grandson's wedding");
    // The files as a power cut would leave them: the store open, its changes in the WAL.
    for suffix in ["", "-wal", "-shm"] {
        fs::copy(sibling(&path, suffix), sibling(&crashed, suffix)).unwrap();
    }
    drop(store);
    assert!(fs::metadata(sibling(&crashed, "-wal")).unwrap().len() > 0);

    let mut store = Store::open_with_key(&crashed, writer(), Some(&key(1))).unwrap();
    assert_intact(&mut store, &written, "Her grandson's wedding");
    drop(store);
    assert!(!is_plaintext(&crashed));
}

#[test]
fn a_copy_left_by_a_crash_while_encrypting_is_discarded_on_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite3");
    let mut store = Store::open(&path, writer()).unwrap();
    let written = write_some(&mut store, "Her grandson's wedding");
    drop(store);
    // A crash before the rename leaves the plaintext store and a half-written encrypted copy
    // (here: the first half of a finished one) with its rollback journal.
    let finished = dir.path().join("finished.sqlite3");
    let mut other = Store::open_with_key(&finished, writer(), Some(&key(1))).unwrap();
    write_some(&mut other, "Something else");
    drop(other);
    let bytes = fs::read(&finished).unwrap();
    let copy = sibling(&path, ".encrypting");
    fs::write(&copy, &bytes[..bytes.len() / 2]).unwrap();
    fs::write(sibling(&copy, "-journal"), b"half a journal").unwrap();

    let mut store = Store::open_with_key(&path, writer(), Some(&key(1))).unwrap();
    assert_intact(&mut store, &written, "Her grandson's wedding");
    drop(store);
    assert!(!copy.exists() && !sibling(&copy, "-journal").exists());
    assert!(!is_plaintext(&path));

    // A crash after the rename leaves the finished encrypted store, which simply opens (the
    // test above); and an unkeyed open clears a stale copy too, leaving the plaintext store.
    let plain = dir.path().join("plain.sqlite3");
    drop(Store::open(&plain, writer()).unwrap());
    let copy = sibling(&plain, ".encrypting");
    fs::write(&copy, &bytes[..bytes.len() / 2]).unwrap();
    drop(Store::open(&plain, writer()).unwrap());
    assert!(!copy.exists());
    assert!(is_plaintext(&plain));
}

#[test]
fn after_a_rekey_the_old_key_is_wrong_and_the_new_one_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite3");
    let mut store = Store::open_with_key(&path, writer(), Some(&key(1))).unwrap();
    let written = write_some(&mut store, "Her grandson's wedding");
    store.rekey(&key(2)).unwrap();
    // The open store carries on under the new key.
    store
        .edit_visit(&written.visit, |v| v.splice(Section::Goals, 0, 0, "Dance"))
        .unwrap();
    drop(store);

    assert_wrong_key(Store::open_with_key(&path, writer(), Some(&key(1))));
    let mut store = Store::open_with_key(&path, writer(), Some(&key(2))).unwrap();
    assert_intact(&mut store, &written, "Her grandson's wedding");
    assert_eq!(store.visit(&written.visit).unwrap().section(Section::Goals), "Dance");
}

#[test]
fn a_plaintext_store_cannot_be_rekeyed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite3");
    let mut store = Store::open(&path, writer()).unwrap();
    let err = store.rekey(&key(2)).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { field, .. } if field == "key"),
        "{err}"
    );
    drop(store);
    assert!(is_plaintext(&path));
}

#[test]
fn a_device_opens_with_its_key_and_rekeys_enrolled_or_not() {
    let dir = tempfile::tempdir().unwrap();

    // Not enrolled: the store is held by nobody while it is rekeyed.
    let path = dir.path().join("new.sqlite3");
    let device = Device::open(&path, Some(&[1; 32])).unwrap();
    assert!(device.enrolment().is_none());
    device.rekey(&[2; 32]).unwrap();
    drop(device);
    assert!(!is_plaintext(&path));
    assert!(matches!(Device::open(&path, Some(&[1; 32])), Err(Error::WrongKey(_))));
    drop(Device::open(&path, Some(&[2; 32])).unwrap());

    // Enrolled (written as enrolling does; no server is needed to open): the open store is.
    let path = dir.path().join("enrolled.sqlite3");
    let enrolment = Enrolment {
        server: Server {
            host: "outpost.invalid".into(),
            port: 443,
            ca_pem: None,
            pins: Vec::new(),
        },
        author: Author::new(WorkerId::new("w1").unwrap(), DeviceId::new("w1-phone").unwrap()),
        team: TeamId::new("north").unwrap(),
        lead: false,
        credential: "unused".into(),
        enrolled_at: "2026-11-21T00:00:00Z".into(),
    };
    // Enrolled before encryption existed: the first keyed open encrypts it.
    enrolment.save(&path, None).unwrap();
    let device = Device::open(&path, Some(&[1; 32])).unwrap();
    assert!(!is_plaintext(&path));
    let person = device
        .write(|s| s.create_person(&new_person("Ann Lee", &["w1"])))
        .unwrap();
    device.rekey(&[3; 32]).unwrap();
    assert_eq!(device.read(|s| s.person(&person)).unwrap().name.value, "Ann Lee");
    drop(device);

    assert!(matches!(Device::open(&path, Some(&[1; 32])), Err(Error::WrongKey(_))));
    let device = Device::open(&path, Some(&[3; 32])).unwrap();
    assert_eq!(device.enrolment(), Some(enrolment));
    assert_eq!(device.read(|s| s.person(&person)).unwrap().name.value, "Ann Lee");
    let err = device.rekey(&[4; 31]).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { field, .. } if field == "key"),
        "{err}"
    );

    let plain = Device::open(dir.path().join("plain.sqlite3"), None).unwrap();
    let err = plain.rekey(&[2; 32]).unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput { field, .. } if field == "key"),
        "{err}"
    );
}

/// Writes a visit note holding `probe` and returns the bytes of the store file and its WAL,
/// read while the store is still open (so the WAL holds the latest pages).
fn probe_bytes(key: Option<&StoreKey>, probe: &str) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite3");
    let mut store = Store::open_with_key(&path, writer(), key).unwrap();
    let person = store.create_person(&new_person("Ann Lee", &["w1"])).unwrap();
    let visit = store.create_visit(&new_visit(&person, "w1", 11)).unwrap();
    store
        .edit_visit(&visit, |v| {
            v.splice(
                Section::WhatMatters,
                0,
                0,
                &format!("She talked about {probe} at length"),
            )
        })
        .unwrap();
    assert_eq!(
        store.search(probe, 10).unwrap().len(),
        1,
        "the probe is in the full-text index"
    );
    let live = (fs::read(&path).unwrap(), fs::read(sibling(&path, "-wal")).unwrap());
    assert!(!live.1.is_empty(), "the WAL holds the latest writes");
    drop(store);
    // Closing checkpoints the WAL into the file.
    (live.0, live.1, fs::read(&path).unwrap())
}

#[test]
fn visit_text_and_the_full_text_index_never_reach_the_disk_in_the_clear() {
    let probe = "zebrafinchprobe";
    let found = |bytes: &[u8]| contains(bytes, probe.as_bytes());

    // The scan can fail: unencrypted, the probe is there to find.
    let (_, wal, closed) = probe_bytes(None, probe);
    assert!(found(&wal), "the probe is in an unencrypted store's WAL");
    assert!(found(&closed), "and in its file after a checkpoint");

    let (file, wal, closed) = probe_bytes(Some(&key(1)), probe);
    assert!(!found(&file), "the store file");
    assert!(!found(&wal), "the WAL");
    assert!(!found(&closed), "the store file after a checkpoint");
    assert!(!file.starts_with(PLAINTEXT_HEADER) && !closed.starts_with(PLAINTEXT_HEADER));
}

#[test]
fn a_backup_of_an_encrypted_store_is_encrypted_under_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sqlite3");
    let backup = dir.path().join("backup.sqlite3");
    let mut store = Store::open_with_key(&path, writer(), Some(&key(1))).unwrap();
    let written = write_some(&mut store, "Her grandson's wedding");
    store.backup_to(&backup).unwrap();
    drop(store);

    assert!(!is_plaintext(&backup));
    assert_wrong_key(Store::open(&backup, writer()));
    let mut restored = Store::open_with_key(&backup, writer(), Some(&key(1))).unwrap();
    assert_intact(&mut restored, &written, "Her grandson's wedding");
}
