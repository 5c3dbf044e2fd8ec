//! The forensic scan itself, before anything relies on it to show text gone: it must find a
//! probe in every place a store holds it (decrypting an encrypted store's pages and WAL, and
//! decoding compressed Automerge history), must stop finding it once it is truly gone, and
//! must refuse to report "nothing" when it could not look (a wrong key).
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, ObjType, ROOT, ReadDoc};
use chrono::{TimeZone, Utc};
use outpost_core::{
    Author, DeviceId, NewPerson, NewVisit, RiskTier, Section, Setting, Store, StoreKey, TeamId, WorkerId,
};
use outpost_tests::forensics::{Found, assert_found, assert_gone, decrypt_sqlcipher, scan_bytes, scan_sqlite};
use rusqlite::Connection;

const PROBE: &str = "Quillfeather";
const KEY: [u8; 32] = [0x5a; 32];
/// Where a live store holds a visit's text, SQL-visible or decoded.
const LOGICAL: [&str; 4] = ["rows", "automerge history", "fts5vocab", "fts5 search"];

fn places(found: &Found, probe: &str) -> Vec<String> {
    found
        .iter()
        .filter(|(_, p)| p == probe)
        .map(|(place, _)| place.clone())
        .collect()
}

/// A store holding one visit whose "what matters" section mentions the probe. Returned open:
/// its writes are still in the WAL.
fn store_with_probe(path: &Path, key: Option<&StoreKey>) -> Store {
    let worker = WorkerId::new("w1").unwrap();
    let mut store = Store::open_with_key(path, Author::new(worker.clone(), DeviceId::new("d1").unwrap()), key).unwrap();
    let person = store
        .create_person(&NewPerson {
            name: "Ann Lee".into(),
            preferred_name: None,
            date_of_birth: None,
            nhs_number: None,
            address: None,
            team: TeamId::new("t1").unwrap(),
            allocated_workers: vec![worker.clone()],
            risk: RiskTier::Medium,
        })
        .unwrap();
    let visit = store
        .create_visit(&NewVisit {
            person,
            worker,
            at: Utc.with_ymd_and_hms(2026, 2, 1, 9, 0, 0).unwrap(),
            setting: Setting::HomeVisit,
        })
        .unwrap();
    store
        .edit_visit(&visit, |v| {
            v.set_section(Section::WhatMatters, &format!("Her cat {PROBE} keeps her company."))
        })
        .unwrap();
    store
}

fn connect(path: &Path, key: Option<&[u8]>) -> Connection {
    let conn = Connection::open(path).unwrap();
    if let Some(key) = key {
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        conn.execute_batch(&format!("PRAGMA key = \"x'{hex}'\"")).unwrap();
    }
    conn
}

/// Removes every row holding the visit's text, as a careless (`secure_delete` off) or careful
/// eraser would, then empties the WAL into the file.
fn delete_visit_text(path: &Path, key: Option<&[u8]>, secure_delete: bool) {
    let conn = connect(path, key);
    conn.pragma_update(None, "secure_delete", secure_delete).unwrap();
    conn.execute_batch(
        "DELETE FROM changes;
         UPDATE documents SET snapshot = NULL;
         DELETE FROM visit_text;
         INSERT INTO visit_text(visit_text) VALUES ('optimize');",
    )
    .unwrap();
    let busy: i64 = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
        .unwrap();
    assert_eq!(busy, 0, "the checkpoint ran to the end");
}

fn wal(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

#[test]
fn scan_bytes_ignores_ascii_case_and_finds_only_what_is_there() {
    let found = scan_bytes(b"xx quillFEATHER yy", &[PROBE, "absent", ""]);
    assert_eq!(found.into_iter().collect::<Vec<_>>(), [PROBE]);
}

#[test]
fn a_plain_store_shows_the_probe_everywhere_and_none_once_securely_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.sqlite3");
    let store = store_with_probe(&path, None);

    // Open, the writes are in the WAL and not yet in the file.
    let found = scan_sqlite(&path, None, &[PROBE, "Nowhere"]);
    assert_found(&found, &LOGICAL, &[PROBE], "an open plain store");
    assert_found(&found, &["wal"], &[PROBE], "an open plain store");
    assert!(places(&found, "Nowhere").is_empty(), "{found:?}");

    // Closing checkpoints the WAL into the file and removes it.
    drop(store);
    assert!(!wal(&path).exists());
    let found = scan_sqlite(&path, None, &[PROBE]);
    assert_found(&found, &LOGICAL, &[PROBE], "a closed plain store");
    assert_found(&found, &["file"], &[PROBE], "a closed plain store");

    delete_visit_text(&path, None, true);
    assert_gone(
        &scan_sqlite(&path, None, &[PROBE]),
        "a plain store after a secure delete",
    );
}

