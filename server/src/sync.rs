//! The sync endpoint. One request is one round: the device's pushes are checked (scope, author,
//! actor) and stored with the log entries they produce in one transaction, then everything
//! after the device's cursor that it may see is streamed back as stored bytes.

mod check;
mod erasure;
mod forget;
mod lifecycle;
mod locks;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use automerge::sync::{self as am_sync, SyncDoc};
use automerge::{ActorId, AutoCommit, ChangeHash};
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Router, http::StatusCode};
use outpost_core::sync::Listing;
use outpost_core::sync::wire::{self, AutomergeSync, DocHeads, End, Frame, Head, Refusal, Request};
use outpost_core::{DeviceId, DocId, DocType, PersonId, WorkerId};
use serde_bytes::ByteBuf;

use crate::AppState;
use crate::access::ClientAddr;
use crate::alerts::{Alerts, SafeguardingAlert};
use crate::auth::AuthDevice;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::storage::{AuditEntry, Device, DocWrite, Outgoing, PersonScope, Pull, Storage, SyncWrite};
use check::{Accepted, Checker};
use erasure::Arrivals;
use locks::MergeLocks;

/// The largest request body accepted; a day's work is far below it.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;
/// The largest document a device may push.
pub const MAX_DOCUMENT_BYTES: usize = 8 * 1024 * 1024;
/// The deepest a value may sit below a document's root. Outpost's records nest a few levels;
/// past this a push is refused, so no reader has to follow an unbounded chain of objects.
pub const MAX_DEPTH: usize = 64;
/// A response stops adding documents past this and tells the device to ask for more.
const RESPONSE_BUDGET: usize = 8 * 1024 * 1024;
/// How many times a sync merges again when another server process wrote one of its documents
/// at the same moment, before answering "busy, try again".
const MERGE_ATTEMPTS: usize = 5;

/// What one merge of a request stored, and what the rest of the round needs of it.
struct Merged {
    scope: HashSet<PersonId>,
    held: HashSet<PersonId>,
    dropped: Vec<PersonId>,
    write: SyncWrite,
    seqs: Vec<u64>,
    /// What an inventory settled that the device lacks.
    resent: Option<Vec<Outgoing>>,
}

pub fn router() -> Router<AppState> {
    // The limit is applied below, so an oversized request is answered like every other refusal.
    Router::new()
        .route(wire::SYNC_PATH, post(sync))
        .layer(DefaultBodyLimit::disable())
}

async fn sync(
    State(state): State<AppState>,
    AuthDevice(device): AuthDevice,
    ClientAddr(from): ClientAddr,
    body: Body,
) -> Result<Response> {
    // Before the body is read: a device flooding the server costs it as little as possible.
    state.limits.sync.check(&device.device)?;
    let body = axum::body::to_bytes(body, MAX_REQUEST_BYTES).await.map_err(|e| {
        let cause = e.into_inner();
        if cause.is::<http_body_util::LengthLimitError>() {
            Error::TooLarge {
                what: "the sync request".into(),
                limit: MAX_REQUEST_BYTES,
            }
        } else {
            Error::bad("sync request", format!("the body could not be read: {cause}"))
        }
    })?;
    let started = Instant::now();
    let bytes_in = body.len();
    let service = state.sync.clone();
    let result = tokio::task::spawn_blocking(move || {
        let request: Request = wire::decode_one(&body, "sync request")?;
        service.round_from(&device, request, &from)
    })
    .await
    .map_err(|e| Error::Internal(format!("sync task failed: {e}")))?;
    state
        .metrics
        .sync_finished(bytes_in, result.as_ref().map(Vec::len).ok(), started.elapsed());
    let body = result?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-outpost-sync")],
        body,
    )
        .into_response())
}

/// The sync logic, shared by every request.
pub struct SyncService {
    storage: Arc<dyn Storage>,
    metrics: Arc<Metrics>,
    /// The server's own actor for this process run, for changes it makes (a lead's decision).
    actor: ActorId,
    /// Which merges may run at once (each loads, merges and rewrites whole documents).
    merge_locks: MergeLocks,
    /// Automerge sync protocol state per device and diverged document, between rounds.
    automerge_states: Mutex<HashMap<(DeviceId, DocId), am_sync::State>>,
    alerts: Alerts,
    /// Signs devices' offline leases (`with_key`).
    key: Arc<crate::signing::ServerKey>,
    /// What leases are dated by (`set_clock`: tests move it days ahead).
    clock: std::sync::RwLock<Arc<dyn outpost_core::Clock>>,
}

