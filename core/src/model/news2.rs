//! National Early Warning Score 2 (Royal College of Physicians, 2017) and
//! plausibility checks for the observations it is computed from.
//!
//! Pure functions only: no I/O, no storage, no clock. Callers pass one
//! observation set taken at one time; this module never merges values from
//! different sets, and never scores a set with a value missing.
//!
//! NEWS2 is not validated for under-16s or pregnancy, and should be used with
//! care at the end of life; deciding whether to show it is the caller's job
//! (see `docs/clinical-safety.md`).

/// One of the seven NEWS2 parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Parameter {
    RespirationRate,
    OxygenSaturation,
    SupplementalOxygen,
    SystolicBloodPressure,
    Pulse,
    Consciousness,
    Temperature,
}

impl Parameter {
    /// All seven parameters, in the order of the RCP chart.
    pub const ALL: [Parameter; 7] = [
        Parameter::RespirationRate,
        Parameter::OxygenSaturation,
        Parameter::SupplementalOxygen,
        Parameter::SystolicBloodPressure,
        Parameter::Pulse,
        Parameter::Consciousness,
        Parameter::Temperature,
    ];

    /// The snake_case field name used in stored observations.
    pub fn name(self) -> &'static str {
        match self {
            Parameter::RespirationRate => "respiration_rate",
            Parameter::OxygenSaturation => "oxygen_saturation",
            Parameter::SupplementalOxygen => "supplemental_oxygen",
            Parameter::SystolicBloodPressure => "systolic_blood_pressure",
            Parameter::Pulse => "pulse",
            Parameter::Consciousness => "consciousness",
            Parameter::Temperature => "temperature",
        }
    }
}

/// Which SpO2 scoring scale applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpO2Scale {
    /// The default for everyone.
    Scale1,
    /// Only for hypercapnic respiratory failure, and only when prescribed by
    /// a clinician: it scores lower saturations as normal, so using it for
    /// anyone else hides hypoxaemia.
    Scale2,
}

/// Level of consciousness on the ACVPU scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consciousness {
    Alert,
    NewConfusion,
    Voice,
    Pain,
    Unresponsive,
}

impl Consciousness {
    /// The single-letter ACVPU code: "A", "C", "V", "P" or "U".
    pub fn code(self) -> &'static str {
        match self {
            Consciousness::Alert => "A",
            Consciousness::NewConfusion => "C",
            Consciousness::Voice => "V",
            Consciousness::Pain => "P",
            Consciousness::Unresponsive => "U",
        }
    }

    /// Inverse of [`Consciousness::code`]; anything else is `None`.
    pub fn from_code(s: &str) -> Option<Self> {
        match s {
            "A" => Some(Consciousness::Alert),
            "C" => Some(Consciousness::NewConfusion),
            "V" => Some(Consciousness::Voice),
            "P" => Some(Consciousness::Pain),
            "U" => Some(Consciousness::Unresponsive),
            _ => None,
        }
    }
}

/// One set of observations, taken together. `None` means not recorded.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Vitals {
    /// Breaths per minute.
    pub respiration_rate: Option<i64>,
    /// Percent.
    pub oxygen_saturation: Option<i64>,
    /// `None` means Scale 1.
    pub spo2_scale: Option<SpO2Scale>,
    /// `true` when on supplemental oxygen, `false` on room air.
    pub supplemental_oxygen: Option<bool>,
    /// mmHg.
    pub systolic_blood_pressure: Option<i64>,
    /// Beats per minute.
    pub pulse: Option<i64>,
    pub consciousness: Option<Consciousness>,
    /// Degrees Celsius.
    pub temperature: Option<f64>,
}

/// The clinical risk bands of NEWS2, ordered from least to most urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ClinicalRisk {
    Low,
    LowMedium,
    Medium,
    High,
}

impl ClinicalRisk {
    /// "low", "low-medium", "medium" or "high".
    pub fn name(self) -> &'static str {
        match self {
            ClinicalRisk::Low => "low",
            ClinicalRisk::LowMedium => "low-medium",
            ClinicalRisk::Medium => "medium",
            ClinicalRisk::High => "high",
        }
    }
}

/// A complete NEWS2 result.
#[derive(Debug, Clone, PartialEq)]
pub struct News2 {
    pub total: u8,
    pub risk: ClinicalRisk,
    /// Every parameter's sub-score, in the order of [`Parameter::ALL`].
    pub scores: Vec<(Parameter, u8)>,
}

