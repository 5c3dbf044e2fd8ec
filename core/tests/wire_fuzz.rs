//! Sync bytes from the network are untrusted. Whatever arrives (noise, or a valid request or
//! response stream with bits flipped, bytes cut, inserted or spliced in), `wire::decode_one`
//! and `FrameReader` do not panic: they decode, or refuse with `InvalidInput` naming the
//! message. Valid messages round-trip however they are split. (A longer run of the same
//! properties: scripts/fuzz-wire.sh.)
#![allow(clippy::unwrap_used)]

use outpost_core::Error;
use outpost_core::sync::wire::{
    self, AutomergeSync, DocHeads, End, Frame, FrameReader, Head, Lease, MAX_FRAME, Push, Refusal, Request, WireHash,
};
use proptest::prelude::*;
use serde_bytes::ByteBuf;

const REQUEST: &str = "sync request";
const RESPONSE: &str = "sync response";

/// 256 in the test suite; `PROPTEST_CASES` asks for a longer run (scripts/fuzz-wire.sh).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn bytes(max: usize) -> impl Strategy<Value = ByteBuf> {
    prop::collection::vec(any::<u8>(), 0..max).prop_map(ByteBuf::from)
}

/// Mostly ids as devices make them, sometimes any text at all.
fn id() -> impl Strategy<Value = String> {
    prop_oneof![4 => "[a-z0-9][a-z0-9.-]{0,36}", 1 => ".{0,12}"]
}

fn hashes() -> impl Strategy<Value = Vec<WireHash>> {
    prop::collection::vec(
        prop_oneof![9 => prop::collection::vec(any::<u8>(), 32), 1 => prop::collection::vec(any::<u8>(), 0..40)]
            .prop_map(ByteBuf::from),
        0..3,
    )
}

fn doc_heads() -> impl Strategy<Value = DocHeads> {
    (id(), hashes()).prop_map(|(doc, heads)| DocHeads { doc, heads })
}

fn automerge_sync() -> impl Strategy<Value = AutomergeSync> {
    (id(), bytes(64)).prop_map(|(doc, message)| AutomergeSync { doc, message })
}

fn push() -> impl Strategy<Value = Push> {
    (id(), hashes(), hashes(), bytes(300)).prop_map(|(doc, base, heads, bytes)| Push {
        doc,
        base,
        heads,
        bytes,
    })
}

fn request() -> impl Strategy<Value = Request> {
    let small = || prop::collection::vec(id(), 0..3);
    (
        (
            any::<u32>(),
            any::<u32>(),
            small(),
            prop::option::of(id()),
            any::<u64>(),
        ),
        (
            prop::collection::vec(bytes(16), 0..3),
            small(),
            prop::option::of(prop::collection::vec(doc_heads(), 0..3)),
            prop::collection::vec(push(), 0..4),
            prop::collection::vec(automerge_sync(), 0..2),
        ),
        any::<bool>(),
        (
            prop::collection::vec(held_edit(), 0..2),
            prop::collection::vec(id(), 0..3),
        ),
    )
        .prop_map(
            |(
                (protocol, min_protocol, capabilities, epoch, cursor),
                (actors, dropped, inventory, pushes, automerge_sync),
                retire_ready,
                (held, erased),
            )| Request {
                protocol,
                min_protocol,
                capabilities,
                epoch,
                cursor,
                actors,
                dropped,
                inventory,
                pushes,
                automerge_sync,
                retire_ready,
                held,
                erased,
            },
        )
}

fn held_edit() -> impl Strategy<Value = outpost_core::sync::wire::HeldEdit> {
    (id(), prop::collection::vec(".{0,8}", 0..3), any::<u32>(), ".{0,30}").prop_map(|(doc, keys, at, text)| {
        outpost_core::sync::wire::HeldEdit {
            doc,
            held: outpost_core::forget::Held {
                path: keys.into_iter().map(outpost_core::forget::Step::Key).collect(),
                at: at as usize,
                text,
            },
        }
    })
}

