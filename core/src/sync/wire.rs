//! The bytes devices and the server exchange. One sync round is one HTTP request and its
//! response. The request is a single frame; the response is a stream of frames (a head, one
//! frame per document entry in server-log order, an end), so a device applies and commits what
//! has arrived and a cut connection costs only what had not.
//!
//! A frame is a 4-byte big-endian length and a CBOR value. CBOR because it is self-describing:
//! fields a newer peer adds are skipped by an older one, which is what lets old phones keep
//! syncing with a newer server inside one protocol version.

use automerge::ChangeHash;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::error::{Error, Result};

/// The protocol version this build speaks best.
pub const PROTOCOL: u32 = 1;
/// The oldest version this build still speaks.
pub const MIN_PROTOCOL: u32 = 1;
/// What this build can do beyond the base protocol; each side uses the intersection.
pub const CAPABILITIES: &[&str] = &[CAP_AUTOMERGE_SYNC, CAP_DROP, CAP_INDEX, CAP_INDEX_DEFLATE, CAP_FORGET];
/// Divergent documents are reconciled with Automerge's own sync messages.
pub const CAP_AUTOMERGE_SYNC: &str = "automerge-sync";
/// The server may tell a device to drop people who left its scope.
pub const CAP_DROP: &str = "drop";
/// Documents a device lacks may come with their index rows (`Frame::Indexed`), in the index
/// format this build writes; the version is part of the name.
pub const CAP_INDEX: &str = "index-1";
/// The same rows zlib-compressed (index-2): about a third of the bytes, since the full-text rows
/// repeat each visit's text. A device that offers it reads both formats.
pub const CAP_INDEX_DEFLATE: &str = "index-2";

/// The server may replace a document whose text a lead redacted (`Frame::Replaced`), and the
/// device reports offline edits it could not carry onto the new one (`Request::held`).
pub const CAP_FORGET: &str = "forget-1";

/// No frame may be larger; a peer that announces one is refused before anything is allocated.
pub const MAX_FRAME: usize = 32 * 1024 * 1024;

/// Path of the sync endpoint; the version in it is the HTTP API's, not the protocol's.
pub const SYNC_PATH: &str = "/v1/sync";
pub const ENROL_PATH: &str = "/v1/enrol";

/// A change hash on the wire: its 32 bytes.
pub type WireHash = ByteBuf;

/// Everything a device says in one round.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The range of protocol versions the device speaks.
    pub protocol: u32,
    pub min_protocol: u32,
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// The server log the cursor refers to; a server restored from a backup has a new one.
    #[serde(default)]
    pub epoch: Option<String>,
    /// The device has applied every log entry up to here.
    #[serde(default)]
    pub cursor: u64,
    /// Actors this device created and uses in `pushes`, registered to it on first use.
    #[serde(default)]
    pub actors: Vec<ByteBuf>,
    /// People the device dropped when told to, since the server last heard.
    #[serde(default)]
    pub dropped: Vec<String>,
    /// Every document the device holds with its heads, sent only after the server's epoch
    /// changed, so the server can work out what each side lacks.
    #[serde(default)]
    pub inventory: Option<Vec<DocHeads>>,
    #[serde(default)]
    pub pushes: Vec<Push>,
    /// Automerge sync messages for documents whose two copies diverged.
    #[serde(default)]
    pub automerge_sync: Vec<AutomergeSync>,
    /// The device was told to retire and holds nothing the server has not acknowledged: the
    /// server may now mark it retired, and the device wipes once it hears so (`Head::retired`).
    #[serde(default)]
    pub retire_ready: bool,
    /// Edits this device made offline inside passages a lead has since removed: not applied,
    /// reported for the lead to decide.
    #[serde(default)]
    pub held: Vec<HeldEdit>,
    /// Documents and people this device erased when told to (`Head::erase_docs`,
    /// `Head::erase_people`), since the server last heard.
    #[serde(default)]
    pub erased: Vec<String>,
}

/// An offline edit inside a removed passage (`forget::Held`), for one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldEdit {
    pub doc: String,
    pub held: crate::forget::Held,
}