/// The NEWS2 score of one observation set.
///
/// None when any of the seven parameters is missing: a partial set must never be shown as a score.
/// Also None when a value is one [`check`] refuses, or when Scale 2 is in use
/// with SpO2 of 93% or more and air/oxygen is unknown, since those cannot be
/// scored honestly either.
pub fn score(v: &Vitals) -> Option<News2> {
    let scores = Parameter::ALL
        .iter()
        .map(|&p| parameter_score(v, p).map(|s| (p, s)))
        .collect::<Option<Vec<_>>>()?;
    // At most 3+3+2+3+3+3+2 = 19, so u8 cannot overflow.
    let total = scores.iter().map(|&(_, s)| s).sum();
    let any_single_three = scores.iter().any(|&(_, s)| s == 3);
    Some(News2 {
        total,
        risk: clinical_risk(total, any_single_three),
        scores,
    })
}

/// One parameter's sub-score; None if missing (or not scorable, see [`score`]).
pub fn parameter_score(v: &Vitals, p: Parameter) -> Option<u8> {
    match p {
        Parameter::RespirationRate => possible_integer(p, v.respiration_rate).map(respiration_rate_score),
        Parameter::OxygenSaturation => {
            let spo2 = possible_integer(p, v.oxygen_saturation)?;
            match v.spo2_scale.unwrap_or(SpO2Scale::Scale1) {
                SpO2Scale::Scale1 => Some(spo2_scale_1_score(spo2)),
                SpO2Scale::Scale2 => spo2_scale_2_score(spo2, v.supplemental_oxygen),
            }
        }
        Parameter::SupplementalOxygen => v.supplemental_oxygen.map(|on_oxygen| if on_oxygen { 2 } else { 0 }),
        Parameter::SystolicBloodPressure => possible_integer(p, v.systolic_blood_pressure).map(systolic_score),
        Parameter::Pulse => possible_integer(p, v.pulse).map(pulse_score),
        Parameter::Consciousness => v.consciousness.map(|c| match c {
            Consciousness::Alert => 0,
            Consciousness::NewConfusion | Consciousness::Voice | Consciousness::Pain | Consciousness::Unresponsive => 3,
        }),
        Parameter::Temperature => v.temperature.filter(|&t| check(p, t).is_ok()).map(temperature_score),
    }
}

/// A value that cannot be real must not produce a (possibly reassuring) score.
fn possible_integer(p: Parameter, value: Option<i64>) -> Option<i64> {
    // Precision loss for huge i64 values is harmless: they are far outside every limit.
    value.filter(|&x| check(p, x as f64).is_ok())
}

fn respiration_rate_score(breaths_per_minute: i64) -> u8 {
    match breaths_per_minute {
        ..=8 => 3,
        9..=11 => 1,
        12..=20 => 0,
        21..=24 => 2,
        25.. => 3,
    }
}

fn spo2_scale_1_score(percent: i64) -> u8 {
    match percent {
        ..=91 => 3,
        92..=93 => 2,
        94..=95 => 1,
        96.. => 0,
    }
}

/// Scale 2 needs air/oxygen only at 93% and above, where oxygen makes a
/// high saturation a sign of over-oxygenation rather than health.
fn spo2_scale_2_score(percent: i64, on_oxygen: Option<bool>) -> Option<u8> {
    match (percent, on_oxygen) {
        (..=83, _) => Some(3),
        (84..=85, _) => Some(2),
        (86..=87, _) => Some(1),
        (88..=92, _) => Some(0),
        (93.., Some(false)) => Some(0),
        (93..=94, Some(true)) => Some(1),
        (95..=96, Some(true)) => Some(2),
        (97.., Some(true)) => Some(3),
        (93.., None) => None,
    }
}

fn systolic_score(mmhg: i64) -> u8 {
    match mmhg {
        ..=90 => 3,
        91..=100 => 2,
        101..=110 => 1,
        111..=219 => 0,
        220.. => 3,
    }
}

fn pulse_score(beats_per_minute: i64) -> u8 {
    match beats_per_minute {
        ..=40 => 3,
        41..=50 => 1,
        51..=90 => 0,
        91..=110 => 1,
        111..=130 => 2,
        131.. => 3,
    }
}

/// The chart is banded in tenths of a degree, so round to one decimal first
/// (35.04 is 35.0, scoring 3; 35.06 is 35.1, scoring 1). Working in whole
/// tenths avoids comparing floats such as 38.1, which has no exact binary form.
fn temperature_score(celsius: f64) -> u8 {
    // Callers pass only values `check` accepts (10 to 47 °C), so this cannot saturate.
    let tenths = (celsius * 10.0).round() as i64;
    match tenths {
        ..=350 => 3,
        351..=360 => 1,
        361..=380 => 0,
        381..=390 => 1,
        391.. => 2,
    }
}

fn clinical_risk(total: u8, any_single_three: bool) -> ClinicalRisk {
    match total {
        7.. => ClinicalRisk::High,
        5..=6 => ClinicalRisk::Medium,
        _ if any_single_three => ClinicalRisk::LowMedium,
        _ => ClinicalRisk::Low,
    }
}

