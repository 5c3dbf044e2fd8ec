//! The device side of sync: builds each round's request from the store and applies the
//! server's response frame by frame. It does no I/O; `net` (or a test) carries the bytes.
//!
//! A normal sync is one round: the request carries every unacknowledged change and the cursor,
//! the response carries acknowledgements and every log entry after the cursor. More rounds
//! happen only when the server pages a long pull, a push is over the round budget, a server
//! restore calls for an inventory, or diverged documents need Automerge's sync messages.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use automerge::sync;
use serde_bytes::ByteBuf;

use super::wire::{self, AutomergeSync, DocHeads, Frame, FrameReader, Head, Push, Request};
use crate::error::{Error, Result};
use crate::ids::{DocId, PersonId};
use crate::store::{Indexed, Store};

/// Pushes beyond this many bytes wait for the next round, so one cut costs at most this much.
const PUSH_BUDGET: usize = 2 * 1024 * 1024;
/// Received documents are committed in batches: each commit is an fsync.
const APPLY_BATCH_DOCS: usize = 256;
const APPLY_BATCH_BYTES: usize = 2 * 1024 * 1024;
const APPLY_BATCH_TIME: Duration = Duration::from_millis(500);
/// A sync that needs more rounds than this is stopped; the next sync carries on.
const MAX_ROUNDS: u32 = 64;

/// How far a sync has got, for an app to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub rounds: u32,
    pub docs_pushed: usize,
    pub docs_received: usize,
    /// Documents the server refused, with why; they stay pending on this device.
    pub refused: Vec<(String, String)>,
    /// People dropped from this device because they left its scope.
    pub dropped: usize,
    /// The server asked this device to retire (it is being handed in): it takes no new edits,
    /// sends everything the server lacks, and wipes once the server records the retirement.
    pub retiring: bool,
    /// The server recorded the retirement: nothing on this device is unacknowledged, and the
    /// device wipes its store.
    pub retired: bool,
    /// Why the offline lease the server sent was refused, if it was; the lease held before
    /// stays.
    pub lease_refused: Option<String>,
    /// Edits made here offline inside passages a lead has since removed: not applied, sent to
    /// the server for the lead to decide.
    pub held: usize,
    /// Documents erased from this device because the server erased them (removed from a
    /// record, or the person erased).
    pub erased: usize,
}

/// One sync with one server, round by round. Create one per sync; all state that must outlive
/// it is in the store.
#[derive(Debug)]
pub struct SyncClient {
    peer: String,
    progress: Progress,
    round: Option<Round>,
    /// Another round is needed before the sync is complete.
    again: bool,
    started: bool,
    /// Refused this sync: not offered again until the next one.
    refused: HashSet<DocId>,
    /// Documents being reconciled with Automerge sync messages, and their protocol state.
    diverged: HashMap<DocId, sync::State>,
    /// Messages to send next round.
    outbox: Vec<(DocId, Vec<u8>)>,
}

/// One received document: changes to merge, or a document new here with its index rows.
#[derive(Debug)]
enum Received {
    Changes(Vec<u8>),
    Indexed {
        bytes: Vec<u8>,
        heads: Vec<automerge::ChangeHash>,
        rows: Vec<u8>,
    },
}

/// What the current round sent and has received so far.
#[derive(Debug)]
struct Round {
    reader: FrameReader,
    head: Option<Head>,
    ended: bool,
    /// The request told the server this device is ready to be retired.
    retire_ready: bool,
    dropped_reported: Vec<PersonId>,
    /// Held edits this round's request reported.
    held_reported: Vec<i64>,
    /// Erasures this round's request reported.
    erased_reported: Vec<String>,
    batch: Vec<(DocId, Received)>,
    batch_bytes: usize,
    batch_seq: u64,
    batch_started: Instant,
}

impl SyncClient {
    pub fn new(peer: &str) -> Self {
        Self {
            peer: peer.to_string(),
            progress: Progress::default(),
            round: None,
            again: false,
            started: false,
            refused: HashSet::new(),
            diverged: HashMap::new(),
            outbox: Vec::new(),
        }
    }

    pub fn peer(&self) -> &str {
        &self.peer
    }

    pub fn progress(&self) -> &Progress {
        &self.progress
    }

