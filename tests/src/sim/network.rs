//! The simulated network between one device and the server: which fault, if any, befalls each
//! request and each answer, the messages it holds back to deliver out of order, and the faults
//! counted over a run.

use std::collections::BTreeSet;

use outpost_core::sync::wire::{self, Frame, FrameReader, Head};
use outpost_core::{ChangeHash, DocId};

use super::workload::DocRef;

/// Faults injected, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Devices cut off for a stretch, and the requests and answers lost to it.
    pub partitions: usize,
    pub partitioned_requests: usize,
    pub partitioned_responses: usize,
    /// Requests lost before the server saw them.
    pub requests_dropped: usize,
    /// Requests held back, and (later) delivered after newer ones from the same device.
    pub requests_delayed: usize,
    pub late_requests_delivered: usize,
    /// Requests the server received twice.
    pub requests_duplicated: usize,
    /// Answers lost after the server stored the request's changes.
    pub responses_dropped: usize,
    /// Answers cut part-way.
    pub responses_cut: usize,
    /// Answers held back, and old answers delivered in place of a newer request's.
    pub responses_held: usize,
    pub stale_responses: usize,
}

impl Faults {
    /// Each kind with its count, for reports and for checking that every kind happened.
    pub fn kinds(&self) -> [(&'static str, usize); 11] {
        [
            ("partitions", self.partitions),
            ("requests lost to a partition", self.partitioned_requests),
            ("answers lost to a partition", self.partitioned_responses),
            ("requests dropped", self.requests_dropped),
            ("requests delayed", self.requests_delayed),
            ("late requests delivered (reordered)", self.late_requests_delivered),
            ("requests duplicated", self.requests_duplicated),
            ("answers dropped after the server stored", self.responses_dropped),
            ("answers cut part-way", self.responses_cut),
            ("answers held back", self.responses_held),
            ("stale answers delivered (reordered)", self.stale_responses),
        ]
    }

    pub fn total(&self) -> usize {
        self.kinds().iter().map(|(_, n)| n).sum()
    }

    pub fn add(&mut self, other: &Faults) {
        self.partitions += other.partitions;
        self.partitioned_requests += other.partitioned_requests;
        self.partitioned_responses += other.partitioned_responses;
        self.requests_dropped += other.requests_dropped;
        self.requests_delayed += other.requests_delayed;
        self.late_requests_delivered += other.late_requests_delivered;
        self.requests_duplicated += other.requests_duplicated;
        self.responses_dropped += other.responses_dropped;
        self.responses_cut += other.responses_cut;
        self.responses_held += other.responses_held;
        self.stale_responses += other.stale_responses;
    }
}

impl std::fmt::Display for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (kind, count) in self.kinds() {
            writeln!(f, "  {count:>9}  {kind}")?;
        }
        write!(f, "  {:>9}  in all", self.total())
    }
}

/// What the network holds for one device.
#[derive(Debug, Default)]
pub(super) struct Link {
    /// Cut off until this step.
    pub partitioned_until: usize,
    /// Requests on their way to the server, to arrive after newer ones.
    pub late_requests: Vec<Vec<u8>>,
    /// Answers on their way to the device, to arrive in place of newer ones.
    pub late_responses: Vec<Delivery>,
}

impl Link {
    pub fn partitioned(&self, step: usize) -> bool {
        step < self.partitioned_until
    }
}

/// An answer on its way, with the documents the server held when it wrote it (all of which
/// the device holds once the answer arrives whole).
#[derive(Debug, Clone)]
pub(super) struct Delivery {
    pub body: Vec<u8>,
    pub server_held: BTreeSet<DocRef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RequestFault {
    None,
    Partitioned,
    Dropped,
    Delayed,
    Duplicated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ResponseFault {
    None,
    Partitioned,
    Dropped,
    Held,
    Cut,
    Stale,
}

/// Draws 0 and 1 decide a request's fate: a fault with chance `p`, of one of three kinds.
pub(super) fn request_fault(partitioned: bool, p: f64, draws: &[f64]) -> RequestFault {
    if partitioned {
        RequestFault::Partitioned
    } else if draws[0] >= p {
        RequestFault::None
    } else if draws[1] < 1.0 / 3.0 {
        RequestFault::Dropped
    } else if draws[1] < 2.0 / 3.0 {
        RequestFault::Delayed
    } else {
        RequestFault::Duplicated
    }
}

/// Draws 0 to 2 decide an answer's fate: an old answer held back arrives instead, often; or a
/// fault with chance `p`, of one of three kinds.
pub(super) fn response_fault(partitioned: bool, stale_waiting: bool, p: f64, draws: &[f64]) -> ResponseFault {
    if partitioned {
        ResponseFault::Partitioned
    } else if stale_waiting && draws[2] < 0.5 {
        ResponseFault::Stale
    } else if draws[0] >= p {
        ResponseFault::None
    } else if draws[1] < 1.0 / 3.0 {
        ResponseFault::Dropped
    } else if draws[1] < 2.0 / 3.0 {
        ResponseFault::Held
    } else {
        ResponseFault::Cut
    }
}

/// The head frame of an answer, read the way the device reads it.
pub(super) fn head_of(body: &[u8]) -> Option<Head> {
    let mut reader = FrameReader::default();
    reader.push(body);
    match reader.next::<Frame>("sync response") {
        Ok(Some(Frame::Head(head))) => Some(head),
        _ => None,
    }
}

/// The acknowledgements in whatever whole head frame `bytes` (all or part of an answer) holds:
/// once the device has read them, the server must keep those changes.
pub(super) fn acks_in(bytes: &[u8]) -> Vec<(DocId, Vec<ChangeHash>)> {
    let Some(head) = head_of(bytes) else {
        return Vec::new();
    };
    head.acks
        .iter()
        .filter_map(|ack| {
            let doc = DocId::new(ack.doc.as_str()).ok()?;
            let heads = wire::hashes_from_wire(&ack.heads, "acknowledged heads").ok()?;
            Some((doc, heads))
        })
        .collect()
}