#[test]
fn deleted_rows_left_in_free_space_are_found_in_the_file_only() {
    for key in [None, Some(&KEY[..])] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite3");
        let store_key = key.map(|k| StoreKey::new(k).unwrap());
        drop(store_with_probe(&path, store_key.as_ref()));

        // Without secure_delete, SQLite only unlinks a deleted cell: SQL no longer sees the
        // text, but its bytes stay in the page (free space or a free page) until overwritten.
        delete_visit_text(&path, key, false);
        let found = scan_sqlite(&path, key, &[PROBE]);
        assert_eq!(places(&found, PROBE), ["file"], "encrypted: {}", key.is_some());
    }
}

#[test]
fn an_encrypted_store_is_decrypted_page_by_page_and_wal_frame_by_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("encrypted.sqlite3");
    let key = StoreKey::new(&KEY).unwrap();
    let store = store_with_probe(&path, Some(&key));

    // The settings the decryption assumes, as the store's own connection reports them.
    let conn = connect(&path, Some(&KEY));
    let setting = |pragma: &str| -> String {
        conn.query_row(&format!("PRAGMA {pragma}"), [], |row| row.get(0))
            .unwrap()
    };
    assert_eq!(setting("cipher_page_size"), "4096");
    assert_eq!(setting("cipher_hmac_algorithm"), "HMAC_SHA512");
    assert_eq!(setting("cipher_use_hmac"), "1");
    assert_eq!(setting("cipher_plaintext_header_size"), "0");
    drop(conn);

    // Nothing readable on the disk, but everything once decrypted.
    let raw_file = fs::read(&path).unwrap();
    let raw_wal = fs::read(wal(&path)).unwrap();
    assert!(!raw_file.starts_with(b"SQLite format 3\0"));
    assert!(scan_bytes(&raw_file, &[PROBE]).is_empty());
    assert!(scan_bytes(&raw_wal, &[PROBE]).is_empty());
    let found = scan_sqlite(&path, Some(&KEY), &[PROBE]);
    assert_found(&found, &LOGICAL, &[PROBE], "an open encrypted store");
    assert_found(&found, &["wal"], &[PROBE], "an open encrypted store's WAL, decrypted");

    drop(store);
    let raw_file = fs::read(&path).unwrap();
    assert!(scan_bytes(&raw_file, &[PROBE]).is_empty());
    let found = scan_sqlite(&path, Some(&KEY), &[PROBE]);
    assert_found(&found, &LOGICAL, &[PROBE], "a closed encrypted store");
    assert_found(
        &found,
        &["file"],
        &[PROBE],
        "a closed encrypted store's file, decrypted",
    );

    // The decrypted image is a valid plain SQLite database holding the same rows: proof that
    // every page decrypted, not just the ones holding the probe.
    let image = decrypt_sqlcipher(&raw_file, &KEY);
    assert_eq!(&image[..16], b"SQLite format 3\0");
    assert_eq!(u16::from_be_bytes([image[16], image[17]]), 4096);
    assert_eq!(image[20], 80, "16 bytes of IV and 64 of HMAC-SHA512 reserved per page");
    assert_eq!(image.len(), raw_file.len());
    let plain = dir.path().join("decrypted.sqlite3");
    fs::write(&plain, &image).unwrap();
    let conn = Connection::open(&plain).unwrap();
    let body: String = conn
        .query_row(
            "SELECT body FROM visit_text WHERE visit_text MATCH ?1",
            [PROBE],
            |row| row.get(0),
        )
        .unwrap();
    assert!(body.contains(PROBE), "{body}");
    let check: String = conn.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
    assert_eq!(check, "ok");
    drop(conn);

    delete_visit_text(&path, Some(&KEY), true);
    assert_gone(
        &scan_sqlite(&path, Some(&KEY), &[PROBE]),
        "an encrypted store after a secure delete",
    );
}

#[test]
#[should_panic(expected = "does not decrypt page 1")]
fn a_wrong_key_fails_the_scan_instead_of_finding_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("encrypted.sqlite3");
    drop(store_with_probe(&path, Some(&StoreKey::new(&KEY).unwrap())));
    scan_sqlite(&path, Some(&[0x11; 32]), &[PROBE]);
}

/// A document whose text held the probe (among enough other text that Automerge compresses the
/// columns), then lost it: the probe is only in the history, and only once decoded. Actor and
/// times are fixed, so the bytes are the same every run.
fn history_with_probe() -> (AutoCommit, Vec<Vec<u8>>) {
    let mut doc = AutoCommit::new().with_actor(ActorId::from(b"forensics-test".as_slice()));
    let at = |t| CommitOptions::default().with_time(t);
    let text = doc.put_object(ROOT, "notes", ObjType::Text).unwrap();
    doc.commit_with(at(1));
    let filler = "the kettle was on and the dog barked at the post ".repeat(12);
    doc.splice_text(&text, 0, 0, &format!("{filler}{PROBE}{filler}"))
        .unwrap();
    doc.commit_with(at(2));
    doc.splice_text(&text, filler.len(), PROBE.len() as isize, "").unwrap();
    doc.commit_with(at(3));
    let changes = doc
        .get_changes(&[])
        .into_iter()
        .map(|mut c| c.bytes().into_owned())
        .collect();
    (doc, changes)
}