/// Changes a device made to one document since the server acknowledged `base`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Push {
    pub doc: String,
    /// Heads the server acknowledged before; empty for a document new to the server.
    #[serde(default)]
    pub base: Vec<WireHash>,
    /// The device's heads once these changes are applied.
    pub heads: Vec<WireHash>,
    /// Automerge change chunks, or a whole saved document when `base` is empty.
    pub bytes: ByteBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocHeads {
    pub doc: String,
    pub heads: Vec<WireHash>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutomergeSync {
    pub doc: String,
    pub message: ByteBuf,
}

/// One frame of a response.
// The head is the largest frame and there is one per response; a reader holds one frame at a
// time, and the document frames the server gathers are small beside the bytes they carry.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Frame {
    Head(Head),
    /// Bytes for one document: `Doc(seq, doc id, bytes)`. A tuple keeps each frame small, since
    /// a fresh device receives thousands of them.
    Doc(u64, String, ByteBuf),
    /// A document the device lacks, whole, with its heads and index rows:
    /// `Indexed(seq, doc id, bytes, heads, rows)`. Only to devices that offered `CAP_INDEX`.
    Indexed(u64, String, ByteBuf, Vec<WireHash>, ByteBuf),
    /// A document a lead redacted, to replace this device's copy history and all:
    /// `Replaced(seq, doc id, replacement)`. Only to devices that offered `CAP_FORGET`.
    Replaced(u64, String, Box<Replaced>),
    End(End),
}

/// The new document whole, and what the device needs to carry its own edits onto it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replaced {
    pub bytes: ByteBuf,
    pub heads: Vec<WireHash>,
    pub redaction: crate::forget::Redaction,
}

/// What the server decided about the request, before any document bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Head {
    pub protocol: u32,
    #[serde(default)]
    pub capabilities: Vec<String>,
    pub epoch: String,
    /// The request's cursor belonged to another epoch: send an inventory next round.
    #[serde(default)]
    pub epoch_changed: bool,
    /// Pushes the server now holds, with its heads for each document after merging them.
    #[serde(default)]
    pub acks: Vec<DocHeads>,
    /// Pushes refused, with why. Nothing of a refused push was stored.
    #[serde(default)]
    pub refused: Vec<Refusal>,
    /// Documents whose copies diverged: reconcile them with Automerge sync messages.
    #[serde(default)]
    pub diverged: Vec<String>,
    #[serde(default)]
    pub automerge_sync: Vec<AutomergeSync>,
    /// People who left the device's scope: drop their documents once nothing is unacknowledged.
    #[serde(default)]
    pub drop: Vec<String>,
    /// Documents erased (removed from a record by a lead): erase them now, whatever is
    /// unacknowledged. What this request pushed of them arrived and was erased on arrival.
    #[serde(default)]
    pub erase_docs: Vec<String>,
    /// People erased (on request, or past their team's retention): erase all their documents,
    /// as `erase_docs`.
    #[serde(default)]
    pub erase_people: Vec<String>,
    /// The device is being retired (handed in): it refuses new edits, sends everything it holds
    /// that the server lacks, says `Request::retire_ready`, and wipes once `retired` comes back.
    #[serde(default)]
    pub retire: bool,
    /// The server recorded the retirement the device said it was ready for; its credential is
    /// refused from now on, and it wipes its store.
    #[serde(default)]
    pub retired: bool,
    /// How long the device may keep showing records without reaching the server again.
    #[serde(default)]
    pub lease: Option<Lease>,
}

/// An offline lease: the server's signed word that `device` may keep its store unlocked until
/// `expires_at` (unix seconds), given at `issued_at` by its clock. Signed with Ed25519 over
/// `Lease::message`; `key` names the signing key, which the device checks against the one it
/// pinned at enrolment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub device: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub key: ByteBuf,
    pub signature: ByteBuf,
}