    /// The next round's request body, or None when the sync is complete.
    pub fn next_request(&mut self, store: &mut Store) -> Result<Option<Vec<u8>>> {
        if (self.started && !self.again) || self.progress.retired {
            return Ok(None);
        }
        if self.progress.rounds >= MAX_ROUNDS {
            // Something keeps asking for more; stop here, and the next sync carries on.
            tracing::warn!(rounds = MAX_ROUNDS, "sync stopped after its round limit");
            return Ok(None);
        }
        self.started = true;
        self.again = false;
        let peer = store.peer_state(&self.peer)?;
        let mut request = Request {
            protocol: wire::PROTOCOL,
            min_protocol: wire::MIN_PROTOCOL,
            capabilities: wire::CAPABILITIES.iter().map(|c| c.to_string()).collect(),
            epoch: peer.epoch.clone(),
            cursor: peer.cursor,
            dropped: store
                .unreported_drops(&self.peer)?
                .iter()
                .map(|p| p.to_string())
                .collect(),
            ..Request::default()
        };
        request.erased = store.unreported_erasures(&self.peer)?;
        let held = store.unreported_held(&self.peer)?;
        request.held = held
            .iter()
            .map(|(_, doc, held)| wire::HeldEdit {
                doc: doc.to_string(),
                held: held.clone(),
            })
            .collect();
        if peer.needs_inventory {
            request.inventory = Some(
                store
                    .all_heads()?
                    .into_iter()
                    .map(|(doc, heads)| DocHeads {
                        doc: doc.to_string(),
                        heads: wire::hashes_to_wire(&heads),
                    })
                    .collect(),
            );
        } else {
            self.add_pushes(store, &mut request)?;
        }
        for (doc, message) in self.outbox.drain(..) {
            request.automerge_sync.push(AutomergeSync {
                doc: doc.to_string(),
                message: ByteBuf::from(message),
            });
        }
        if !request.automerge_sync.is_empty() {
            // Reconciling may carry any of this device's changes, from any launch, to a server
            // that lost their actors' registration in a restore.
            request.actors = store
                .own_actors()?
                .into_iter()
                .map(|a| ByteBuf::from(a.to_bytes().to_vec()))
                .collect();
        }
        request.retire_ready = request.inventory.is_none()
            && request.pushes.is_empty()
            && request.automerge_sync.is_empty()
            && self.ready_to_retire(store)?;
        let dropped_reported = request.dropped.iter().map(PersonId::new).collect::<Result<Vec<_>>>()?;
        self.round = Some(Round {
            reader: FrameReader::default(),
            head: None,
            ended: false,
            retire_ready: request.retire_ready,
            dropped_reported,
            held_reported: held.into_iter().map(|(row, _, _)| row).collect(),
            erased_reported: request.erased.clone(),
            batch: Vec::new(),
            batch_bytes: 0,
            batch_seq: 0,
            batch_started: Instant::now(),
        });
        self.progress.rounds += 1;
        Ok(Some(wire::encode(&request)))
    }

    /// Told to retire, and holding nothing the server has not acknowledged: a device never
    /// says it is ready with changes still to send, so its wipe can lose nothing.
    fn ready_to_retire(&self, store: &Store) -> Result<bool> {
        Ok(store.standing()?.retiring && store.pending_docs(&self.peer)?.is_empty())
    }

    fn add_pushes(&mut self, store: &mut Store, request: &mut Request) -> Result<()> {
        let mut actors = HashSet::new();
        let mut size = 0;
        for (doc, acked) in store.pending_docs(&self.peer)? {
            if self.refused.contains(&doc) || self.diverged.contains_key(&doc) {
                continue;
            }
            if size >= PUSH_BUDGET {
                self.again = true;
                break;
            }
            let outgoing = match store.outgoing(&doc, &acked) {
                // Received whole, stored unverified, and damaged (a faulty server): dropped and
                // fetched again, rather than failing every request from now on.
                Err(Error::CorruptDocument { .. }) if store.drop_if_damaged_received(&doc)? => continue,
                outgoing => outgoing?,
            };
            size += outgoing.bytes.len();
            actors.extend(outgoing.actors);
            request.pushes.push(Push {
                doc: doc.to_string(),
                base: wire::hashes_to_wire(&outgoing.base),
                heads: wire::hashes_to_wire(&outgoing.heads),
                bytes: ByteBuf::from(outgoing.bytes),
            });
        }
        request.actors = actors
            .into_iter()
            .map(|a| ByteBuf::from(a.to_bytes().to_vec()))
            .collect();
        Ok(())
    }

