//! What must hold once the network has healed and gone quiet: every device holds exactly the
//! server's documents, at the server's heads, reading the same; nothing is left unacknowledged;
//! and every change a device saw acknowledged, or saved, is on the server.

use std::collections::BTreeMap;

use outpost_core::{ChangeHash, DocId, DocType, Record};
use outpost_server::storage::{Documents, ReviewIndex};

use super::{Failure, Sim, fail};
use crate::world::PEER;

pub(super) fn converged(sim: &mut Sim) -> Result<(), Failure> {
    let storage = sim.world.storage.clone();
    let mut server: BTreeMap<DocId, (Vec<ChangeHash>, Record)> = BTreeMap::new();
    for id in storage.all_docs()? {
        let Some(stored) = storage.doc(&id)? else {
            return fail(format!("the server lists {id} but does not hold it"));
        };
        let record = Record::load(id.clone(), &stored.snapshot)?;
        if record.heads() != stored.heads {
            return fail(format!("the server's heads for {id} are not its snapshot's"));
        }
        server.insert(id, (stored.heads, record));
    }
    if server.len() != sim.registry.people.len() + 2 * sim.registry.visits.len() {
        return fail(format!(
            "the server holds {} documents; the devices made {} people and {} visits",
            server.len(),
            sim.registry.people.len(),
            sim.registry.visits.len()
        ));
    }

    let mut first_index: Option<Vec<String>> = None;
    for (device, node) in sim.nodes.iter().enumerate() {
        let mut store = node.phone.store();
        let held: BTreeMap<DocId, Vec<ChangeHash>> = store.all_heads()?.into_iter().collect();
        let expected: BTreeMap<DocId, Vec<ChangeHash>> = server
            .iter()
            .map(|(id, (heads, _))| (id.clone(), heads.clone()))
            .collect();
        if held != expected {
            let differ: Vec<&DocId> = expected
                .keys()
                .chain(held.keys())
                .filter(|id| held.get(*id) != expected.get(*id))
                .collect();
            return fail(format!("device {device} and the server differ on {differ:?}"));
        }
        let pending = store.sync_status(PEER)?.pending_docs;
        if pending != 0 {
            return fail(format!("device {device} still has {pending} documents unacknowledged"));
        }
        // The same content, read the device's way and the review pages' way.
        for (id, (_, record)) in &server {
            let same = match record.doc_type()? {
                DocType::Person => store.person(id)? == record.person()?,
                DocType::Visit => store.visit(id)? == record.visit()?,
                DocType::Review => {
                    let Some(super::DocRef::Review(v)) = sim.registry.find(id) else {
                        return fail(format!("review {id} is of no visit the devices made"));
                    };
                    store.review(&sim.registry.visits[v].id)? == record.review()?
                }
                other => return fail(format!("{id} is a {other:?}, which no device made")),
            };
            if !same {
                return fail(format!("device {device} reads {id} differently from the server"));
            }
        }
        // And the same index, whether rows were computed here or shipped by the server.
        let index = store.index_dump()?;
        match &first_index {
            None => first_index = Some(index),
            Some(first) if *first != index => {
                return fail(format!("device {device}'s index differs from device 0's"));
            }
            Some(_) => {}
        }
    }

    // Nothing a device saw acknowledged, or saved, is missing from the server.
    let mut checked = 0;
    for (device, node) in sim.nodes.iter().enumerate() {
        for (what, list) in [("acknowledged", &node.acked), ("saved", &node.saved)] {
            for (id, heads) in list {
                let Some((_, record)) = server.get(id) else {
                    return fail(format!("{id}, {what} on device {device}, is not on the server"));
                };
                if !record.has_heads(heads) {
                    return fail(format!(
                        "changes to {id} {what} on device {device} are not on the server"
                    ));
                }
                checked += 1;
            }
        }
    }
    sim.outcome.documents = server.len();
    sim.outcome.acks_checked = checked;
    Ok(())
}
