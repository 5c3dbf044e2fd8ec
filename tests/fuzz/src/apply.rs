//! A sync response as a device's sync engine applies it to its store: the frames' protocol
//! (head first, documents in log order, one end), acknowledgements, drops, and documents with
//! the index rows the server ships beside them, which the device trusts until it has checked
//! them itself.

use std::cell::RefCell;

use outpost_core::sync::SyncClient;
use outpost_core::sync::wire::{self, Frame, FrameReader};
use outpost_core::{Error, Store};

use super::caught;
use super::scratch::{Scratch, ScratchCell, with_scratch};

thread_local! {
    static SCRATCH: ScratchCell = const { RefCell::new(None) };
}

const PEER: &str = "fuzz-server:8443";

/// A response body fed to a device's sync engine with a round outstanding, cut in two where the
/// first byte says: applied, or refused by name. Either way the visit the device had edited,
/// and not had acknowledged, is still there with every change it had.
pub fn sync_apply(data: &[u8]) {
    with_scratch(&SCRATCH, true, |scratch| apply(scratch, data));
}

fn apply(scratch: &mut Scratch, data: &[u8]) {
    let Scratch { store, existing, .. } = scratch;
    let before = match store.heads(existing) {
        Ok(heads) => heads,
        Err(e) => panic!("the scratch store lost its visit: {e}"),
    };
    let mut client = SyncClient::new(PEER);
    match client.next_request(store) {
        Ok(Some(_)) => {}
        Ok(None) => panic!("a first sync has a round to make"),
        // A damaged document an earlier input shipped (stored unverified) that has become
        // pending stops every request until it is verified (tests/fuzz/KNOWN.md); the device
        // verifies only after a sync that succeeded, so do it here and carry on.
        Err(Error::CorruptDocument { .. }) => {
            if let Err(e) = store.verify_received(usize::MAX) {
                panic!("received documents could not be verified: {e}");
            }
            client = SyncClient::new(PEER);
            if let Err(e) = client.next_request(store) {
                panic!("the device could not make a request once verified: {e}");
            }
        }
        Err(e) => panic!("the device could not make a request: {e}"),
    }
    let cut = data.first().map_or(0, |b| usize::from(*b) * data.len() / 255);
    let result = caught(|| received(&mut client, store, &data[..cut], &data[cut..]));
    // Refused by name: bad input, or a document it names; never a storage failure or a bug.
    if let Err(e) = result {
        assert!(
            matches!(
                &e,
                Error::InvalidInput { .. }
                    | Error::NotFound(_)
                    | Error::WrongType { .. }
                    | Error::InvalidChanges { .. }
                    | Error::CorruptDocument { .. }
                    | Error::Automerge(_)
                    | Error::Network(_)
            ),
            "a response refused with an unexpected kind of error: {e:?}"
        );
    }
    // The visit holds an edit no server acknowledged, so nothing may drop or lose it, unless the
    // response acknowledged exactly its heads (which no fuzzer input can guess).
    if !acknowledges(data, existing, &before) {
        match store.missing(existing, &before) {
            Ok(missing) if missing.is_empty() => {}
            Ok(missing) => panic!("the device lost unacknowledged changes: {missing:?}"),
            Err(e) => panic!("the device lost a visit with unacknowledged changes: {e}"),
        }
    }
}

fn received(client: &mut SyncClient, store: &mut Store, first: &[u8], rest: &[u8]) -> outpost_core::Result<()> {
    client.receive(store, first)?;
    client.receive(store, rest)?;
    client.end_response(store)
}

/// Whether `data` holds a head acknowledging `doc` at exactly `heads`.
fn acknowledges(data: &[u8], doc: &outpost_core::DocId, heads: &[outpost_core::ChangeHash]) -> bool {
    let mut reader = FrameReader::default();
    reader.push(data);
    while let Ok(Some(frame)) = reader.next::<Frame>("sync response") {
        if let Frame::Head(head) = frame {
            return head.acks.iter().any(|ack| {
                ack.doc == doc.as_str() && wire::hashes_from_wire(&ack.heads, "heads").is_ok_and(|h| h == heads)
            });
        }
    }
    false
}
