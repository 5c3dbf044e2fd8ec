use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ROOT, ReadDoc};

use super::*;
use crate::ids::{Author, DeviceId, WorkerId};
use crate::model::authorship;

fn author(worker: &str, device: &str) -> Author {
    Author::new(WorkerId::new(worker).unwrap(), DeviceId::new(device).unwrap())
}

fn doc_by(who: &Author) -> AutoCommit {
    AutoCommit::new().with_author(Some(who.to_automerge()))
}

fn text_path() -> Vec<Step> {
    vec![Step::Key("sections".into()), Step::Key("notes".into())]
}

/// A visit-like document: a text section written by Ann, a list with two items.
fn original() -> (AutoCommit, ObjId) {
    let ann = author("ann", "phone-a");
    let mut doc = doc_by(&ann);
    let sections = doc.put_object(&ROOT, "sections", ObjType::Map).unwrap();
    let notes = doc.put_object(&sections, "notes", ObjType::Text).unwrap();
    doc.splice_text(&notes, 0, 0, "Saw Jo. WRONG PERSON Bob Smith. Home is warm.")
        .unwrap();
    let list = doc.put_object(&ROOT, "actions", ObjType::List).unwrap();
    doc.insert(&list, 0, "call GP").unwrap();
    doc.insert(&list, 1, "order rail").unwrap();
    doc.put(&ROOT, "risk", "low").unwrap();
    doc.commit();
    (doc, notes)
}

fn cut_wrong_person(doc: &AutoCommit, notes: &ObjId) -> Cut {
    let text = doc.text(notes).unwrap();
    let start = text.find("WRONG").unwrap();
    let end = text.find("Home").unwrap();
    Cut {
        path: text_path(),
        start: text[..start].chars().count(),
        end: text[..end].chars().count(),
    }
}

fn notes_of(doc: &AutoCommit) -> (ObjId, String) {
    let (_, sections) = doc.get(ROOT, "sections").unwrap().unwrap();
    let (_, notes) = doc.get(&sections, "notes").unwrap().unwrap();
    let text = doc.text(&notes).unwrap();
    (notes, text)
}

/// Every state the document's history can show, as text: what a reader of its history finds.
fn every_historical_text(doc: &mut AutoCommit) -> Vec<String> {
    let hashes: Vec<_> = doc.get_changes(&[]).iter().map(|c| c.hash()).collect();
    let (notes, _) = notes_of(doc);
    hashes.iter().filter_map(|h| doc.text_at(&notes, &[*h]).ok()).collect()
}

#[test]
fn a_rebuilt_document_has_none_of_the_passage_in_its_text_or_history_and_keeps_authorship() {
    let (mut old, notes) = original();
    let cut = cut_wrong_person(&old, &notes);
    assert!(
        every_historical_text(&mut old).iter().any(|t| t.contains("Bob Smith")),
        "the check can fail"
    );

    let lead = author("lee", "server");
    let (mut new, redaction) = rebuild(&mut old, &[cut], &lead, 1_700_000_000).unwrap();
    let (new_notes, text) = notes_of(&new);
    assert_eq!(text, "Saw Jo. Home is warm.");
    for state in every_historical_text(&mut new) {
        assert!(
            !state.contains("Bob") && !state.contains("WRONG"),
            "history shows {state:?}"
        );
    }
    // Saved and loaded again, as a device receives it: still none of it.
    let loaded = AutoCommit::load(&new.save()).unwrap();
    assert_eq!(notes_of(&loaded).1, "Saw Jo. Home is warm.");
    // Who wrote the remaining text is still Ann, not the lead who redacted.
    let spans = authorship::spans(&loaded, &notes_of(&loaded).0);
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert_eq!(spans[0].author, Some(author("ann", "phone-a")));
    assert_eq!(
        redaction.root,
        new.get_heads()
            .iter()
            .map(|h| serde_bytes::ByteBuf::from(h.0.to_vec()))
            .collect::<Vec<_>>()
    );
    let _ = new_notes;
    // The rest of the document came across.
    let (_, list) = loaded.get(ROOT, "actions").unwrap().unwrap();
    assert_eq!(loaded.length(&list), 2);
    assert_eq!(loaded.get(ROOT, "risk").unwrap().unwrap().0.as_str(), Some("low"));
}

#[test]
fn a_contested_field_stays_contested() {
    let (mut old, notes) = original();
    let mut other = old.fork().with_author(Some(author("bea", "phone-b").to_automerge()));
    old.put(ROOT, "risk", "high").unwrap();
    old.commit();
    other.put(ROOT, "risk", "medium").unwrap();
    other.commit();
    old.merge(&mut other).unwrap();
    let cut = cut_wrong_person(&old, &notes);
    let (new, _) = rebuild(&mut old, &[cut], &author("lee", "server"), 0).unwrap();
    let mut values: Vec<String> = new
        .get_all(ROOT, "risk")
        .unwrap()
        .iter()
        .map(|(v, _)| v.as_str().unwrap().to_string())
        .collect();
    values.sort();
    assert_eq!(values, ["high", "medium"]);
}

