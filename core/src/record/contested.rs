//! Names of the fields of a record that hold concurrent values, as a lead would read them. The
//! names are stable: the review pages may show them or match on them.

use crate::model::assessment::Assessment;
use crate::model::fields::Field;
use crate::model::observations::Observations;
use crate::model::person::Person;
use crate::model::review::Review;
use crate::model::visit::Visit;

/// Field names collected in the order the record shows them.
#[derive(Default)]
struct Names(Vec<String>);

impl Names {
    fn add<T>(&mut self, name: impl Into<String>, field: Option<&Field<T>>) -> &mut Self {
        if field.is_some_and(Field::is_contested) {
            self.0.push(name.into());
        }
        self
    }
}

pub(super) fn visit(v: &Visit) -> Vec<String> {
    let mut names = Names::default();
    names
        .add("worker", Some(&v.worker))
        .add("visit time", Some(&v.at))
        .add("setting", Some(&v.setting))
        .add("helped", v.helped.as_ref())
        .add("safeguarding reason", v.safeguarding_reason.as_ref());
    // Numbered as listed (cancelled ones included, as they stay shown).
    for (n, action) in (1..).zip(&v.actions) {
        names
            .add(format!("action {n}: what"), action.what.as_ref())
            .add(format!("action {n}: who"), action.who.as_ref())
            .add(format!("action {n}: due"), action.due.as_ref());
    }
    names.0
}

pub(super) fn person(p: &Person) -> Vec<String> {
    let mut names = Names::default();
    names
        .add("name", Some(&p.name))
        .add("preferred name", p.preferred_name.as_ref())
        .add("date of birth", p.date_of_birth.as_ref())
        .add("NHS number", p.nhs_number.as_ref())
        .add("address", p.address.as_ref())
        .add("team", Some(&p.team))
        .add("risk tier", Some(&p.risk));
    for (n, contact) in (1..).zip(&p.contacts) {
        names
            .add(format!("contact {n}: name"), contact.name.as_ref())
            .add(format!("contact {n}: relationship"), contact.relationship.as_ref())
            .add(format!("contact {n}: phone"), contact.phone.as_ref());
    }
    for (n, consent) in (1..).zip(&p.consents) {
        names
            .add(format!("consent {n}: with whom"), consent.with_whom.as_ref())
            .add(format!("consent {n}: given on"), consent.given_on.as_ref());
    }
    names.0
}

pub(super) fn observations(o: &Observations) -> Vec<String> {
    let r = &o.recorded;
    let mut names = Names::default();
    names
        .add("nurse", Some(&o.nurse))
        .add("time taken", Some(&o.taken_at))
        .add("respiration rate", r.respiration_rate.as_ref())
        .add("oxygen saturation", r.oxygen_saturation.as_ref())
        .add("SpO2 scale", r.spo2_scale.as_ref())
        .add("supplemental oxygen", r.supplemental_oxygen.as_ref())
        .add("systolic blood pressure", r.systolic_blood_pressure.as_ref())
        .add("pulse", r.pulse.as_ref())
        .add("consciousness", r.consciousness.as_ref())
        .add("temperature", r.temperature.as_ref())
        .add("next visit due", o.next_visit_due.as_ref());
    names.0
}

pub(super) fn assessment(a: &Assessment) -> Vec<String> {
    let mut names = Names::default();
    names
        .add("assessor", Some(&a.assessor))
        .add("assessment time", Some(&a.at));
    for answer in &a.answers {
        names
            .add(format!("answer {}: outcome", answer.question), Some(&answer.outcome))
            .add(format!("answer {}: note", answer.question), answer.note.as_ref());
    }
    names.0
}

pub(super) fn review(r: &Review) -> Vec<String> {
    let mut names = Names::default();
    names.add("review state", Some(&r.state));
    names.0
}