/// The probe typed a letter a change, then deleted: no change holds more than one letter of
/// it, so only the document rebuilt from its changes, read as it stood after each, shows it.
fn typed_letter_by_letter() -> Vec<Vec<u8>> {
    let mut doc = AutoCommit::new().with_actor(ActorId::from(b"forensics-typist".as_slice()));
    let text = doc.put_object(ROOT, "notes", ObjType::Text).unwrap();
    for (i, letter) in PROBE.chars().enumerate() {
        doc.splice_text(&text, i, 0, &letter.to_string()).unwrap();
        doc.commit_with(CommitOptions::default().with_time(i as i64));
    }
    doc.splice_text(&text, 0, PROBE.len() as isize, "").unwrap();
    doc.commit_with(CommitOptions::default().with_time(99));
    doc.get_changes(&[])
        .into_iter()
        .map(|mut c| c.bytes().into_owned())
        .collect()
}

fn table_of_blobs(path: &Path, blobs: &[Vec<u8>]) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("CREATE TABLE blobs (b BLOB)").unwrap();
    for blob in blobs {
        conn.execute("INSERT INTO blobs (b) VALUES (?1)", [blob]).unwrap();
    }
}

#[test]
fn automerge_history_is_decoded_whole_split_into_changes_or_orphaned() {
    let (mut doc, changes) = history_with_probe();
    assert!(
        !doc.text(doc.get(ROOT, "notes").unwrap().unwrap().1)
            .unwrap()
            .contains(PROBE)
    );
    let saved = doc.save();
    // Compressed: a byte search would miss it.
    assert!(scan_bytes(&saved, &[PROBE]).is_empty());
    assert!(changes.iter().all(|c| scan_bytes(c, &[PROBE]).is_empty()));

    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("a saved document", vec![saved]),
        ("one change a row", changes.clone()),
        // The change that typed the probe, without the change it depends on.
        ("an orphaned change", vec![changes[1].clone()]),
        ("typed a letter a change", typed_letter_by_letter()),
    ];
    for (i, (what, blobs)) in cases.into_iter().enumerate() {
        let path = dir.path().join(format!("{i}.sqlite3"));
        table_of_blobs(&path, &blobs);
        let found = scan_sqlite(&path, None, &[PROBE]);
        // "file": each blob also sits whole in a page of the file, where the scan carves out
        // Automerge chunks and decodes them (as it would in a free page or a stale WAL frame).
        assert_eq!(places(&found, PROBE), ["automerge history", "file"], "{what}");
    }
}

#[test]
fn the_index_is_read_through_its_own_tokenizer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fts.sqlite3");
    let conn = Connection::open(&path).unwrap();
    // Contentless: only the index holds the words, stemmed ("happy" becomes "happi").
    conn.execute_batch(
        "CREATE VIRTUAL TABLE notes USING fts5(body, content = '', tokenize = 'porter unicode61 remove_diacritics 2');
         INSERT INTO notes (rowid, body) VALUES (1, 'Happy memories of Quillfeather and Zoë');",
    )
    .unwrap();
    drop(conn);

    let probes = ["happy", PROBE, "Zoe", "happy memories", "sad", "happy sad"];
    let found = scan_sqlite(&path, None, &probes);
    let mut expected: Found = ["fts5 search", "fts5vocab"]
        .into_iter()
        .flat_map(|place| ["happy", PROBE, "Zoe", "happy memories"].map(|probe| (place.to_string(), probe.to_string())))
        .collect();
    // A term the stemmer leaves whole is in the index's blobs byte for byte; stemmed ones
    // ("happi", "quillfeath") are found only through the vocabulary.
    expected.extend(["file", "rows"].map(|place| (place.to_string(), "Zoe".to_string())));
    assert_eq!(found, expected);
}

#[test]
#[should_panic(expected = "\"Quillfeather\" in fts5vocab\n  \"Quillfeather\" in rows")]
fn assert_gone_names_every_place() {
    let found: Found = [("rows", PROBE), ("fts5vocab", PROBE)]
        .map(|(place, probe)| (place.to_string(), probe.to_string()))
        .into();
    assert_gone(&found, "a store");
}

#[test]
#[should_panic(expected = "\"Quillfeather\" not in wal")]
fn assert_found_names_what_was_missed() {
    let found: Found = [("rows".to_string(), PROBE.to_string())].into();
    assert_found(&found, &["rows", "wal"], &[PROBE], "a store");
}