#[test]
fn bad_cuts_are_refused_naming_what_is_wrong() {
    let (mut old, _) = original();
    let lead = author("lee", "server");
    let err = rebuild(&mut old, &[], &lead, 0).unwrap_err().to_string();
    assert!(err.contains("removes nothing"), "{err}");
    let past_end = Cut {
        path: text_path(),
        start: 3,
        end: 500,
    };
    let err = rebuild(&mut old, &[past_end], &lead, 0).unwrap_err().to_string();
    assert!(err.contains("ends at 500"), "{err}");
    let not_text = Cut {
        path: vec![Step::Key("risk".into())],
        start: 0,
        end: 1,
    };
    let err = rebuild(&mut old, &[not_text], &lead, 0).unwrap_err().to_string();
    assert!(err.contains("names no text"), "{err}");
}

#[test]
fn offline_edits_outside_the_passage_are_carried_and_edits_inside_it_are_held() {
    let (mut server, notes) = original();
    // A device holds the document as the server had it, then edits offline.
    let mut device = AutoCommit::load(&server.save()).unwrap();
    device.set_author(Some(author("ann", "phone-a").to_automerge()));
    let text = device.text(&notes).unwrap();
    let smith = text.find("Smith").unwrap();
    device.splice_text(&notes, smith, 0, "typed-inside ").unwrap();
    let home = device.text(&notes).unwrap().find("Home").unwrap();
    device.splice_text(&notes, home, 4, "House").unwrap();
    device.splice_text(&notes, 0, 0, "Today: ").unwrap();
    let (_, list) = device.get(ROOT, "actions").unwrap().unwrap();
    device.insert(&list, 1, "book carer").unwrap();
    device.delete(&list, 0).unwrap();
    device.put(ROOT, "risk", "medium").unwrap();
    device.commit();

    // Meanwhile the lead redacts on the server, and a colleague edits the new document.
    let cut = cut_wrong_person(&server, &notes);
    let (mut new, redaction) = rebuild(&mut server, &[cut], &author("lee", "server"), 0).unwrap();
    let mut colleague = AutoCommit::load(&new.save()).unwrap();
    let (colleague_notes, text) = notes_of(&colleague);
    colleague
        .splice_text(&colleague_notes, text.chars().count(), 0, " Cat fed.")
        .unwrap();
    colleague.commit();
    let mut received = AutoCommit::load(&colleague.save()).unwrap();

    let (change, held) = carry(&mut device, &redaction, &mut received, 0).unwrap();
    assert!(change.is_some());
    assert_eq!(notes_of(&received).1, "Today: Saw Jo. House is warm. Cat fed.");
    let (_, list) = received.get(ROOT, "actions").unwrap().unwrap();
    let actions: Vec<String> = (0..received.length(&list))
        .map(|i| received.get(&list, i).unwrap().unwrap().0.as_str().unwrap().to_string())
        .collect();
    assert_eq!(actions, ["book carer", "order rail"]);
    assert_eq!(received.get(ROOT, "risk").unwrap().unwrap().0.as_str(), Some("medium"));
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].text, "typed-inside ");
    assert_eq!(held[0].at, "Saw Jo. ".chars().count());
    for state in every_historical_text(&mut received) {
        assert!(
            !state.contains("Bob") && !state.contains("WRONG"),
            "history shows {state:?}"
        );
    }
}

#[test]
fn a_device_with_nothing_of_its_own_carries_nothing() {
    let (mut server, notes) = original();
    let mut device = AutoCommit::load(&server.save()).unwrap();
    let cut = cut_wrong_person(&server, &notes);
    let (mut new, redaction) = rebuild(&mut server, &[cut], &author("lee", "server"), 0).unwrap();
    let mut received = AutoCommit::load(&new.save()).unwrap();
    let heads = received.get_heads();
    assert_eq!(
        carry(&mut device, &redaction, &mut received, 0).unwrap(),
        (None, Vec::new())
    );
    assert_eq!(received.get_heads(), heads);
}

#[test]
fn a_redaction_naming_more_elements_than_any_document_holds_is_refused() {
    let (mut server, notes) = original();
    let mut device = AutoCommit::load(&server.save()).unwrap();
    device.splice_text(&notes, 0, 0, "x").unwrap();
    device.commit();
    let cut = cut_wrong_person(&server, &notes);
    let (mut new, mut redaction) = rebuild(&mut server, &[cut], &author("lee", "server"), 0).unwrap();
    redaction.anchors[0].kept.push((0, 1, u32::MAX));
    let mut received = AutoCommit::load(&new.save()).unwrap();
    let err = carry(&mut device, &redaction, &mut received, 0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than any document holds"), "{err}");
}
