//! A subject access export as JSON, for a person to take their data elsewhere. A field holding
//! one value is that value; a field two people wrote at once is `{"value", "also_recorded"}`,
//! so no value held is left out.

use chrono::{DateTime, NaiveDate, Utc};
use outpost_core::{Assessment, Author, Field, Observations, Person, Review};
use serde_json::{Value, json};

use super::{Export, HeldVisit};

/// Names the shape, so a reader can tell a later one apart.
pub const FORMAT: &str = "outpost-subject-access/1";

pub fn to_json(export: &Export) -> Value {
    json!({
        "format": FORMAT,
        "produced_at": export.produced_at.to_rfc3339(),
        "person_id": export.person_id.as_str(),
        "team": export.team.as_ref().map(|t| t.as_str()),
        "person": person(&export.person),
        "other_person_records": export.other_person_records.iter().map(person).collect::<Vec<_>>(),
        "visits": export.visits.iter().map(|v| visit(export, v)).collect::<Vec<_>>(),
        "assessments": export.assessments.iter().map(assessment).collect::<Vec<_>>(),
        "observations": export.observations.iter().map(observations).collect::<Vec<_>>(),
        "reviews_without_a_visit": export.unmatched_reviews.iter().map(|r| review(export, r)).collect::<Vec<_>>(),
        "unreadable_documents": export.unreadable.iter().map(|u| json!({
            "id": u.doc.as_str(),
            "type": u.doc_type,
            "reason": u.reason,
        })).collect::<Vec<_>>(),
        "access": export.access.iter().map(|a| json!({
            "seq": a.seq,
            "at": time(a.at),
            "who": a.who,
            "who_named": export.who(&a.who),
            "action": a.action,
            "record": a.subject,
        })).collect::<Vec<_>>(),
    })
}

fn field<T>(f: &Field<T>, show: impl Fn(&T) -> Value) -> Value {
    if f.is_contested() {
        json!({
            "value": show(&f.value),
            "also_recorded": f.concurrent.iter().map(&show).collect::<Vec<_>>(),
        })
    } else {
        show(&f.value)
    }
}

fn opt<T>(f: &Option<Field<T>>, show: impl Fn(&T) -> Value) -> Value {
    f.as_ref().map_or(Value::Null, |f| field(f, show))
}

fn text(s: &String) -> Value {
    json!(s)
}

fn day(d: &NaiveDate) -> Value {
    json!(d.to_string())
}

fn instant(t: &DateTime<Utc>) -> Value {
    json!(t.to_rfc3339())
}

fn time(at: i64) -> Value {
    DateTime::from_timestamp(at, 0).map_or_else(|| json!(at), |t| json!(t.to_rfc3339()))
}

fn author(export: &Export, author: &Author) -> Value {
    json!({
        "worker": author.worker.as_str(),
        "device": author.device.as_str(),
        "named": export.author(author),
    })
}

fn person(p: &Person) -> Value {
    json!({
        "id": p.id.as_str(),
        "name": field(&p.name, text),
        "preferred_name": opt(&p.preferred_name, text),
        "date_of_birth": opt(&p.date_of_birth, day),
        "nhs_number": opt(&p.nhs_number, text),
        "address": opt(&p.address, text),
        "team": field(&p.team, text),
        "allocated_workers": p.allocated_workers.iter().map(|w| w.as_str()).collect::<Vec<_>>(),
        "risk_tier": field(&p.risk, |r| json!(r.code())),
        "contacts": p.contacts.iter().map(|c| json!({
            "name": opt(&c.name, text),
            "relationship": opt(&c.relationship, text),
            "phone": opt(&c.phone, text),
            "removed": c.cancelled,
        })).collect::<Vec<_>>(),
        "consents": p.consents.iter().map(|c| json!({
            "with_whom": opt(&c.with_whom, text),
            "given_on": opt(&c.given_on, day),
            "recorded_by": c.recorded_by,
            "recorded_at": c.recorded_at.as_ref().map(DateTime::to_rfc3339),
            "withdrawn": c.withdrawn,
        })).collect::<Vec<_>>(),
    })
}

fn visit(export: &Export, held: &HeldVisit) -> Value {
    let v = &held.visit;
    let sections: Vec<Value> = held
        .authors
        .iter()
        .map(|(section, authors)| {
            json!({
                "section": section.code(),
                "text": v.section(*section),
                "written_by": authors.iter().map(|a| author(export, a)).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "id": v.id.as_str(),
        "at": field(&v.at, instant),
        "worker": field(&v.worker, text),
        "setting": field(&v.setting, |s| json!(s.code())),
        "sections": sections,
        "actions": v.actions.iter().map(|a| json!({
            "what": opt(&a.what, text),
            "who": opt(&a.who, text),
            "due": opt(&a.due, day),
            "done": a.done,
            "cancelled": a.cancelled,
        })).collect::<Vec<_>>(),
        "helped": opt(&v.helped, |h| json!(h.code())),
        "feedback": v.feedback,
        "safeguarding_concern": v.safeguarding_concern,
        "safeguarding_reason": opt(&v.safeguarding_reason, text),
        "review": held.review.as_ref().map(|r| review(export, r)),
    })
}

fn review(export: &Export, r: &Review) -> Value {
    json!({
        "id": r.id.as_str(),
        "visit": r.visit.as_str(),
        "state": field(&r.state, |s| json!(s.code())),
        "history": r.history.iter().map(|step| json!({
            "action": step.action.code(),
            "by": step.by.as_ref().map(|a| author(export, a)),
            "at": step.at.to_rfc3339(),
            "comment": step.comment,
        })).collect::<Vec<_>>(),
    })
}

fn assessment(a: &Assessment) -> Value {
    json!({
        "id": a.id.as_str(),
        "at": field(&a.at, instant),
        "assessor": field(&a.assessor, text),
        "template": a.template_id,
        "template_version": a.template_version,
        "sections": a.sections,
        "answers": a.answers.iter().map(|answer| json!({
            "question": answer.question,
            "outcome": field(&answer.outcome, |o| json!(o.code())),
            "note": opt(&answer.note, text),
        })).collect::<Vec<_>>(),
    })
}

fn observations(o: &Observations) -> Value {
    let v = &o.recorded;
    let int = |x: &i64| json!(x);
    json!({
        "id": o.id.as_str(),
        "taken_at": field(&o.taken_at, instant),
        "nurse": field(&o.nurse, text),
        "respiration_rate": opt(&v.respiration_rate, int),
        "oxygen_saturation": opt(&v.oxygen_saturation, int),
        "spo2_scale": opt(&v.spo2_scale, int),
        "supplemental_oxygen": opt(&v.supplemental_oxygen, |b| json!(b)),
        "systolic_blood_pressure": opt(&v.systolic_blood_pressure, int),
        "pulse": opt(&v.pulse, int),
        "consciousness": opt(&v.consciousness, text),
        "temperature": opt(&v.temperature, |t| json!(t)),
        "news2": o.news2.as_ref().map(|n| json!({ "total": n.total, "risk": n.risk.name() })),
        "needs_confirmation": o.needs_confirmation.iter().map(|p| p.name()).collect::<Vec<_>>(),
        "wound_notes": o.wound_notes,
        "next_visit_due": opt(&o.next_visit_due, day),
    })
}