/// Whether a possible value can be recorded as is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plausibility {
    Ordinary,
    /// Extreme but possible: record it, but have the person who took it confirm it.
    NeedsConfirmation,
}

/// A value that cannot be a real measurement, most likely an entry error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{parameter:?} value {value} is impossible: {reason}")]
pub struct ImpossibleValue {
    pub parameter: Parameter,
    pub value: f64,
    pub reason: &'static str,
}

/// Plausibility limits of one numeric parameter, all inclusive: a value at a
/// limit is on the accepting side of it.
#[derive(Debug)]
struct Limits {
    min_possible: f64,
    min_ordinary: f64,
    max_ordinary: f64,
    max_possible: f64,
}

/// Apnoea (0) is a real finding; above 100/min cannot be counted by eye, even in a distressed newborn.
const RESPIRATION_RATE_LIMITS: Limits = Limits {
    min_possible: 0.0,
    // Under 6 is near-apnoea (opioid toxicity, peri-arrest): possible, but worth a second look.
    min_ordinary: 6.0,
    // Over 40 in an adult is extreme distress, or a miscounted or mis-timed count.
    max_ordinary: 40.0,
    max_possible: 100.0,
};

/// A percentage cannot leave 0 to 100.
const OXYGEN_SATURATION_LIMITS: Limits = Limits {
    min_possible: 0.0,
    // Below 80% is rare outside cyanotic heart disease or peri-arrest, and oximeters are least accurate there.
    min_ordinary: 80.0,
    max_ordinary: 100.0,
    max_possible: 100.0,
};

/// 0 mmHg (no recordable pressure) is a real finding; a sphygmomanometer scale ends at 300 mmHg,
/// so 400 leaves a margin while catching slips such as 1200 for 120.
const SYSTOLIC_BLOOD_PRESSURE_LIMITS: Limits = Limits {
    min_possible: 0.0,
    // Under 70 mmHg is profound shock.
    min_ordinary: 70.0,
    // Over 230 mmHg is beyond a typical hypertensive emergency, or a slip such as 250 for 150.
    max_ordinary: 230.0,
    max_possible: 400.0,
};

/// 0 (no palpable pulse) is a real finding; oximeters typically read no higher than 250-300 and palpation
/// cannot count that fast, so above 350 is an entry error (faster rates are ECG-only, not community findings).
const PULSE_LIMITS: Limits = Limits {
    min_possible: 0.0,
    // Under 35 is profound bradycardia (heart block, hypothermia).
    min_ordinary: 35.0,
    // Over 180 in an adult is an arrhythmia or artefact until confirmed.
    max_ordinary: 180.0,
    max_possible: 350.0,
};

/// Survived extremes are about 13.7 °C (accidental hypothermia) and 46.5 °C (heatstroke),
/// so refuse below 10 or above 47: this catches 3.7 for 37 and Fahrenheit (98.6) typed as Celsius.
const TEMPERATURE_LIMITS: Limits = Limits {
    min_possible: 10.0,
    // Below 32 °C is moderate-to-severe hypothermia, and a cold peripheral probe gives false lows.
    min_ordinary: 32.0,
    // Above 41 °C is hyperpyrexia.
    max_ordinary: 41.0,
    max_possible: 47.0,
};

/// Refuse a value that cannot be real (negative pulse, SpO2 over 100, a temperature no living person has, non-finite);
/// flag a value that is extreme but possible for confirmation; never refuse an extreme-but-possible value.
///
/// Supplemental oxygen and consciousness are not numeric, so any value is Ordinary.
pub fn check(parameter: Parameter, value: f64) -> Result<Plausibility, ImpossibleValue> {
    let limits = match parameter {
        Parameter::RespirationRate => &RESPIRATION_RATE_LIMITS,
        Parameter::OxygenSaturation => &OXYGEN_SATURATION_LIMITS,
        Parameter::SystolicBloodPressure => &SYSTOLIC_BLOOD_PRESSURE_LIMITS,
        Parameter::Pulse => &PULSE_LIMITS,
        Parameter::Temperature => &TEMPERATURE_LIMITS,
        Parameter::SupplementalOxygen | Parameter::Consciousness => {
            return Ok(Plausibility::Ordinary);
        }
    };
    let impossible = |reason| {
        Err(ImpossibleValue {
            parameter,
            value,
            reason,
        })
    };
    // NaN compares false with everything, so it must be caught before the range tests.
    if !value.is_finite() {
        return impossible("not a finite number");
    }
    if value < limits.min_possible {
        return impossible("below the lowest possible value");
    }
    if value > limits.max_possible {
        return impossible("above the highest possible value");
    }
    if value < limits.min_ordinary || value > limits.max_ordinary {
        return Ok(Plausibility::NeedsConfirmation);
    }
    Ok(Plausibility::Ordinary)
}

#[cfg(test)]
mod tests;