impl std::fmt::Debug for SyncService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncService")
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl SyncService {
    /// Takes a fresh actor for this process and registers it as the server's. Leases are signed
    /// with a key made in memory, which suits tests and commands that serve no device; a server
    /// that does is given its kept key with `with_key`.
    pub fn new(storage: Arc<dyn Storage>, metrics: Arc<Metrics>) -> Result<Self> {
        let actor = ActorId::random();
        storage.register_server_actor(actor.to_bytes(), chrono::Utc::now().timestamp())?;
        Ok(Self {
            storage,
            metrics,
            actor,
            merge_locks: MergeLocks::new(),
            automerge_states: Mutex::new(HashMap::new()),
            alerts: Alerts::disabled(),
            key: Arc::new(crate::signing::ServerKey::generate()?),
            clock: std::sync::RwLock::new(Arc::new(outpost_core::SystemClock)),
        })
    }

    /// Held while rewriting records wholesale (a redaction, an erasure): no merge of this
    /// process runs meanwhile.
    fn exclusive_guard(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.merge_locks.everything()
    }

    /// Tells team leads when a visit flagged for safeguarding arrives.
    pub fn with_alerts(mut self, alerts: Alerts) -> Self {
        self.alerts = alerts;
        self
    }

    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    pub fn actor(&self) -> &ActorId {
        &self.actor
    }

    /// One round for one device: the response body.
    pub fn round(&self, device: &Device, request: Request) -> Result<Vec<u8>> {
        self.round_from(device, request, "")
    }

    /// The same, audited as coming from the address `from`.
    pub fn round_from(&self, device: &Device, request: Request, from: &str) -> Result<Vec<u8>> {
        let protocol = wire::negotiate(request.min_protocol, request.protocol).ok_or(Error::UnsupportedProtocol {
            min: request.min_protocol,
            max: request.protocol,
            ours_min: wire::MIN_PROTOCOL,
            ours_max: wire::PROTOCOL,
        })?;
        let now = chrono::Utc::now().timestamp();
        self.storage.touch_device(&device.device, now)?;
        let epoch = self.storage.epoch()?;
        let mut head = Head {
            protocol,
            capabilities: wire::common_capabilities(&request.capabilities),
            epoch: epoch.clone(),
            ..Head::default()
        };
        let stale_cursor = request.cursor > self.storage.log_head()?;
        let foreign_epoch = request.epoch.as_ref().is_some_and(|e| *e != epoch);
        if request.inventory.is_none() && (foreign_epoch || stale_cursor) {
            // The device's cursor refers to a log this server no longer has (it was restored).
            head.epoch_changed = true;
            return Ok(respond(head, Vec::new(), End { cursor: 0, more: false }));
        }

        let (merged, merged_head) = self.merge_retrying(device, &request, head, now, from)?;
        head = merged_head;
        let Merged {
            scope,
            held,
            dropped,
            write,
            seqs,
            resent,
        } = merged;
        self.metrics.docs_stored(write.docs.len());
        crate::duplicates::follow_merges(self, &write.docs, from);
        self.alert_safeguarding(&write.docs, now)?;

        // People who left the scope (after their last pushes were accepted above).
        let mut leaving: Vec<String> = held
            .difference(&scope)
            .filter(|p| !dropped.contains(p))
            .map(|p| p.to_string())
            .collect();
        leaving.sort();
        head.drop = leaving;
        // Retirement (once every push above is stored) and the lease for the time away.
        self.settle_service(device, &request, &mut head, now, from)?;

        let pull = match resent {
            // The inventory settled what the device lacks; from here on it follows the log.
            Some(entries) => Pull {
                entries,
                cursor: self.storage.log_head()?,
                more: false,
            },
            None => {
                let indexed = head
                    .capabilities
                    .iter()
                    .any(|c| c == wire::CAP_INDEX || c == wire::CAP_INDEX_DEFLATE);
                self.storage
                    .pull(device, request.cursor, &seqs, RESPONSE_BUDGET, indexed)?
            }
        };
        let sent: Vec<AuditEntry> = pull
            .entries
            .iter()
            .map(|e| AuditEntry {
                from: from.to_string(),
                ..audit(device, "receive", e.doc.as_str(), now)
            })
            .collect();
        if !sent.is_empty() {
            self.storage.write(
                None,
                &SyncWrite {
                    audit: sent,
                    ..SyncWrite::default()
                },
            )?;
        }
        let forgets = head.capabilities.iter().any(|c| c == wire::CAP_FORGET);
        let deflated = head.capabilities.iter().any(|c| c == wire::CAP_INDEX_DEFLATE);
        let frames = pull
            .entries
            .into_iter()
            .map(|e| match (e.replaced, e.index) {
                (Some(redaction), Some((heads, _))) => {
                    replaced_frame(e.seq, &e.doc, e.bytes, &heads, &redaction, forgets)
                }
                (_, Some((heads, rows))) => Ok(Frame::Indexed(
                    e.seq,
                    e.doc.to_string(),
                    ByteBuf::from(e.bytes),
                    wire::hashes_to_wire(&heads),
                    ByteBuf::from(outpost_core::sync::index_rows_for(rows, deflated)?),
                )),
                (_, None) => Ok(Frame::Doc(e.seq, e.doc.to_string(), ByteBuf::from(e.bytes))),
            })
            .collect::<Result<_>>()?;
        Ok(respond(
            head,
            frames,
            End {
                cursor: pull.cursor,
                more: pull.more,
            },
        ))
    }

    /// Merges a request's pushes into the stored documents and writes them in one transaction.
    /// Another server process over the same database may write one of those documents between
    /// our read and our write; then nothing was written (`Error::Stale`), and the merge starts
    /// again from what is stored now, with the request's Automerge sync states set back.
    fn merge_retrying(
        &self,
        device: &Device,
        request: &Request,
        head: Head,
        now: i64,
        from: &str,
    ) -> Result<(Merged, Head)> {
        let mut attempt = 1;
        loop {
            let mut attempt_head = head.clone();
            let merged = {
                let _guard = self.merge_locks.docs(touched(request));
                self.merge(device, request, &mut attempt_head, now, from)
            };
            match merged {
                Err(Error::Stale(doc)) if attempt < MERGE_ATTEMPTS => {
                    tracing::debug!(%doc, attempt, "merging again: another process wrote the document");
                    self.metrics.merge_retried();
                    self.forget_automerge_states(device, request)?;
                    attempt += 1;
                }
                merged => return Ok((merged?, attempt_head)),
            }
        }
    }

    fn merge(&self, device: &Device, request: &Request, head: &mut Head, now: i64, from: &str) -> Result<Merged> {
        let scope = self.storage.scope(device)?;
        let held = self.storage.held(&device.device)?;
        let mut checker = Checker::new(self.storage.as_ref(), device, &scope, &held, &request.actors)?;
        let mut write = SyncWrite::default();
        let dropped: Vec<PersonId> = request
            .dropped
            .iter()
            .map(|p| PersonId::new(p.as_str()).map_err(|e| Error::bad("dropped person", e.to_string())))
            .collect::<Result<_>>()?;
        write.dropped = dropped.clone();

        // People first, so a person created offline is known before their visits arrive.
        let mut prepared = Vec::with_capacity(request.pushes.len());
        let mut seen = std::collections::HashSet::new();
        let mut arrivals = Arrivals::default();
        for push in &request.pushes {
            if !seen.insert(push.doc.as_str()) {
                head.refused.push(Refusal {
                    doc: push.doc.clone(),
                    reason: "the document is pushed more than once in one request".into(),
                });
                continue;
            }
            if self.erased_on_arrival(&push.doc, None, &mut arrivals)? {
                continue;
            }
            match checker.prepare(push)? {
                Ok(p) if self.erased_on_arrival(&push.doc, p.person(), &mut arrivals)? => {}
                Ok(p) => prepared.push((push.doc.clone(), p)),
                Err(reason) => head.refused.push(Refusal {
                    doc: push.doc.clone(),
                    reason,
                }),
            }
        }
        prepared.sort_by_key(|(_, p)| !p.is_person());
        for (doc, p) in prepared {
            match checker.accept(p)? {
                Ok(Accepted::Stored(doc_write, heads)) => {
                    write.audit.push(audit(device, "push", &doc, now));
                    head.acks.push(ack(&doc, &heads));
                    write.docs.push(*doc_write);
                }
                Ok(Accepted::AlreadyHeld(heads)) => head.acks.push(ack(&doc, &heads)),
                Ok(Accepted::Diverged) => head.diverged.push(doc),
                Err(reason) => head.refused.push(Refusal { doc, reason }),
            }
        }
        let resent = match &request.inventory {
            Some(inventory) => Some(self.inventory(device, &scope, inventory, head)?),
            None => None,
        };
        for message in &request.automerge_sync {
            if !self.erased_on_arrival(&message.doc, None, &mut arrivals)? {
                self.automerge_sync(&mut checker, device, message, head, &mut write, now)?;
            }
        }
        for edit in &request.held {
            self.held_edit(&checker, device, edit, now, &mut write)?;
        }
        let erasures = self.settle_erasures(device, &request.erased, &arrivals, head, now, from)?;
        write.audit.extend(erasures);
        write.actors = checker.new_actors();
        for entry in &mut write.audit {
            entry.from = from.to_string();
        }
        write.expected = checker.expected();
        let seqs = self.storage.write(Some(&device.device), &write)?;
        Ok(Merged {
            scope,
            held,
            dropped,
            write,
            seqs,
            resent,
        })
    }

    fn forget_automerge_states(&self, device: &Device, request: &Request) -> Result<()> {
        let mut states = self
            .automerge_states
            .lock()
            .map_err(|_| Error::Internal("the automerge state lock was poisoned".into()))?;
        for message in &request.automerge_sync {
            if let Ok(doc) = DocId::new(message.doc.as_str()) {
                states.remove(&(device.device.clone(), doc));
            }
        }
        Ok(())
    }

    /// Alerts the team's leads of each visit stored flagged for safeguarding, once per concern
    /// (clearing it lets a new one alert again). The alert holds ids and a link, no content.
    fn alert_safeguarding(&self, docs: &[DocWrite], now: i64) -> Result<()> {
        if !self.alerts.is_enabled() {
            return Ok(());
        }
        for doc in docs {
            let Some(Listing::Visit {
                safeguarding: true,
                worker,
                ..
            }) = &doc.listing
            else {
                continue;
            };
            let Some(team) = self.storage.person_team(&doc.person)? else {
                continue;
            };
            if !self.storage.mark_alerted(&doc.doc, now)? {
                continue;
            }
            let raised_by = WorkerId::new(worker.as_str())?;
            self.storage.audit(&AuditEntry {
                at: now,
                who: "server".into(),
                action: "safeguarding-alert".into(),
                subject: doc.doc.to_string(),
                detail: format!("team {team}, raised by {raised_by}"),
                from: String::new(),
            })?;
            self.alerts.send(SafeguardingAlert {
                recipients: self.storage.lead_emails(&team)?,
                team,
                visit: doc.doc.clone(),
                raised_by,
                at: chrono::Utc::now(),
            });
        }
        Ok(())
    }

    /// After a restore: compares the device's documents with ours. Documents whose heads
    /// differ are reconciled with Automerge sync messages (in either direction); documents in
    /// scope the device lacks are sent whole. Returns those, to send in place of a pull.
    fn inventory(
        &self,
        device: &Device,
        scope: &std::collections::HashSet<PersonId>,
        inventory: &[DocHeads],
        head: &mut Head,
    ) -> Result<Vec<Outgoing>> {
        let mut listed = HashMap::new();
        for item in inventory {
            if let Ok(doc) = DocId::new(item.doc.as_str()) {
                let theirs = wire::hashes_from_wire(&item.heads, "inventory heads").map_err(Error::Core)?;
                listed.insert(doc, theirs);
            }
        }
        let mut held = Vec::new();
        let mut missing = Vec::new();
        let people: Vec<PersonId> = scope.iter().cloned().collect();
        for (doc, stored) in self.storage.people_docs(&people)? {
            match listed.remove(&doc) {
                Some(theirs) if theirs == stored.heads => {}
                Some(_) => head.diverged.push(doc.to_string()),
                None => missing.push(Outgoing {
                    seq: 0,
                    doc: doc.clone(),
                    person: stored.person.clone(),
                    bytes: stored.snapshot,
                    index: None,
                    replaced: None,
                }),
            }
            held.push((doc, stored.person));
        }
        // Documents the device holds that we lack (lost in the restore) come back through
        // Automerge sync; ones outside the scope are left to the drop that follows.
        for doc in listed.into_keys() {
            if self.storage.doc(&doc)?.is_none() {
                head.diverged.push(doc.to_string());
            }
        }
        self.storage.mark_held(&device.device, &held)?;
        Ok(missing)
    }

    fn automerge_sync(
        &self,
        checker: &mut Checker<'_>,
        device: &Device,
        message: &AutomergeSync,
        head: &mut Head,
        write: &mut SyncWrite,
        now: i64,
    ) -> Result<()> {
        let doc = DocId::new(message.doc.as_str()).map_err(|e| Error::bad("automerge sync document", e.to_string()))?;
        let decoded = am_sync::Message::decode(&message.message)
            .map_err(|e| Error::bad("automerge sync message", e.to_string()))?;
        let key = (device.device.clone(), doc.clone());
        let mut states = self
            .automerge_states
            .lock()
            .map_err(|_| Error::Internal("the automerge state lock was poisoned".into()))?;
        let state = states.entry(key.clone()).or_default();
        let (mut loaded, existed) = match self.storage.doc(&doc)? {
            Some(stored) if checker.may_see(&stored.person) => (
                AutoCommit::load(&stored.snapshot)
                    .map_err(|e| Error::Internal(format!("stored document {doc} does not load: {e}")))?,
                true,
            ),
            // Outside the scope, a document is handled exactly as one that does not exist.
            _ => (AutoCommit::new(), false),
        };
        let before = loaded.get_heads();
        if let Err(e) = outpost_core::sync::receive_sync_untrusted(&mut loaded, state, decoded) {
            states.remove(&key);
            head.refused.push(Refusal {
                doc: message.doc.clone(),
                reason: format!("automerge sync message: {e}"),
            });
            return Ok(());
        }
        let after = loaded.get_heads();
        if after != before {
            match checker.relayed(&doc, &mut loaded, &before, existed) {
                Ok(doc_write) => {
                    write.audit.push(audit(device, "push", doc.as_str(), now));
                    write.docs.push(doc_write);
                }
                Err(reason) => {
                    states.remove(&key);
                    head.refused.push(Refusal {
                        doc: message.doc.clone(),
                        reason,
                    });
                    return Ok(());
                }
            }
        }
        match loaded.sync().generate_sync_message(state) {
            Some(reply) => head.automerge_sync.push(AutomergeSync {
                doc: message.doc.clone(),
                message: ByteBuf::from(reply.encode()),
            }),
            None => {
                states.remove(&key);
            }
        }
        Ok(())
    }

    /// A change made by the server itself (a lead's decision through the admin CLI or the
    /// review pages), written with the server's actor; audited as `who` from the address `from`
    /// (empty for the CLI).
    pub fn server_edit(
        &self,
        doc: &DocId,
        who: &str,
        from: &str,
        action: &str,
        mut f: impl FnMut(&mut AutoCommit) -> std::result::Result<(), outpost_core::Error>,
    ) -> Result<Vec<ChangeHash>> {
        self.again_while_stale(|| self.server_edit_once(doc, who, from, action, &mut f))
    }

    /// Runs `attempt` again while another process wrote what it read (`Error::Stale`), so it
    /// works from what is stored now, up to `MERGE_ATTEMPTS` times.
    pub(crate) fn again_while_stale<T>(&self, mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
        let mut attempts = 1;
        loop {
            match attempt() {
                Err(Error::Stale(_)) if attempts < MERGE_ATTEMPTS => {
                    self.metrics.merge_retried();
                    attempts += 1;
                }
                done => return done,
            }
        }
    }

    fn server_edit_once(
        &self,
        doc: &DocId,
        who: &str,
        from: &str,
        action: &str,
        f: &mut impl FnMut(&mut AutoCommit) -> std::result::Result<(), outpost_core::Error>,
    ) -> Result<Vec<ChangeHash>> {
        let _guard = self.merge_locks.docs([doc.as_str()]);
        let stored = self
            .storage
            .doc(doc)?
            .ok_or_else(|| Error::NotFound(format!("document {doc}")))?;
        let mut loaded = AutoCommit::load(&stored.snapshot)
            .map_err(|e| Error::Internal(format!("stored document {doc} does not load: {e}")))?
            .with_actor(self.actor.clone());
        let before = loaded.get_heads();
        f(&mut loaded)?;
        loaded.commit();
        let changes: Vec<u8> = loaded
            .get_changes(&before)
            .iter()
            .flat_map(|c| c.raw_bytes().to_vec())
            .collect();
        let heads = loaded.get_heads();
        let write = SyncWrite {
            docs: vec![whole_write(doc, &mut loaded, changes)?],
            audit: vec![AuditEntry {
                at: chrono::Utc::now().timestamp(),
                who: who.to_string(),
                action: action.to_string(),
                subject: doc.to_string(),
                detail: String::new(),
                from: from.to_string(),
            }],
            expected: vec![(doc.clone(), before)],
            ..SyncWrite::default()
        };
        self.storage.write(None, &write)?;
        Ok(heads)
    }
}