    /// Response body bytes as they arrive; complete frames are applied, and committed in
    /// batches.
    pub fn receive(&mut self, store: &mut Store, bytes: &[u8]) -> Result<()> {
        let Some(round) = self.round.as_mut() else {
            return Err(Error::invalid(
                "sync response",
                "bytes arrived with no request outstanding",
            ));
        };
        round.reader.push(bytes);
        while let Some(frame) = match self.round.as_mut() {
            Some(round) => round.reader.next::<Frame>("sync response")?,
            None => None,
        } {
            match frame {
                Frame::Head(head) => self.on_head(store, head)?,
                Frame::Doc(seq, doc, bytes) => self.on_doc(store, seq, doc, Received::Changes(bytes.into_vec()))?,
                Frame::Indexed(seq, doc, bytes, heads, rows) => {
                    let received = Received::Indexed {
                        bytes: bytes.into_vec(),
                        heads: wire::hashes_from_wire(&heads, "sync response")?,
                        rows: rows.into_vec(),
                    };
                    self.on_doc(store, seq, doc, received)?
                }
                Frame::Replaced(seq, doc, replaced) => self.on_replaced(store, seq, doc, *replaced)?,
                Frame::End(end) => self.on_end(store, end)?,
            }
        }
        let due = self.round.as_ref().is_some_and(|r| {
            r.batch.len() >= APPLY_BATCH_DOCS
                || r.batch_bytes >= APPLY_BATCH_BYTES
                || (!r.batch.is_empty() && r.batch_started.elapsed() >= APPLY_BATCH_TIME)
        });
        if due {
            self.flush(store, None)?;
        }
        Ok(())
    }

    /// The response body ended; an error if it ended part-way (what was committed stays).
    pub fn end_response(&mut self, store: &mut Store) -> Result<()> {
        let ended = self.round.as_ref().is_some_and(|r| r.ended && !r.reader.has_partial());
        if !ended {
            self.keep_received(store)?;
            self.abandon_round();
            return Err(Error::Network("the sync response ended part-way".into()));
        }
        self.round = None;
        Ok(())
    }

    /// Commits the whole frames received so far with the cursor they reach, so a round cut
    /// part-way (or stopped at a deadline) keeps them and the next sync asks only for the rest.
    pub fn keep_received(&mut self, store: &mut Store) -> Result<()> {
        self.flush(store, None)
    }

    /// The round failed part-way: what was committed stays, the rest is forgotten and the next
    /// request asks for it again.
    pub fn abandon_round(&mut self) {
        self.round = None;
        // The retry rebuilds its request from the store.
        self.again = true;
        self.started = true;
    }

