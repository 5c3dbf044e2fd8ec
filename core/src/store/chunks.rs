//! Strict checking of Automerge bytes received from outside before they touch a document.
//! Automerge's incremental load silently drops a truncated or damaged trailing chunk; a worker's
//! data arriving half-broken must be refused with a reason instead.

use automerge::{AutoCommit, Change, LoadOptions, OnPartialLoad, VerificationMode};

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const HEADER_BEFORE_LENGTH: usize = MAGIC.len() + 4 + 1; // magic, checksum, chunk type
const DOCUMENT: u8 = 0;
const CHANGE: u8 = 1;
const COMPRESSED_CHANGE: u8 = 2;

/// Checks that `bytes` is a sequence of whole, valid Automerge chunks (documents or changes).
/// No bytes is a valid empty sequence: the sender had nothing new. When the bytes are exactly
/// one saved document, the document loaded while checking it is returned, so it is not loaded
/// twice.
pub(crate) fn validate(bytes: &[u8]) -> Result<Option<AutoCommit>, String> {
    let mut rest = bytes;
    let mut index = 0;
    let mut only_document = None;
    while !rest.is_empty() {
        let len = chunk_len(rest).map_err(|e| format!("chunk {index}: {e}"))?;
        let (chunk, tail) = rest.split_at(len);
        let document = check_chunk(chunk).map_err(|e| format!("chunk {index}: {e}"))?;
        only_document = if index == 0 && tail.is_empty() { document } else { None };
        rest = tail;
        index += 1;
    }
    Ok(only_document)
}

/// The total length of the chunk at the start of `bytes`, header included.
fn chunk_len(bytes: &[u8]) -> Result<usize, String> {
    if bytes.len() < HEADER_BEFORE_LENGTH || bytes[..4] != MAGIC {
        return Err("does not start with an Automerge chunk header".into());
    }
    let mut payload: u64 = 0;
    let mut shift = 0;
    let mut pos = HEADER_BEFORE_LENGTH;
    loop {
        let byte = *bytes.get(pos).ok_or("truncated in its length")?;
        pos += 1;
        if shift > 56 {
            return Err("length is too large".into());
        }
        payload |= u64::from(byte & 0x7f) << shift;
        shift += 7;
        if byte & 0x80 == 0 {
            break;
        }
    }
    let total = usize::try_from(payload)
        .ok()
        .and_then(|p| p.checked_add(pos))
        .ok_or("length is too large")?;
    if total > bytes.len() {
        return Err(format!("truncated: {} of {total} bytes present", bytes.len()));
    }
    Ok(total)
}

/// Decodes one chunk; a document chunk is returned loaded.
fn check_chunk(chunk: &[u8]) -> Result<Option<AutoCommit>, String> {
    match chunk[HEADER_BEFORE_LENGTH - 1] {
        DOCUMENT => load_untrusted(chunk)
            .map(Some)
            .map_err(|e| format!("document does not load: {e}")),
        CHANGE | COMPRESSED_CHANGE => untrusted(|| Change::from_bytes(chunk.to_vec()).map_err(|e| e.to_string()))
            .map(|_| None)
            .map_err(|e| format!("change does not decode: {e}")),
        other => Err(format!("unknown chunk type {other}")),
    }
}

/// Loads a saved document from outside, refusing a partial load and checking its hashes.
pub(crate) fn load_untrusted(bytes: &[u8]) -> Result<AutoCommit, String> {
    untrusted(|| {
        AutoCommit::load_with_options(
            bytes,
            LoadOptions::new()
                .on_partial_load(OnPartialLoad::Error)
                .verification_mode(VerificationMode::Check),
        )
        .map_err(|e| e.to_string())
    })
}

/// Applies changes from outside onto `doc`, as `load_incremental` does; a panic inside Automerge
/// is a refusal. After an error `doc` may hold part of the changes: the caller drops it.
pub(crate) fn apply_untrusted(doc: &mut AutoCommit, bytes: &[u8]) -> Result<usize, String> {
    untrusted(|| doc.load_incremental(bytes).map_err(|e| e.to_string()))
}

/// Runs Automerge over bytes from outside. Automerge 0.12 (and hexane, its column codec) can
/// panic on a crafted chunk whose checksum is valid (`tests/fuzz/KNOWN.md`); the panic becomes
/// a refusal here, so a hostile push cannot take a server's locks or a device's store with it.
fn untrusted<T>(decode: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode))
        .unwrap_or_else(|_| Err("automerge could not decode it (it panicked)".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::{ROOT, transaction::Transactable};

    #[test]
    fn a_panic_while_decoding_is_a_refusal() {
        let refused: Result<(), String> = untrusted(|| panic!("hexane: take would cross slab boundary"));
        assert_eq!(refused.unwrap_err(), "automerge could not decode it (it panicked)");
        assert_eq!(untrusted(|| Ok::<_, String>(7)), Ok(7));
    }

    fn two_changes() -> Vec<u8> {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "a", 1_i64).ok();
        doc.commit();
        doc.put(ROOT, "b", "two").ok();
        doc.commit();
        doc.get_changes(&[])
            .iter()
            .flat_map(|c| c.raw_bytes().to_vec())
            .collect()
    }

    #[test]
    fn whole_changes_and_documents_pass() {
        assert!(matches!(validate(&two_changes()), Ok(None)));
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "a", 1_i64).ok();
        assert!(matches!(validate(&doc.save()), Ok(Some(_))));
    }

    #[test]
    fn every_truncation_is_refused() {
        let bytes = two_changes();
        // A cut exactly between the two changes leaves one whole, valid change: a peer that
        // lacks the second simply asks again.
        let boundary = chunk_len(&bytes).unwrap_or(0);
        assert!(boundary > 0 && boundary < bytes.len());
        for cut in (1..bytes.len()).filter(|cut| *cut != boundary) {
            assert!(validate(&bytes[..cut]).is_err(), "cut at {cut} was accepted");
        }
        assert!(matches!(validate(&bytes[..boundary]), Ok(None)));
    }

    #[test]
    fn a_flipped_byte_in_a_change_is_refused() {
        let mut bytes = two_changes();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x01;
        assert!(validate(&bytes).is_err());
    }
}
