//! Nursing observations as a community nurse records them, with NEWS2 computed from them.

use automerge::{AutoCommit, ObjType, ROOT, transaction::Transactable};
use chrono::{DateTime, NaiveDate, Utc};

use super::fields::{self, Field};
use super::header::{self, DocType};
use super::news2::{self, Consciousness, News2, Parameter, Plausibility, SpO2Scale, Vitals};
use crate::error::{Error, Result};
use crate::ids::{DocId, PersonId, WorkerId};

#[derive(Debug, Clone, PartialEq)]
pub struct NewObservations {
    pub person: PersonId,
    pub nurse: WorkerId,
    pub taken_at: DateTime<Utc>,
}

/// One observation value as recorded; every field may hold concurrent values.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordedVitals {
    pub respiration_rate: Option<Field<i64>>,
    pub oxygen_saturation: Option<Field<i64>>,
    pub spo2_scale: Option<Field<i64>>,
    pub supplemental_oxygen: Option<Field<bool>>,
    pub systolic_blood_pressure: Option<Field<i64>>,
    pub pulse: Option<Field<i64>>,
    pub consciousness: Option<Field<String>>,
    pub temperature: Option<Field<f64>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observations {
    pub id: DocId,
    pub schema: i64,
    pub person: PersonId,
    pub nurse: Field<String>,
    pub taken_at: Field<DateTime<Utc>>,
    pub recorded: RecordedVitals,
    /// NEWS2, only when all seven parameters are present and none holds two concurrent values:
    /// a score from a partial or contested set would mislead.
    pub news2: Option<News2>,
    /// Parameters whose values are extreme but possible and not yet confirmed by the nurse.
    pub needs_confirmation: Vec<Parameter>,
    pub wound_notes: String,
    pub next_visit_due: Option<Field<NaiveDate>>,
}

pub(crate) fn create(doc: &mut AutoCommit, new: &NewObservations) -> Result<()> {
    header::write(doc, DocType::Observations, &new.person)?;
    fields::put(doc, &ROOT, "nurse", &new.nurse.as_str().to_string())?;
    fields::put(doc, &ROOT, "taken_at", &new.taken_at)?;
    doc.put_object(&ROOT, "confirmed", ObjType::Map)?;
    doc.put_object(&ROOT, "wound_notes", ObjType::Text)?;
    Ok(())
}

fn uncontested<T: Copy>(field: &Option<Field<T>>) -> Option<Option<T>> {
    match field {
        Some(f) if f.is_contested() => None,
        Some(f) => Some(Some(f.value)),
        None => Some(None),
    }
}

/// The vitals NEWS2 can score: None when any field is contested.
fn vitals(r: &RecordedVitals) -> Option<Vitals> {
    let scale = match uncontested(&r.spo2_scale)? {
        Some(2) => Some(SpO2Scale::Scale2),
        Some(1) | None => Some(SpO2Scale::Scale1),
        Some(_) => return None,
    };
    let consciousness = match &r.consciousness {
        Some(f) if f.is_contested() => return None,
        Some(f) => Some(Consciousness::from_code(&f.value)?),
        None => None,
    };
    Some(Vitals {
        respiration_rate: uncontested(&r.respiration_rate)?,
        oxygen_saturation: uncontested(&r.oxygen_saturation)?,
        spo2_scale: scale,
        supplemental_oxygen: uncontested(&r.supplemental_oxygen)?,
        systolic_blood_pressure: uncontested(&r.systolic_blood_pressure)?,
        pulse: uncontested(&r.pulse)?,
        consciousness,
        temperature: uncontested(&r.temperature)?,
    })
}

const NUMERIC: [(Parameter, &str); 5] = [
    (Parameter::RespirationRate, "respiration_rate"),
    (Parameter::OxygenSaturation, "oxygen_saturation"),
    (Parameter::SystolicBloodPressure, "systolic_blood_pressure"),
    (Parameter::Pulse, "pulse"),
    (Parameter::Temperature, "temperature"),
];

