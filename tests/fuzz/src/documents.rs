//! Automerge bytes from outside: a stored document loaded for reading (`Record::load`, what the
//! review pages do with the server's copy), and changes received from another replica imported
//! into a device's store (`Store::import_changes`).
//!
//! Input: a mode byte, then the bytes. Mode bit 0 first rewrites every chunk's checksum to
//! match its content, so mutations reach the column decoders behind the checksum instead of
//! all stopping there; bit 1 (import only) imports onto a visit the store already holds rather
//! than as a document new to it.

use std::cell::RefCell;

use automerge::AutoCommit;
use outpost_core::{DocType, Error, Record, Section};
use sha2::{Digest, Sha256};

use super::caught;
use super::scratch::{Scratch, ScratchCell, doc_id, with_scratch};

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

pub fn document_load(data: &[u8]) {
    let Some((mode, bytes)) = data.split_first() else {
        return;
    };
    let bytes = prepared(*mode, bytes);
    let id = doc_id("fuzz-doc");
    let record = match caught(|| Record::load(id.clone(), &bytes)) {
        Ok(record) => record,
        Err(e) => {
            assert!(
                matches!(&e, Error::CorruptDocument { id: named, .. } if *named == id),
                "a document that does not load is reported as corrupt, by name: {e}"
            );
            return;
        }
    };
    // Loading is stricter than checking chunk by chunk, never looser.
    if let Err(reason) = caught(|| outpost_core::sync::check_chunks(&bytes)) {
        panic!("a document loaded whose chunks do not check: {reason}");
    }
    let heads = record.heads();
    assert!(
        !heads.is_empty(),
        "a loaded record has a header, so at least one change"
    );
    assert!(record.has_heads(&heads));
    read_everything(&record);
    // What the server computes of a document it stores, and the document saved again and
    // loaded: the same document.
    let mut doc = match AutoCommit::load(&bytes) {
        Ok(doc) => doc,
        Err(e) => panic!("bytes Record::load accepted do not load plainly: {e}"),
    };
    let _ = outpost_core::sync::summarise(&doc, &id);
    let _ = outpost_core::sync::index_rows(&doc, &id);
    match Record::load(id, &doc.save()) {
        Ok(again) => {
            assert_eq!(again.heads(), heads, "saving changed the heads");
            assert_eq!(again.doc_type().ok(), record.doc_type().ok());
        }
        Err(e) => panic!("a loaded record, saved, does not load: {e}"),
    }
}

/// Every read the review pages make of a record: errors are fine, panics are not.
fn read_everything(record: &Record) {
    let _ = record.listing();
    let _ = record.contested_fields();
    let _ = record.concurrent_edits();
    match record.doc_type() {
        Ok(DocType::Person) => drop(record.person()),
        Ok(DocType::Visit) => {
            let _ = record.visit();
            for section in Section::ALL {
                let _ = record.authorship(section);
            }
        }
        Ok(DocType::Review) => drop(record.review()),
        Ok(DocType::Assessment) => drop(record.assessment()),
        Ok(DocType::Observations) => drop(record.observations()),
        Err(_) => {}
    }
}

/// Received bytes into a device's store: imported whole, or refused with `InvalidChanges`
/// naming the document and changing nothing. An import is idempotent, and whatever arrives the
/// visit the store held still reads.
pub fn document_import(data: &[u8]) {
    let Some((mode, bytes)) = data.split_first() else {
        return;
    };
    let bytes = prepared(*mode, bytes);
    with_scratch(&SCRATCH, false, |scratch| import_into(scratch, *mode & 2 != 0, &bytes));
}

thread_local! {
    static SCRATCH: ScratchCell = const { RefCell::new(None) };
}

fn import_into(scratch: &mut Scratch, onto_existing: bool, bytes: &[u8]) {
    let store = &mut scratch.store;
    let target = if onto_existing {
        scratch.existing.clone()
    } else {
        // Named by its bytes, so an input always meets the same store state for its id.
        doc_id(&format!("fresh-{:016x}", fnv1a(bytes)))
    };
    let before = store.heads(&target).ok();
    match caught(|| store.import_changes(&target, bytes)) {
        Ok(imported) => {
            let after = match store.heads(&target) {
                Ok(heads) => heads,
                Err(e) => panic!("an imported document has no heads: {e}"),
            };
            if let Some(before) = &before {
                // Missing here: heads it no longer has, and what changes it holds back need
                // (reported by the import, to be fetched); only the first would be a loss.
                let lost: Vec<_> = match store.missing(&target, before) {
                    Ok(missing) => missing.into_iter().filter(|h| !imported.missing.contains(h)).collect(),
                    Err(e) => panic!("an imported document cannot say what it lacks: {e}"),
                };
                assert!(lost.is_empty(), "an import lost changes the document had: {lost:?}");
            }
            match store.import_changes(&target, bytes) {
                Ok(_) => assert_eq!(store.heads(&target).ok(), Some(after), "importing twice changed more"),
                Err(e) => panic!("bytes imported once are refused the second time: {e}"),
            }
        }
        Err(Error::InvalidChanges { id, reason }) => {
            assert_eq!(id, target, "a refusal names the document");
            assert!(!reason.is_empty(), "a refusal says why");
            assert_eq!(
                store.heads(&target).ok(),
                before,
                "a refused import changed the document"
            );
        }
        Err(other) => panic!("an import was refused with an unexpected kind of error: {other}"),
    }
    let existing = scratch.existing.clone();
    if let Err(e) = scratch.store.visit(&existing) {
        panic!("after an import, the visit the store held does not read: {e}");
    }
}

fn prepared(mode: u8, bytes: &[u8]) -> Vec<u8> {
    if mode & 1 != 0 {
        repair_checksums(bytes)
    } else {
        bytes.to_vec()
    }
}

/// Rewrites the checksum of every document and change chunk to match its content, up to the
/// first thing that is not a whole chunk. Compressed changes are left alone: their checksum is
/// of the change before compression.
pub fn repair_checksums(bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let mut at = 0;
    while let Some((kind, data, end)) = chunk_at(&out, at) {
        if kind == 0 || kind == 1 {
            let mut hasher = Sha256::new();
            hasher.update([kind]);
            hasher.update(uleb128(end - data));
            hasher.update(&out[data..end]);
            let hash = hasher.finalize();
            out[at + 4..at + 8].copy_from_slice(&hash[..4]);
        }
        at = end;
    }
    out
}

/// The chunk starting at `at`: its type, where its data starts and where it ends.
fn chunk_at(bytes: &[u8], at: usize) -> Option<(u8, usize, usize)> {
    let header = bytes.get(at..at.checked_add(9)?)?;
    if header[..4] != MAGIC {
        return None;
    }
    let mut len: u64 = 0;
    let mut pos = at + 9;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(pos)?;
        pos += 1;
        len |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            let end = pos.checked_add(usize::try_from(len).ok()?)?;
            return (end <= bytes.len()).then_some((header[8], pos, end));
        }
    }
    None
}

fn uleb128(mut value: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}