/// A document the server itself wrote, whole, as one `DocWrite` with its `changes`.
pub(crate) fn whole_write(doc: &DocId, loaded: &mut AutoCommit, changes: Vec<u8>) -> Result<DocWrite> {
    let summary = outpost_core::sync::summarise(loaded, doc)?;
    Ok(DocWrite {
        doc: doc.clone(),
        person: summary.person.clone(),
        doc_type: summary.doc_type.code().to_string(),
        heads: loaded.get_heads(),
        snapshot: loaded.save(),
        index_rows: outpost_core::sync::index_rows(loaded, doc)?,
        changes,
        person_scope: person_scope(&summary),
        listing: listing(loaded, doc),
    })
}

pub(crate) fn person_scope(summary: &outpost_core::sync::DocSummary) -> Option<PersonScope> {
    match (summary.doc_type, &summary.team) {
        (DocType::Person, Some(team)) => Some(PersonScope {
            team: team.clone(),
            allocated: summary.allocated.clone(),
        }),
        _ => None,
    }
}

/// The record's listing for the review pages. A record that does not read as its type is
/// still stored (the device's data is never refused for that); it is left off the listing.
pub(crate) fn listing(doc: &AutoCommit, id: &DocId) -> Option<outpost_core::sync::Listing> {
    outpost_core::sync::listing(doc, id)
        .inspect_err(|e| tracing::warn!(doc = %id, error = %e, "record not listed for review"))
        .ok()
}