pub(crate) fn read(doc: &AutoCommit, id: &DocId) -> Result<Observations> {
    let header = header::expect(doc, id, DocType::Observations)?;
    let recorded = RecordedVitals {
        respiration_rate: fields::get_field(doc, &ROOT, "respiration_rate")?,
        oxygen_saturation: fields::get_field(doc, &ROOT, "oxygen_saturation")?,
        spo2_scale: fields::get_field(doc, &ROOT, "spo2_scale")?,
        supplemental_oxygen: fields::get_field(doc, &ROOT, "supplemental_oxygen")?,
        systolic_blood_pressure: fields::get_field(doc, &ROOT, "systolic_blood_pressure")?,
        pulse: fields::get_field(doc, &ROOT, "pulse")?,
        consciousness: fields::get_field(doc, &ROOT, "consciousness")?,
        temperature: fields::get_field(doc, &ROOT, "temperature")?,
    };
    let confirmed_obj = fields::object(doc, &ROOT, "confirmed", ObjType::Map)?;
    let confirmed = fields::true_keys(doc, &confirmed_obj);
    let mut needs_confirmation = Vec::new();
    for (parameter, key) in NUMERIC {
        let Some(field) = fields::get_field::<f64>(doc, &ROOT, key)? else {
            continue;
        };
        let flagged = std::iter::once(field.value)
            .chain(field.concurrent)
            .any(|v| news2::check(parameter, v) == Ok(Plausibility::NeedsConfirmation));
        if flagged && !confirmed.iter().any(|c| c == key) {
            needs_confirmation.push(parameter);
        }
    }
    Ok(Observations {
        id: id.clone(),
        schema: header.schema,
        person: header.person,
        nurse: fields::require_field(doc, &ROOT, "nurse")?,
        taken_at: fields::require_field(doc, &ROOT, "taken_at")?,
        news2: vitals(&recorded).and_then(|v| news2::score(&v)),
        recorded,
        needs_confirmation,
        wound_notes: fields::text(doc, &ROOT, "wound_notes")?,
        next_visit_due: fields::get_field(doc, &ROOT, "next_visit_due")?,
    })
}

#[derive(Debug)]
pub struct ObservationsEditor<'a> {
    pub(crate) doc: &'a mut AutoCommit,
}

impl ObservationsEditor<'_> {
    /// Stores a numeric reading. An impossible value is refused; an extreme but possible one is
    /// stored and flagged until `confirm` is called for it.
    fn reading(&mut self, parameter: Parameter, value: f64, stored: automerge::ScalarValue) -> Result<()> {
        news2::check(parameter, value).map_err(|e| Error::invalid(parameter.name(), e.to_string()))?;
        let confirmed = fields::object(self.doc, &ROOT, "confirmed", ObjType::Map)?;
        // A new value needs its own confirmation.
        fields::put(self.doc, &confirmed, parameter.name(), &false)?;
        self.doc.put(&ROOT, parameter.name(), stored)?;
        Ok(())
    }

    pub fn set_respiration_rate(&mut self, per_minute: i64) -> Result<()> {
        self.reading(Parameter::RespirationRate, per_minute as f64, per_minute.into())
    }

    pub fn set_oxygen_saturation(&mut self, percent: i64, scale: SpO2Scale) -> Result<()> {
        self.reading(Parameter::OxygenSaturation, percent as f64, percent.into())?;
        let scale: i64 = match scale {
            SpO2Scale::Scale1 => 1,
            SpO2Scale::Scale2 => 2,
        };
        fields::put(self.doc, &ROOT, "spo2_scale", &scale)
    }

    pub fn set_supplemental_oxygen(&mut self, on_oxygen: bool) -> Result<()> {
        fields::put(self.doc, &ROOT, Parameter::SupplementalOxygen.name(), &on_oxygen)
    }

    pub fn set_systolic_blood_pressure(&mut self, mmhg: i64) -> Result<()> {
        self.reading(Parameter::SystolicBloodPressure, mmhg as f64, mmhg.into())
    }

    pub fn set_pulse(&mut self, per_minute: i64) -> Result<()> {
        self.reading(Parameter::Pulse, per_minute as f64, per_minute.into())
    }

    pub fn set_consciousness(&mut self, level: Consciousness) -> Result<()> {
        fields::put(
            self.doc,
            &ROOT,
            Parameter::Consciousness.name(),
            &level.code().to_string(),
        )
    }

    pub fn set_temperature(&mut self, celsius: f64) -> Result<()> {
        self.reading(Parameter::Temperature, celsius, celsius.into())
    }

    /// The nurse confirms an extreme value was read correctly.
    pub fn confirm(&mut self, parameter: Parameter) -> Result<()> {
        let confirmed = fields::object(self.doc, &ROOT, "confirmed", ObjType::Map)?;
        fields::put(self.doc, &confirmed, parameter.name(), &true)
    }

    pub fn set_wound_notes(&mut self, notes: &str) -> Result<()> {
        fields::update_text(self.doc, &ROOT, "wound_notes", notes)
    }

    pub fn set_next_visit_due(&mut self, due: Option<NaiveDate>) -> Result<()> {
        fields::put_opt(self.doc, &ROOT, "next_visit_due", due.as_ref())
    }
}
