//! Sync frames from outside: a request as the server's endpoint reads it, a response as a
//! device reads it. The Automerge bytes frames carry are the document targets' to fuzz (the
//! server checks a push with `check_chunks` and merges it as `Store::import_changes` does).

use outpost_core::DocId;
use outpost_core::sync::wire::{self, Frame, FrameReader, Request, WireHash};

/// Encoding a decoded value and decoding it again gives the same value and the same bytes.
/// (A macro, not a generic function, so the crate needs no `serde` of its own.)
macro_rules! assert_round_trips {
    ($value:expr, $ty:ty, $what:expr) => {{
        let value: &$ty = $value;
        let encoded = wire::encode(value);
        let decoded: $ty = match wire::decode_one(&encoded, $what) {
            Ok(decoded) => decoded,
            Err(e) => panic!("a decoded {} does not decode once re-encoded: {e}", $what),
        };
        assert_eq!(&decoded, value, "a {} changed through encoding", $what);
        assert_eq!(wire::encode(&decoded), encoded, "a {} encodes two ways", $what);
    }};
}

/// A request body through the server's decoder, then the checks the server makes of it before
/// it touches storage or Automerge documents: versions, capabilities, ids, heads, and each
/// Automerge sync message's decoding.
pub fn sync_request(data: &[u8]) {
    let request = match wire::decode_one::<Request>(data, "sync request") {
        Ok(request) => request,
        Err(e) => return assert_names(&e, "sync request"),
    };
    assert_round_trips!(&request, Request, "sync request");
    if let Some(version) = wire::negotiate(request.min_protocol, request.protocol) {
        assert!(version >= request.min_protocol && version <= request.protocol);
    }
    let common = wire::common_capabilities(&request.capabilities);
    assert!(common.iter().all(|c| request.capabilities.contains(c)));
    for person in &request.dropped {
        let _ = DocId::new(person.as_str());
    }
    for listed in request.inventory.iter().flatten() {
        let _ = DocId::new(listed.doc.as_str());
        heads(&listed.heads);
    }
    for push in &request.pushes {
        let _ = DocId::new(push.doc.as_str());
        heads(&push.base);
        heads(&push.heads);
    }
    for message in &request.automerge_sync {
        let _ = DocId::new(message.doc.as_str());
        automerge_message(&message.message);
    }
}

/// A response body through the device's frame reader, whole and cut in two (as bytes arrive
/// from the network): the same frames either way, each surviving re-encoding, then the checks
/// the device makes of each frame before applying its documents.
pub fn sync_response(data: &[u8]) {
    let whole = read_frames(&[data]);
    // A cut point that moves with the input, so the fuzzer explores it.
    let cut = data.first().map_or(0, |b| usize::from(*b) * data.len() / 255);
    let parts = read_frames(&[&data[..cut], &data[cut..]]);
    assert_eq!(whole, parts, "frames depend on where the bytes were cut (at {cut})");
    let bytewise: Vec<&[u8]> = data.chunks(1).collect();
    if data.len() <= 512 {
        assert_eq!(
            whole,
            read_frames(&bytewise),
            "frames differ when bytes arrive one at a time"
        );
    }
    for frame in &whole.frames {
        assert_round_trips!(frame, Frame, "sync response");
        match frame {
            Frame::Head(head) => {
                let _ = wire::negotiate(head.protocol, head.protocol);
                for ack in &head.acks {
                    let _ = DocId::new(ack.doc.as_str());
                    heads(&ack.heads);
                }
                for doc in head
                    .refused
                    .iter()
                    .map(|r| &r.doc)
                    .chain(&head.diverged)
                    .chain(&head.drop)
                {
                    let _ = DocId::new(doc.as_str());
                }
                for message in &head.automerge_sync {
                    automerge_message(&message.message);
                }
            }
            Frame::Doc(_, doc, _) => {
                let _ = DocId::new(doc.as_str());
            }
            Frame::Indexed(_, doc, _, sent_heads, _) => {
                let _ = DocId::new(doc.as_str());
                heads(sent_heads);
            }
            Frame::Replaced(_, doc, replaced) => {
                let _ = DocId::new(doc.as_str());
                heads(&replaced.heads);
                heads(&replaced.redaction.root);
            }
            Frame::End(_) => {}
        }
    }
}

/// What a frame reader made of some bytes: the frames before any error, and how it stopped.
#[derive(Debug, PartialEq)]
struct Frames {
    frames: Vec<Frame>,
    refused: bool,
    partial: bool,
}

fn read_frames(parts: &[&[u8]]) -> Frames {
    let mut reader = FrameReader::default();
    let mut frames = Vec::new();
    for part in parts {
        reader.push(part);
        loop {
            match reader.next::<Frame>("sync response") {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(e) => {
                    assert_names(&e, "sync response");
                    return Frames {
                        frames,
                        refused: true,
                        partial: false,
                    };
                }
            }
        }
    }
    Frames {
        frames,
        refused: false,
        partial: reader.has_partial(),
    }
}

/// Heads are accepted exactly when every hash is 32 bytes, and come back sorted and distinct.
fn heads(sent: &[WireHash]) {
    let read = wire::hashes_from_wire(sent, "heads");
    assert_eq!(read.is_ok(), sent.iter().all(|h| h.len() == 32), "heads {sent:?}");
    if let Ok(read) = read {
        assert!(read.windows(2).all(|w| w[0] < w[1]), "heads not sorted and distinct");
        assert!(read.len() <= sent.len());
    }
}

/// An Automerge sync message decodes or is refused; a decoded one encodes to bytes that decode
/// again, and encode the same way from then on. (Bytes, not values: an empty bloom filter keeps
/// no parameters, so its decoded value takes defaults.)
fn automerge_message(bytes: &[u8]) {
    use automerge::sync::Message;
    let Ok(message) = Message::decode(bytes) else {
        return;
    };
    // Automerge's encoder debug-asserts that hash lists are sorted, which a decoded message's
    // need not be; shipped builds (dependencies without debug assertions, as the workspace
    // builds them) encode them as they are.
    let sorted = |hashes: &[automerge::ChangeHash]| hashes.is_sorted();
    if cfg!(debug_assertions)
        && !(sorted(&message.heads) && sorted(&message.need) && message.have.iter().all(|have| sorted(&have.last_sync)))
    {
        return;
    }
    let once = message.encode();
    match Message::decode(&once) {
        Ok(again) => assert_eq!(again.encode(), once, "an Automerge sync message encodes two ways"),
        Err(e) => panic!("an encoded Automerge sync message does not decode: {e}"),
    }
}

/// A refusal names what was refused.
fn assert_names(error: &outpost_core::Error, what: &str) {
    let message = error.to_string();
    assert!(
        message.contains(what),
        "the refusal does not name the {what}: {message}"
    );
}