/// Lists every stored document for the review pages, once, after an upgrade from a server that
/// kept no listing.
pub fn relist(storage: &dyn Storage) -> Result<usize> {
    if !storage.needs_relist()? {
        return Ok(0);
    }
    let mut listed = 0;
    for id in storage.all_docs()? {
        let Some(stored) = storage.doc(&id)? else { continue };
        let doc = AutoCommit::load(&stored.snapshot)
            .map_err(|e| Error::Internal(format!("stored document {id} does not load: {e}")))?;
        if let Some(found) = listing(&doc, &id) {
            storage.list(&id, &stored.person, &stored.heads, &found)?;
            listed += 1;
        }
    }
    storage.relist_done()?;
    Ok(listed)
}

/// A redacted document for a device holding the version before: only an app that can replace
/// it may have it, since merging it into the old one would keep the removed text there.
fn replaced_frame(
    seq: u64,
    doc: &DocId,
    bytes: Vec<u8>,
    heads: &[ChangeHash],
    redaction: &[u8],
    forgets: bool,
) -> Result<Frame> {
    if !forgets {
        return Err(Error::bad(
            "sync request",
            format!("record {doc} was redacted, and this app is too old to replace its copy; update the app"),
        ));
    }
    let redaction = ciborium::from_reader(redaction)
        .map_err(|e| Error::Internal(format!("the stored redaction of {doc} does not decode: {e}")))?;
    Ok(Frame::Replaced(
        seq,
        doc.to_string(),
        Box::new(wire::Replaced {
            bytes: ByteBuf::from(bytes),
            heads: wire::hashes_to_wire(heads),
            redaction,
        }),
    ))
}

fn respond(head: Head, docs: Vec<Frame>, end: End) -> Vec<u8> {
    let mut body = wire::encode(&Frame::Head(head));
    for frame in docs {
        body.extend_from_slice(&wire::encode(&frame));
    }
    body.extend_from_slice(&wire::encode(&Frame::End(end)));
    body
}

fn ack(doc: &str, heads: &[ChangeHash]) -> DocHeads {
    DocHeads {
        doc: doc.to_string(),
        heads: wire::hashes_to_wire(heads),
    }
}

fn audit(device: &Device, action: &str, doc: &str, at: i64) -> AuditEntry {
    AuditEntry {
        at,
        who: format!("{}/{}", device.worker, device.device),
        action: action.to_string(),
        subject: doc.to_string(),
        detail: String::new(),
        from: String::new(),
    }
}

/// The documents a request may write: those it pushes, syncs by Automerge's protocol, and
/// holds edits back from.
fn touched(request: &Request) -> impl Iterator<Item = &str> {
    let pushed = request.pushes.iter().map(|p| p.doc.as_str());
    let synced = request.automerge_sync.iter().map(|m| m.doc.as_str());
    let held = request.held.iter().map(|h| h.doc.as_str());
    pushed.chain(synced).chain(held)
}
