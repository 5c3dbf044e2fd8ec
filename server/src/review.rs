//! A lead's decision on a visit, made through the server (the admin CLI now, the review pages
//! later). It is written with the server process's own actor and names the lead as its author.

use outpost_core::{Author, ChangeHash, DeviceId, DocId, ReviewAction, ReviewState, WorkerId};

use crate::error::{Error, Result};
use crate::storage::Role;
use crate::sync::SyncService;

/// The device name in a server-made change's author, so "who wrote what" shows the lead, via
/// the server.
pub const SERVER_DEVICE: &str = "server";

pub fn decide(
    service: &SyncService,
    lead: &WorkerId,
    visit: &DocId,
    action: ReviewAction,
    comment: Option<&str>,
    read: Option<&[ChangeHash]>,
    from: &str,
) -> Result<ReviewState> {
    let storage = service.storage();
    let (role, _) = storage
        .worker(lead)?
        .ok_or_else(|| Error::NotFound(format!("worker {lead}")))?;
    let stored = storage
        .doc(visit)?
        .filter(|d| d.doc_type == "visit")
        .ok_or_else(|| Error::NotFound(format!("visit {visit}")))?;
    // A visit of another team is answered as missing, like any record outside a scope.
    let teams = storage.lead_teams(lead)?;
    if role != Role::Lead || !storage.person_team(&stored.person)?.is_some_and(|t| teams.contains(&t)) {
        return Err(Error::NotFound(format!("visit {visit}")));
    }
    let reviewer = Author::new(lead.clone(), DeviceId::new(SERVER_DEVICE)?);
    let review = DocId::review_of(visit);
    let mut state = ReviewState::Draft;
    service.server_edit(
        &review,
        &format!("{lead}/{SERVER_DEVICE}"),
        from,
        action_code(action),
        |doc| {
            // What the lead read, when they read it on a page; the CLI decides on what is stored.
            let heads = read.unwrap_or(&stored.heads);
            state = outpost_core::sync::apply_review(doc, &review, action, &reviewer, comment, heads)?;
            Ok(())
        },
    )?;
    Ok(state)
}

fn action_code(action: ReviewAction) -> &'static str {
    match action {
        ReviewAction::Submit => "review-submit",
        ReviewAction::Approve => "review-approve",
        ReviewAction::Return => "review-return",
    }
}