impl Lease {
    /// The bytes signed: a fixed label, the device id and both times, so a lease cannot be
    /// moved to another device or taken for anything else the key signs.
    pub fn message(device: &str, issued_at: i64, expires_at: i64) -> Vec<u8> {
        let mut out = Vec::with_capacity(LEASE_LABEL.len() + device.len() + 17);
        out.extend_from_slice(LEASE_LABEL);
        out.extend_from_slice(device.as_bytes());
        out.push(0);
        out.extend_from_slice(&issued_at.to_be_bytes());
        out.extend_from_slice(&expires_at.to_be_bytes());
        out
    }
}

/// Leads every lease message; the audit trail's checkpoints use another label.
const LEASE_LABEL: &[u8] = b"outpost offline lease v1\0";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Refusal {
    pub doc: String,
    pub reason: String,
}

/// The last frame: the device may now record `cursor`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct End {
    pub cursor: u64,
    /// The server stopped early to bound the response; ask again for the rest.
    #[serde(default)]
    pub more: bool,
}

/// Why a request was refused outright, sent as the JSON body of an error status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    pub code: String,
    pub message: String,
}

/// Enrolment: a one-time code in, a device credential out (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrolRequest {
    pub code: String,
    /// What the device calls itself, for the admin's device list.
    pub label: String,
    /// The id this device had before, when it enrols again because the server lost it (a
    /// restore from an older backup); its unsynced changes name that id as their author.
    #[serde(default)]
    pub device: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnrolResponse {
    pub worker: String,
    pub device: String,
    pub team: String,
    /// Sent once; the server keeps only its hash.
    pub credential: String,
    /// "worker" or "lead": what the device may decide (an older server sends none: a worker).
    #[serde(default)]
    pub role: Option<String>,
    /// The server's Ed25519 public key, which signs offline leases; the device pins it. An
    /// older server sends none, and the device pins the key of the first lease it receives.
    #[serde(default)]
    pub server_key: Option<ByteBuf>,
    /// The device's first offline lease.
    #[serde(default)]
    pub lease: Option<Lease>,
}

/// Encodes one frame: length then CBOR.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut body = Vec::new();
    // Writing CBOR into a Vec cannot fail for these types.
    if ciborium::into_writer(value, &mut body).is_err() {
        body.clear();
    }
    let mut out = Vec::with_capacity(body.len() + 4);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Decodes a body that must be exactly one frame.
pub fn decode_one<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T> {
    let mut reader = FrameReader::default();
    reader.push(bytes);
    let value = reader.next(what)?.ok_or_else(|| truncated(what))?;
    if !reader.buffer.is_empty() {
        return Err(Error::invalid(
            what,
            format!("{} bytes after the frame", reader.buffer.len()),
        ));
    }
    Ok(value)
}

fn truncated(what: &str) -> Error {
    Error::invalid(what, "the message ends part-way through a frame")
}

/// Splits a byte stream into frames as bytes arrive.
#[derive(Debug, Default)]
pub struct FrameReader {
    buffer: Vec<u8>,
}

impl FrameReader {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete frame, or None until more bytes arrive.
    pub fn next<T: for<'de> Deserialize<'de>>(&mut self, what: &str) -> Result<Option<T>> {
        let Some(len) = self.buffer.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len > MAX_FRAME {
            return Err(Error::invalid(
                what,
                format!("a frame of {len} bytes is over the {MAX_FRAME}-byte limit"),
            ));
        }
        if self.buffer.len() < 4 + len {
            return Ok(None);
        }
        let mut body = &self.buffer[4..4 + len];
        let value = ciborium::from_reader(&mut body)
            .map_err(|e| Error::invalid(what, format!("a frame does not decode: {e}")))
            .and_then(|value| match body.len() {
                0 => Ok(value),
                extra => Err(Error::invalid(
                    what,
                    format!("{extra} bytes after the value in a frame"),
                )),
            });
        self.buffer.drain(..4 + len);
        value.map(Some)
    }

    /// True when bytes of an unfinished frame remain.
    pub fn has_partial(&self) -> bool {
        !self.buffer.is_empty()
    }
}

pub fn hashes_to_wire(heads: &[ChangeHash]) -> Vec<WireHash> {
    heads.iter().map(|h| ByteBuf::from(h.0.to_vec())).collect()
}