    fn on_head(&mut self, store: &mut Store, head: Head) -> Result<()> {
        let round = self
            .round
            .as_mut()
            .ok_or_else(|| protocol_error("a head outside a round"))?;
        if round.head.is_some() {
            return Err(protocol_error("a second head frame"));
        }
        if !(wire::MIN_PROTOCOL..=wire::PROTOCOL).contains(&head.protocol) {
            return Err(protocol_error(&format!(
                "the server chose protocol {}, which this app does not speak",
                head.protocol
            )));
        }
        let reported = std::mem::take(&mut round.dropped_reported);
        let held_reported = std::mem::take(&mut round.held_reported);
        let erased_reported = std::mem::take(&mut round.erased_reported);
        let offered_retirement = round.retire_ready;
        round.head = Some(head.clone());
        store.drops_reported(&self.peer, &reported)?;
        store.held_reported(&held_reported)?;
        store.erasures_reported(&self.peer, &erased_reported)?;
        if let Some(lease) = &head.lease
            && let Err(e) = store.accept_lease(lease)
        {
            tracing::warn!(error = %e, "the server's offline lease was refused");
            self.progress.lease_refused = Some(e.to_string());
        }
        if head.retire {
            if !self.progress.retiring && !store.standing()?.retiring {
                tracing::info!("the server asked this device to retire");
                store.start_retiring()?;
            }
            self.progress.retiring = true;
        }
        // Only an answer to this device's own readiness counts: it said so with nothing pending.
        self.progress.retired |= head.retired && offered_retirement;
        if head.epoch_changed {
            store.start_inventory(&self.peer, &head.epoch)?;
            self.diverged.clear();
            self.again = true;
            return Ok(());
        }
        let acks = head
            .acks
            .iter()
            .map(|a| Ok((doc_id(&a.doc)?, wire::hashes_from_wire(&a.heads, "acknowledged heads")?)))
            .collect::<Result<Vec<_>>>()?;
        self.progress.docs_pushed += acks.len();
        store.record_acks(&self.peer, &acks)?;
        for refusal in &head.refused {
            tracing::warn!(doc = %refusal.doc, reason = %refusal.reason, "the server refused a push");
            self.refused.insert(doc_id(&refusal.doc)?);
            self.progress
                .refused
                .push((refusal.doc.clone(), refusal.reason.clone()));
        }
        // Erased first: nothing below may reach for what is erased.
        if !head.erase_docs.is_empty() || !head.erase_people.is_empty() {
            let docs = head.erase_docs.iter().map(|d| doc_id(d)).collect::<Result<Vec<_>>>()?;
            let people = head
                .erase_people
                .iter()
                .map(|p| doc_id(p))
                .collect::<Result<Vec<_>>>()?;
            for doc in docs.iter().chain(&people) {
                self.diverged.remove(doc);
                self.outbox.retain(|(d, _)| d != doc);
            }
            self.progress.erased += store.erase(&self.peer, &docs, &people)?;
            // The server hears of it next round.
            self.again = true;
        }
        for doc in &head.diverged {
            let doc = doc_id(doc)?;
            store.forget_ack(&self.peer, &doc)?;
            self.diverged.entry(doc).or_default();
        }
        for message in &head.automerge_sync {
            let doc = doc_id(&message.doc)?;
            let state = self.diverged.entry(doc.clone()).or_default();
            store.receive_automerge_sync(&doc, state, &message.message)?;
        }
        // Each diverged document answers what it just heard; finished ones fall silent.
        let mut finished = Vec::new();
        for (doc, state) in &mut self.diverged {
            match store.automerge_sync_message(doc, state) {
                Ok(Some(message)) => self.outbox.push((doc.clone(), message)),
                // Gone from this store meanwhile (erased): nothing left to reconcile.
                Ok(None) | Err(Error::NotFound(_)) => finished.push(doc.clone()),
                Err(e) => return Err(e),
            }
        }
        for doc in finished {
            self.diverged.remove(&doc);
        }
        if !self.outbox.is_empty() {
            self.again = true;
        }
        for person in &head.drop {
            if store.drop_person(&self.peer, &doc_id(person)?)? {
                self.progress.dropped += 1;
            }
        }
        if head.retire && !head.retired && !offered_retirement && self.ready_to_retire(store)? {
            // Everything is acknowledged now: one more round tells the server so.
            self.again = true;
        }
        Ok(())
    }

    /// A document frame must come inside a round, after its head, in log order.
    fn check_order(&self, seq: u64) -> Result<()> {
        let round = self
            .round
            .as_ref()
            .ok_or_else(|| protocol_error("a document outside a round"))?;
        if round.head.is_none() {
            return Err(protocol_error("a document before the head"));
        }
        if seq < round.batch_seq {
            return Err(protocol_error("documents out of log order"));
        }
        Ok(())
    }

    fn on_doc(&mut self, store: &mut Store, seq: u64, doc: String, received: Received) -> Result<()> {
        self.check_order(seq)?;
        let doc = doc_id(&doc)?;
        if self
            .round
            .as_ref()
            .is_some_and(|r| r.batch.iter().any(|(d, _)| *d == doc))
        {
            // One document twice in a batch: commit what came before it first.
            self.flush(store, None)?;
        }
        let round = self
            .round
            .as_mut()
            .ok_or_else(|| protocol_error("a document outside a round"))?;
        if round.batch.is_empty() {
            round.batch_started = Instant::now();
        }
        round.batch_bytes += match &received {
            Received::Changes(bytes) | Received::Indexed { bytes, .. } => bytes.len(),
        };
        round.batch_seq = seq;
        round.batch.push((doc, received));
        Ok(())
    }