fn head() -> impl Strategy<Value = Head> {
    let small = || prop::collection::vec(id(), 0..3);
    (
        (any::<u32>(), small(), id(), any::<bool>()),
        (
            prop::collection::vec(doc_heads(), 0..3),
            prop::collection::vec(
                (id(), ".{0,30}").prop_map(|(doc, reason)| Refusal { doc, reason }),
                0..2,
            ),
            small(),
            prop::collection::vec(automerge_sync(), 0..2),
            small(),
        ),
        (
            any::<bool>(),
            any::<bool>(),
            prop::option::of(lease()),
            small(),
            small(),
        ),
    )
        .prop_map(
            |(
                (protocol, capabilities, epoch, epoch_changed),
                (acks, refused, diverged, automerge_sync, drop),
                (retire, retired, lease, erase_docs, erase_people),
            )| Head {
                protocol,
                capabilities,
                epoch,
                epoch_changed,
                acks,
                refused,
                diverged,
                automerge_sync,
                drop,
                erase_docs,
                erase_people,
                retire,
                retired,
                lease,
            },
        )
}

fn lease() -> impl Strategy<Value = Lease> {
    (id(), any::<i64>(), any::<i64>(), bytes(32), bytes(64)).prop_map(
        |(device, issued_at, expires_at, key, signature)| Lease {
            device,
            issued_at,
            expires_at,
            key,
            signature,
        },
    )
}

/// A response as a server sends it: a head, documents, an end.
fn response() -> impl Strategy<Value = Vec<Frame>> {
    (
        head(),
        prop::collection::vec((any::<u64>(), id(), bytes(200)), 0..5),
        any::<u64>(),
        any::<bool>(),
    )
        .prop_map(|(head, docs, cursor, more)| {
            let mut frames = vec![Frame::Head(head)];
            frames.extend(docs.into_iter().map(|(seq, doc, bytes)| Frame::Doc(seq, doc, bytes)));
            frames.push(Frame::End(End { cursor, more }));
            frames
        })
}

fn encode_all(frames: &[Frame]) -> Vec<u8> {
    frames.iter().flat_map(wire::encode).collect()
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: usize,
        mask: u8,
    },
    Truncate {
        at: usize,
    },
    Insert {
        at: usize,
        byte: u8,
    },
    Remove {
        at: usize,
    },
    /// Copies `len` bytes of another valid message over this one's, from `from` to `at`.
    Splice {
        from: usize,
        len: usize,
        at: usize,
    },
    /// Repeats a run of the message's own bytes, as a retransmission bug might.
    Repeat {
        from: usize,
        len: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert { at, byte }),
        any::<usize>().prop_map(|at| Mutation::Remove { at }),
        (any::<usize>(), 1..64usize, any::<usize>()).prop_map(|(from, len, at)| Mutation::Splice { from, len, at }),
        (any::<usize>(), 1..64usize).prop_map(|(from, len)| Mutation::Repeat { from, len }),
    ]
}

fn mutate(mut bytes: Vec<u8>, donor: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        if bytes.is_empty() {
            break;
        }
        let n = bytes.len();
        match *m {
            Mutation::Flip { at, mask } => bytes[at % n] ^= mask,
            Mutation::Truncate { at } => bytes.truncate(at % n),
            Mutation::Insert { at, byte } => bytes.insert(at % (n + 1), byte),
            Mutation::Remove { at } => {
                bytes.remove(at % n);
            }
            Mutation::Splice { from, len, at } if !donor.is_empty() => {
                let from = from % donor.len();
                let piece = &donor[from..(from + len).min(donor.len())];
                let at = at % n;
                let end = (at + piece.len()).min(n);
                bytes.splice(at..end, piece.iter().copied());
            }
            Mutation::Splice { .. } => {}
            Mutation::Repeat { from, len } => {
                let from = from % n;
                let piece = bytes[from..(from + len).min(n)].to_vec();
                bytes.splice(from..from, piece);
            }
        }
    }
    bytes
}

/// `bytes` cut at `cuts` (taken modulo its length), in order.
fn split<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    at.push(0);
    at.push(bytes.len());
    at.sort_unstable();
    at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

/// A refusal must be `InvalidInput` naming the message.
fn check_refusal(error: &Error, what: &str) -> Result<(), TestCaseError> {
    match error {
        Error::InvalidInput { field, reason } => {
            prop_assert_eq!(field, what);
            prop_assert!(!reason.is_empty());
            Ok(())
        }
        other => Err(TestCaseError::fail(format!("{what}: not InvalidInput: {other}"))),
    }
}