pub fn hashes_from_wire(heads: &[WireHash], what: &str) -> Result<Vec<ChangeHash>> {
    let mut out: Vec<ChangeHash> = heads
        .iter()
        .map(|h| {
            ChangeHash::try_from(h.as_slice())
                .map_err(|_| Error::invalid(what, format!("a change hash of {} bytes, not 32", h.len())))
        })
        .collect::<Result<_>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

/// The highest protocol both sides speak, if any.
pub fn negotiate(their_min: u32, their_max: u32) -> Option<u32> {
    let version = their_max.min(PROTOCOL);
    (version >= their_min.max(MIN_PROTOCOL)).then_some(version)
}

/// Capabilities both sides have, in this build's order.
pub fn common_capabilities(theirs: &[String]) -> Vec<String> {
    CAPABILITIES
        .iter()
        .filter(|c| theirs.iter().any(|t| t == *c))
        .map(|c| c.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_anywhere_reassemble() {
        let frames = [
            encode(&Frame::Head(Head {
                epoch: "e1".into(),
                ..Head::default()
            })),
            encode(&Frame::Doc(7, "doc-1".into(), ByteBuf::from(vec![1, 2, 3]))),
            encode(&Frame::End(End { cursor: 7, more: false })),
        ]
        .concat();
        for cut in 0..frames.len() {
            let mut reader = FrameReader::default();
            let mut got = Vec::new();
            for part in [&frames[..cut], &frames[cut..]] {
                reader.push(part);
                while let Some(frame) = reader.next::<Frame>("response").unwrap() {
                    got.push(frame);
                }
            }
            assert_eq!(got.len(), 3, "cut at {cut}");
            assert_eq!(got[1], Frame::Doc(7, "doc-1".into(), ByteBuf::from(vec![1, 2, 3])));
            assert!(!reader.has_partial());
        }
    }

    #[test]
    fn oversized_and_garbage_frames_are_refused_by_name() {
        let mut reader = FrameReader::default();
        reader.push(&(u32::MAX).to_be_bytes());
        let err = reader.next::<Frame>("response").unwrap_err().to_string();
        assert!(err.contains("over the"), "{err}");

        let mut garbage = 5u32.to_be_bytes().to_vec();
        garbage.extend_from_slice(&[0xff, 0x00, 0x13, 0x37, 0x42]);
        let err = decode_one::<Request>(&garbage, "sync request").unwrap_err().to_string();
        assert!(err.contains("sync request") && err.contains("does not decode"), "{err}");

        let mut padded = encode(&Request::default());
        padded.extend_from_slice(&[0xff, 0xff, 0x13]);
        let len = (padded.len() - 4) as u32;
        padded[..4].copy_from_slice(&len.to_be_bytes());
        let err = decode_one::<Request>(&padded, "sync request").unwrap_err().to_string();
        assert!(err.contains("3 bytes after the value"), "{err}");

        let whole = encode(&Request::default());
        let err = decode_one::<Request>(&whole[..whole.len() - 1], "sync request").unwrap_err();
        assert!(err.to_string().contains("part-way"), "{err}");
    }

    #[test]
    fn a_newer_peer_s_extra_fields_are_ignored() {
        #[derive(Serialize)]
        struct FutureEnd {
            cursor: u64,
            more: bool,
            compression: &'static str,
        }
        let bytes = encode(&FutureEnd {
            cursor: 9,
            more: true,
            compression: "zstd",
        });
        assert_eq!(decode_one::<End>(&bytes, "end").unwrap(), End { cursor: 9, more: true });
    }

    #[test]
    fn versions_negotiate_to_the_highest_shared() {
        assert_eq!(negotiate(1, 1), Some(1));
        assert_eq!(negotiate(1, 5), Some(PROTOCOL));
        assert_eq!(negotiate(PROTOCOL + 1, PROTOCOL + 3), None);
        assert_eq!(
            common_capabilities(&["drop".into(), "teleport".into()]),
            vec!["drop".to_string()]
        );
    }
}