    /// A document a lead redacted replaces this device's copy at once (after what arrived
    /// before it), so nothing later in the response merges into the old one.
    fn on_replaced(&mut self, store: &mut Store, seq: u64, doc: String, replaced: wire::Replaced) -> Result<()> {
        self.check_order(seq)?;
        self.flush(store, None)?;
        let doc = doc_id(&doc)?;
        let heads = wire::hashes_from_wire(&replaced.heads, "sync response")?;
        let held = store.apply_replacement(&self.peer, &doc, &replaced.bytes, &heads, &replaced.redaction)?;
        // Whatever this round was doing with the old copy no longer applies.
        self.diverged.remove(&doc);
        self.refused.remove(&doc);
        self.outbox.retain(|(d, _)| *d != doc);
        self.progress.docs_received += 1;
        self.progress.held += held.len();
        if let Some(round) = self.round.as_mut() {
            round.batch_seq = seq;
        }
        // The edits carried onto the new document go to the server next round.
        self.again = true;
        Ok(())
    }

    fn on_end(&mut self, store: &mut Store, end: wire::End) -> Result<()> {
        let epoch = self
            .round
            .as_ref()
            .and_then(|r| r.head.as_ref())
            .map(|h| (h.epoch.clone(), h.epoch_changed))
            .ok_or_else(|| protocol_error("an end before the head"))?;
        // After an epoch change the cursor is set by the inventory round, not this one.
        let cursor = (!epoch.1).then_some(end.cursor);
        self.flush(store, cursor.map(|c| (epoch.0.clone(), c)))?;
        if let Some(round) = self.round.as_mut() {
            round.ended = true;
        }
        if end.more {
            self.again = true;
        }
        Ok(())
    }

    /// Commits the received batch with the cursor it reaches.
    fn flush(&mut self, store: &mut Store, end: Option<(String, u64)>) -> Result<()> {
        let Some(round) = self.round.as_mut() else {
            return Ok(());
        };
        let epoch = round.head.as_ref().map(|h| h.epoch.clone()).unwrap_or_default();
        let batch = std::mem::take(&mut round.batch);
        round.batch_bytes = 0;
        // Frames arrive in the order of each document's first new entry, so once a frame is
        // applied every entry up to its seq is.
        let cursor = match &end {
            Some((epoch, cursor)) => Some((epoch.as_str(), *cursor)),
            None if !batch.is_empty() && !round.head.as_ref().is_some_and(|h| h.epoch_changed) => {
                Some((epoch.as_str(), round.batch_seq))
            }
            None => None,
        };
        if batch.is_empty() && cursor.is_none() {
            return Ok(());
        }
        let mut changes: Vec<(DocId, &[u8])> = Vec::new();
        let mut indexed = Vec::new();
        for (doc, received) in &batch {
            match received {
                Received::Changes(bytes) => changes.push((doc.clone(), bytes.as_slice())),
                Received::Indexed { bytes, heads, rows } => indexed.push(Indexed {
                    doc: doc.clone(),
                    bytes: bytes.clone(),
                    heads: heads.clone(),
                    rows: rows.clone(),
                }),
            }
        }
        // The cursor is written with the last of the two writes.
        let indexed_cursor = if changes.is_empty() { cursor } else { None };
        if !indexed.is_empty() || changes.is_empty() {
            store.apply_indexed(&self.peer, &indexed, indexed_cursor)?;
        }
        let missing = if changes.is_empty() {
            Vec::new()
        } else {
            store.apply_pulled(&self.peer, &changes, cursor)?
        };
        self.progress.docs_received += batch.len();
        for doc in missing {
            // The server sent changes on top of something this copy lacks.
            store.forget_ack(&self.peer, &doc)?;
            self.diverged.entry(doc.clone()).or_default();
            let state = self.diverged.entry(doc.clone()).or_default();
            if let Some(message) = store.automerge_sync_message(&doc, state)? {
                self.outbox.push((doc, message));
                self.again = true;
            }
        }
        Ok(())
    }
}

fn doc_id(id: &str) -> Result<DocId> {
    DocId::new(id).map_err(|e| Error::invalid("sync response", format!("document id: {e}")))
}

fn protocol_error(what: &str) -> Error {
    Error::invalid("sync response", what)
}