/// Decodes as a request, checking that a refusal names it and a success re-encodes faithfully.
fn decode_request(bytes: &[u8]) -> Result<Option<Request>, TestCaseError> {
    match wire::decode_one::<Request>(bytes, REQUEST) {
        Ok(request) => {
            let again = wire::decode_one::<Request>(&wire::encode(&request), REQUEST);
            prop_assert_eq!(again.as_ref().ok(), Some(&request));
            Ok(Some(request))
        }
        Err(error) => check_refusal(&error, REQUEST).map(|()| None),
    }
}

/// Feeds a response stream to a reader in the given pieces; returns the frames read and the
/// refusal, if any. Reading stops at the first refusal, as the sync engine does.
fn read_response(pieces: &[&[u8]]) -> Result<(Vec<Frame>, Option<Error>, bool), TestCaseError> {
    let mut reader = FrameReader::default();
    let mut frames = Vec::new();
    for piece in pieces {
        reader.push(piece);
        loop {
            match reader.next::<Frame>(RESPONSE) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(error) => {
                    check_refusal(&error, RESPONSE)?;
                    return Ok((frames, Some(error), reader.has_partial()));
                }
            }
        }
    }
    Ok((frames, None, reader.has_partial()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn requests_round_trip(request in request()) {
        let bytes = wire::encode(&request);
        prop_assert_eq!(wire::decode_one::<Request>(&bytes, REQUEST).unwrap(), request);
    }

    #[test]
    fn a_response_reassembles_however_it_is_split(
        frames in response(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let bytes = encode_all(&frames);
        let (read, refused, partial) = read_response(&split(&bytes, &cuts))?;
        prop_assert!(refused.is_none(), "{:?}", refused);
        prop_assert!(!partial);
        prop_assert_eq!(read, frames);
    }

    #[test]
    fn noise_is_decoded_or_refused_by_name(
        noise in prop::collection::vec(any::<u8>(), 0..2048),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        decode_request(&noise)?;
        read_response(&split(&noise, &cuts))?;
    }

    /// Noise behind a plausible length, so the CBOR decoder, not the length check, meets it.
    #[test]
    fn noise_in_a_well_framed_message_is_decoded_or_refused_by_name(
        noise in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let framed = [&(noise.len() as u32).to_be_bytes()[..], &noise].concat();
        decode_request(&framed)?;
        read_response(&[&framed])?;
    }

    #[test]
    fn a_damaged_request_is_decoded_or_refused_by_name(
        request in request(),
        donor in request(),
        mutations in prop::collection::vec(mutation(), 1..5),
    ) {
        let damaged = mutate(wire::encode(&request), &wire::encode(&donor), &mutations);
        decode_request(&damaged)?;
    }

    #[test]
    fn a_damaged_response_is_decoded_or_refused_by_name(
        frames in response(),
        donor in response(),
        mutations in prop::collection::vec(mutation(), 1..5),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let damaged = mutate(encode_all(&frames), &encode_all(&donor), &mutations);
        let (read, _, _) = read_response(&split(&damaged, &cuts))?;
        prop_assert!(read.len() <= damaged.len() / 4, "more frames than the bytes can hold");
    }

    #[test]
    fn a_request_cut_short_is_refused_as_part_way(request in request(), at in any::<usize>()) {
        let bytes = wire::encode(&request);
        let cut = &bytes[..at % bytes.len()];
        let error = wire::decode_one::<Request>(cut, REQUEST).unwrap_err();
        check_refusal(&error, REQUEST)?;
        prop_assert!(error.to_string().contains("part-way"), "{}", error);
    }

    #[test]
    fn a_response_cut_short_keeps_the_whole_frames_and_waits(frames in response(), at in any::<usize>()) {
        let bytes = encode_all(&frames);
        let at = at % bytes.len();
        let (read, refused, partial) = read_response(&[&bytes[..at]])?;
        prop_assert!(refused.is_none());
        let whole: usize = frames[..read.len()].iter().map(|f| wire::encode(f).len()).sum();
        prop_assert_eq!(&read[..], &frames[..read.len()]);
        prop_assert!(whole <= at && at - whole < wire::encode(&frames[read.len()]).len());
        prop_assert_eq!(partial, at > whole);
    }

    /// An announced length over the limit is refused from the four length bytes alone, before
    /// the reader waits for (or holds) the frame.
    #[test]
    fn a_length_over_the_limit_is_refused_before_the_frame_arrives(
        len in (MAX_FRAME as u32 + 1)..=u32::MAX,
        tail in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let bytes = [&len.to_be_bytes()[..], &tail].concat();
        let mut reader = FrameReader::default();
        reader.push(&len.to_be_bytes());
        let error = reader.next::<Frame>(RESPONSE).unwrap_err();
        check_refusal(&error, RESPONSE)?;
        prop_assert!(error.to_string().contains("over the"), "{}", error);
        let error = wire::decode_one::<Request>(&bytes, REQUEST).unwrap_err();
        check_refusal(&error, REQUEST)?;
        prop_assert!(error.to_string().contains("over the"), "{}", error);
    }

    #[test]
    fn a_length_within_the_limit_waits_for_its_frame(len in 0..=MAX_FRAME as u32, have in 0usize..64) {
        let have = have.min(len as usize);
        let mut reader = FrameReader::default();
        reader.push(&len.to_be_bytes());
        reader.push(&vec![0xa0; have]);
        if have < len as usize {
            prop_assert!(reader.next::<Frame>(RESPONSE).unwrap().is_none());
            prop_assert!(reader.has_partial());
        }
    }

    /// A CBOR item inside a small frame that claims an enormous length (bytes, text, an array,
    /// a map) is refused when the frame runs out, not trusted to size an allocation.
    #[test]
    fn a_cbor_length_bigger_than_its_frame_is_refused(
        field in prop::sample::select(&["actors", "pushes", "epoch", "capabilities", "inventory", "surplus"][..]),
        major in prop::sample::select(&[2u8, 3, 4, 5][..]),
        claimed in (1u64 << 20)..=u64::MAX,
        tail in prop::collection::vec(any::<u8>(), 0..32),
    ) {
        let mut cbor = vec![0xa1, 0x60 | field.len() as u8];
        cbor.extend_from_slice(field.as_bytes());
        cbor.push((major << 5) | 27);
        cbor.extend_from_slice(&claimed.to_be_bytes());
        cbor.extend_from_slice(&tail);
        let framed = [&(cbor.len() as u32).to_be_bytes()[..], &cbor].concat();
        let error = wire::decode_one::<Request>(&framed, REQUEST).unwrap_err();
        check_refusal(&error, REQUEST)?;
        prop_assert!(error.to_string().contains("does not decode"), "{}", error);
    }

    #[test]
    fn wire_hashes_are_read_only_at_32_bytes(heads in hashes()) {
        match wire::hashes_from_wire(&heads, "acknowledged heads") {
            Ok(read) => {
                prop_assert!(heads.iter().all(|h| h.len() == 32));
                prop_assert!(read.len() <= heads.len());
            }
            Err(error) => {
                check_refusal(&error, "acknowledged heads")?;
                prop_assert!(heads.iter().any(|h| h.len() != 32));
            }
        }
    }
}

/// Nesting is bounded by the decoder, so a small hostile frame cannot exhaust the stack.
#[test]
fn deeply_nested_cbor_is_refused_without_overflowing_the_stack() {
    let depth = 200_000;
    let mut cbor = vec![0xa1, 0x67];
    cbor.extend_from_slice(b"surplus");
    cbor.extend(std::iter::repeat_n(0x81, depth));
    cbor.push(0x00);
    let framed = [&(cbor.len() as u32).to_be_bytes()[..], &cbor].concat();
    let error = wire::decode_one::<Request>(&framed, REQUEST).unwrap_err();
    assert!(
        matches!(&error, Error::InvalidInput { field, reason } if field == REQUEST && reason.contains("does not decode")),
        "{error}"
    );
    let mut reader = FrameReader::default();
    reader.push(&framed);
    let error = reader.next::<Frame>(RESPONSE).unwrap_err();
    assert!(error.to_string().contains(RESPONSE), "{error}");
}
