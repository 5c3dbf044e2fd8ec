//! Every band boundary of the RCP NEWS2 chart, as literal tables taken from the chart.
#![allow(clippy::unwrap_used)]

use super::*;

/// A set where every parameter scores 0, to vary one parameter at a time.
fn all_zero() -> Vitals {
    Vitals {
        respiration_rate: Some(16),
        oxygen_saturation: Some(98),
        spo2_scale: None,
        supplemental_oxygen: Some(false),
        systolic_blood_pressure: Some(120),
        pulse: Some(70),
        consciousness: Some(Consciousness::Alert),
        temperature: Some(37.0),
    }
}

/// Asserts each (value, sub-score) row of a chart table, putting the value
/// into an otherwise all-zero set with `with`.
fn assert_chart<T: Copy + std::fmt::Debug>(
    parameter: Parameter,
    chart: &[(T, Option<u8>)],
    with: impl Fn(T) -> Vitals,
) {
    for &(value, expected) in chart {
        let vitals = with(value);
        let got = parameter_score(&vitals, parameter);
        assert_eq!(got, expected, "{parameter:?} {value:?} in {vitals:?}");
    }
}

// ---- Sub-scores: literal tables from the RCP NEWS2 chart (2017) ----

#[test]
fn respiration_rate_bands() {
    let chart = [
        (0, Some(3)),
        (8, Some(3)),
        (9, Some(1)),
        (11, Some(1)),
        (12, Some(0)),
        (20, Some(0)),
        (21, Some(2)),
        (24, Some(2)),
        (25, Some(3)),
        (60, Some(3)),
    ];
    assert_chart(Parameter::RespirationRate, &chart, |rate| Vitals {
        respiration_rate: Some(rate),
        ..all_zero()
    });
}

#[test]
fn spo2_scale_1_bands() {
    let chart = [
        (70, Some(3)),
        (91, Some(3)),
        (92, Some(2)),
        (93, Some(2)),
        (94, Some(1)),
        (95, Some(1)),
        (96, Some(0)),
        (100, Some(0)),
    ];
    // No scale recorded means Scale 1.
    assert_chart(Parameter::OxygenSaturation, &chart, |percent| Vitals {
        oxygen_saturation: Some(percent),
        spo2_scale: None,
        ..all_zero()
    });
    // On Scale 1, oxygen scores only in its own row, never in the SpO2 row.
    assert_chart(Parameter::OxygenSaturation, &chart, |percent| Vitals {
        oxygen_saturation: Some(percent),
        spo2_scale: Some(SpO2Scale::Scale1),
        supplemental_oxygen: Some(true),
        ..all_zero()
    });
}

#[test]
fn spo2_scale_2_on_air() {
    let chart = [
        (70, Some(3)),
        (83, Some(3)),
        (84, Some(2)),
        (85, Some(2)),
        (86, Some(1)),
        (87, Some(1)),
        (88, Some(0)),
        (92, Some(0)),
        (93, Some(0)),
        (96, Some(0)),
        (97, Some(0)),
        (100, Some(0)),
    ];
    assert_chart(Parameter::OxygenSaturation, &chart, |percent| Vitals {
        oxygen_saturation: Some(percent),
        spo2_scale: Some(SpO2Scale::Scale2),
        supplemental_oxygen: Some(false),
        ..all_zero()
    });
}

#[test]
fn spo2_scale_2_on_oxygen() {
    let chart = [
        (70, Some(3)),
        (83, Some(3)),
        (84, Some(2)),
        (85, Some(2)),
        (86, Some(1)),
        (87, Some(1)),
        (88, Some(0)),
        (92, Some(0)),
        (93, Some(1)),
        (94, Some(1)),
        (95, Some(2)),
        (96, Some(2)),
        (97, Some(3)),
        (100, Some(3)),
    ];
    assert_chart(Parameter::OxygenSaturation, &chart, |percent| Vitals {
        oxygen_saturation: Some(percent),
        spo2_scale: Some(SpO2Scale::Scale2),
        supplemental_oxygen: Some(true),
        ..all_zero()
    });
}

#[test]
fn spo2_scale_2_with_air_or_oxygen_unknown_scores_only_where_it_does_not_matter() {
    let chart = [(83, Some(3)), (88, Some(0)), (92, Some(0)), (93, None), (97, None)];
    assert_chart(Parameter::OxygenSaturation, &chart, |percent| Vitals {
        oxygen_saturation: Some(percent),
        spo2_scale: Some(SpO2Scale::Scale2),
        supplemental_oxygen: None,
        ..all_zero()
    });
}

#[test]
fn air_or_oxygen() {
    let chart = [(false, Some(0)), (true, Some(2))];
    for scale in [SpO2Scale::Scale1, SpO2Scale::Scale2] {
        assert_chart(Parameter::SupplementalOxygen, &chart, |on_oxygen| Vitals {
            supplemental_oxygen: Some(on_oxygen),
            spo2_scale: Some(scale),
            ..all_zero()
        });
    }
}

#[test]
fn systolic_blood_pressure_bands() {
    let chart = [
        (0, Some(3)),
        (90, Some(3)),
        (91, Some(2)),
        (100, Some(2)),
        (101, Some(1)),
        (110, Some(1)),
        (111, Some(0)),
        (219, Some(0)),
        (220, Some(3)),
        (300, Some(3)),
    ];
    assert_chart(Parameter::SystolicBloodPressure, &chart, |mmhg| Vitals {
        systolic_blood_pressure: Some(mmhg),
        ..all_zero()
    });
}

#[test]
fn pulse_bands() {
    let chart = [
        (0, Some(3)),
        (40, Some(3)),
        (41, Some(1)),
        (50, Some(1)),
        (51, Some(0)),
        (90, Some(0)),
        (91, Some(1)),
        (110, Some(1)),
        (111, Some(2)),
        (130, Some(2)),
        (131, Some(3)),
        (250, Some(3)),
    ];
    assert_chart(Parameter::Pulse, &chart, |bpm| Vitals {
        pulse: Some(bpm),
        ..all_zero()
    });
}

#[test]
fn consciousness_levels() {
    let chart = [
        (Consciousness::Alert, Some(0)),
        (Consciousness::NewConfusion, Some(3)),
        (Consciousness::Voice, Some(3)),
        (Consciousness::Pain, Some(3)),
        (Consciousness::Unresponsive, Some(3)),
    ];
    assert_chart(Parameter::Consciousness, &chart, |level| Vitals {
        consciousness: Some(level),
        ..all_zero()
    });
}

#[test]
fn temperature_bands() {
    let chart = [
        (30.0, Some(3)),
        (35.0, Some(3)),
        (35.1, Some(1)),
        (36.0, Some(1)),
        (36.1, Some(0)),
        (38.0, Some(0)),
        (38.1, Some(1)),
        (39.0, Some(1)),
        (39.1, Some(2)),
        (42.0, Some(2)),
    ];
    assert_chart(Parameter::Temperature, &chart, |celsius| Vitals {
        temperature: Some(celsius),
        ..all_zero()
    });
}

#[test]
fn temperature_rounds_to_one_decimal_before_scoring() {
    // Either side of each boundary by less than the rounding step.
    let chart = [
        (35.04, Some(3)),
        (35.06, Some(1)),
        (36.04, Some(1)),
        (36.06, Some(0)),
        (38.04, Some(0)),
        (38.06, Some(1)),
        (39.04, Some(1)),
        (39.06, Some(2)),
    ];
    assert_chart(Parameter::Temperature, &chart, |celsius| Vitals {
        temperature: Some(celsius),
        ..all_zero()
    });
}

// ---- Aggregate score and risk bands ----

#[test]
fn all_zero_scores_zero_low() {
    let news2 = score(&all_zero()).unwrap();
    assert_eq!(news2.total, 0);
    assert_eq!(news2.risk, ClinicalRisk::Low);
    let expected: Vec<(Parameter, u8)> = Parameter::ALL.iter().map(|&p| (p, 0)).collect();
    assert_eq!(news2.scores, expected);
}

#[test]
fn aggregate_risk_bands() {
    // (observation set, expected total, expected risk), sub-scores noted from the chart.
    let cases: &[(Vitals, u8, ClinicalRisk)] = &[
        // RR 21 (2) + pulse 95 (1) + temp 38.5 (1) = 4, no single 3.
        (
            Vitals {
                respiration_rate: Some(21),
                pulse: Some(95),
                temperature: Some(38.5),
                ..all_zero()
            },
            4,
            ClinicalRisk::Low,
        ),
        // Voice (3) alone = 3, a single red parameter.
        (
            Vitals {
                consciousness: Some(Consciousness::Voice),
                ..all_zero()
            },
            3,
            ClinicalRisk::LowMedium,
        ),
        // Pulse 131 (3) + temp 39.0 (1) = 4 with a single 3.
        (
            Vitals {
                pulse: Some(131),
                temperature: Some(39.0),
                ..all_zero()
            },
            4,
            ClinicalRisk::LowMedium,
        ),
        // RR 22 (2) + oxygen (2) + pulse 100 (1) = 5.
        (
            Vitals {
                respiration_rate: Some(22),
                supplemental_oxygen: Some(true),
                pulse: Some(100),
                ..all_zero()
            },
            5,
            ClinicalRisk::Medium,
        ),
        // SBP 85 (3) + RR 21 (2) = 5: a single 3 does not lower Medium.
        (
            Vitals {
                systolic_blood_pressure: Some(85),
                respiration_rate: Some(21),
                ..all_zero()
            },
            5,
            ClinicalRisk::Medium,
        ),
        // RR 22 (2) + oxygen (2) + pulse 115 (2) = 6.
        (
            Vitals {
                respiration_rate: Some(22),
                supplemental_oxygen: Some(true),
                pulse: Some(115),
                ..all_zero()
            },
            6,
            ClinicalRisk::Medium,
        ),
        // RR 22 (2) + oxygen (2) + pulse 115 (2) + temp 38.5 (1) = 7.
        (
            Vitals {
                respiration_rate: Some(22),
                supplemental_oxygen: Some(true),
                pulse: Some(115),
                temperature: Some(38.5),
                ..all_zero()
            },
            7,
            ClinicalRisk::High,
        ),
        // Every parameter at its worst: 3+3+2+3+3+3+2 = 19.
        (
            Vitals {
                respiration_rate: Some(30),
                oxygen_saturation: Some(85),
                spo2_scale: None,
                supplemental_oxygen: Some(true),
                systolic_blood_pressure: Some(80),
                pulse: Some(140),
                consciousness: Some(Consciousness::Unresponsive),
                temperature: Some(40.0),
            },
            19,
            ClinicalRisk::High,
        ),
    ];
    for (vitals, total, risk) in cases {
        let news2 = score(vitals).unwrap();
        assert_eq!((news2.total, news2.risk), (*total, *risk), "{vitals:?}");
    }
}

#[test]
fn missing_any_parameter_gives_no_score() {
    let without: &[(Parameter, Vitals)] = &[
        (
            Parameter::RespirationRate,
            Vitals {
                respiration_rate: None,
                ..all_zero()
            },
        ),
        (
            Parameter::OxygenSaturation,
            Vitals {
                oxygen_saturation: None,
                ..all_zero()
            },
        ),
        (
            Parameter::SupplementalOxygen,
            Vitals {
                supplemental_oxygen: None,
                ..all_zero()
            },
        ),
        (
            Parameter::SystolicBloodPressure,
            Vitals {
                systolic_blood_pressure: None,
                ..all_zero()
            },
        ),
        (
            Parameter::Pulse,
            Vitals {
                pulse: None,
                ..all_zero()
            },
        ),
        (
            Parameter::Consciousness,
            Vitals {
                consciousness: None,
                ..all_zero()
            },
        ),
        (
            Parameter::Temperature,
            Vitals {
                temperature: None,
                ..all_zero()
            },
        ),
    ];
    for (missing, vitals) in without {
        assert_eq!(parameter_score(vitals, *missing), None, "{missing:?}");
        assert_eq!(score(vitals), None, "{missing:?}");
    }
    assert_eq!(score(&Vitals::default()), None);
}

#[test]
fn impossible_values_give_no_score() {
    let impossible: &[(Parameter, Vitals)] = &[
        (
            Parameter::RespirationRate,
            Vitals {
                respiration_rate: Some(-1),
                ..all_zero()
            },
        ),
        (
            Parameter::OxygenSaturation,
            Vitals {
                oxygen_saturation: Some(101),
                ..all_zero()
            },
        ),
        (
            Parameter::SystolicBloodPressure,
            Vitals {
                systolic_blood_pressure: Some(1200),
                ..all_zero()
            },
        ),
        (
            Parameter::Pulse,
            Vitals {
                pulse: Some(-70),
                ..all_zero()
            },
        ),
        (
            Parameter::Temperature,
            Vitals {
                temperature: Some(3.7),
                ..all_zero()
            },
        ),
        (
            Parameter::Temperature,
            Vitals {
                temperature: Some(f64::NAN),
                ..all_zero()
            },
        ),
    ];
    for (parameter, vitals) in impossible {
        assert_eq!(parameter_score(vitals, *parameter), None, "{vitals:?}");
        assert_eq!(score(vitals), None, "{vitals:?}");
    }
}

#[test]
fn scale_2_with_unknown_oxygen_at_93_or_more_gives_no_score() {
    let v = Vitals {
        oxygen_saturation: Some(95),
        spo2_scale: Some(SpO2Scale::Scale2),
        supplemental_oxygen: None,
        ..all_zero()
    };
    assert_eq!(score(&v), None);
}

// ---- Plausibility ----

const ORDINARY: Option<Plausibility> = Some(Plausibility::Ordinary);
const CONFIRM: Option<Plausibility> = Some(Plausibility::NeedsConfirmation);
const REFUSED: Option<Plausibility> = None;

fn assert_checks(parameter: Parameter, table: &[(f64, Option<Plausibility>)]) {
    for &(value, expected) in table {
        assert_eq!(check(parameter, value).ok(), expected, "{parameter:?} {value}");
    }
}

#[test]
fn check_respiration_rate_limits() {
    assert_checks(
        Parameter::RespirationRate,
        &[
            (-1.0, REFUSED),
            (0.0, CONFIRM),
            (5.0, CONFIRM),
            (6.0, ORDINARY),
            (16.0, ORDINARY),
            (40.0, ORDINARY),
            (41.0, CONFIRM),
            (100.0, CONFIRM),
            (101.0, REFUSED),
        ],
    );
}

#[test]
fn check_oxygen_saturation_limits() {
    assert_checks(
        Parameter::OxygenSaturation,
        &[
            (-1.0, REFUSED),
            (0.0, CONFIRM),
            (79.0, CONFIRM),
            (80.0, ORDINARY),
            (97.0, ORDINARY),
            (100.0, ORDINARY),
            (100.5, REFUSED),
            (101.0, REFUSED),
        ],
    );
}

#[test]
fn check_systolic_blood_pressure_limits() {
    assert_checks(
        Parameter::SystolicBloodPressure,
        &[
            (-1.0, REFUSED),
            (0.0, CONFIRM),
            (69.0, CONFIRM),
            (70.0, ORDINARY),
            (120.0, ORDINARY),
            (230.0, ORDINARY),
            (231.0, CONFIRM),
            (400.0, CONFIRM),
            (401.0, REFUSED),
            (1200.0, REFUSED),
        ],
    );
}

#[test]
fn check_pulse_limits() {
    assert_checks(
        Parameter::Pulse,
        &[
            (-1.0, REFUSED),
            (0.0, CONFIRM),
            (34.0, CONFIRM),
            (35.0, ORDINARY),
            (72.0, ORDINARY),
            (180.0, ORDINARY),
            (181.0, CONFIRM),
            (350.0, CONFIRM),
            (351.0, REFUSED),
            (720.0, REFUSED),
        ],
    );
}

#[test]
fn check_temperature_limits() {
    assert_checks(
        Parameter::Temperature,
        &[
            (3.7, REFUSED),
            (9.9, REFUSED),
            (10.0, CONFIRM),
            // Lowest survived core temperature, roughly.
            (13.7, CONFIRM),
            (31.9, CONFIRM),
            (32.0, ORDINARY),
            (37.0, ORDINARY),
            (41.0, ORDINARY),
            (41.1, CONFIRM),
            // Highest survived, roughly.
            (46.5, CONFIRM),
            (47.0, CONFIRM),
            (47.1, REFUSED),
            // Fahrenheit typed into a Celsius field.
            (98.6, REFUSED),
            (370.0, REFUSED),
        ],
    );
}

#[test]
fn check_refuses_non_finite_numbers() {
    let numeric = [
        Parameter::RespirationRate,
        Parameter::OxygenSaturation,
        Parameter::SystolicBloodPressure,
        Parameter::Pulse,
        Parameter::Temperature,
    ];
    for parameter in numeric {
        assert_checks(
            parameter,
            &[
                (f64::NAN, REFUSED),
                (f64::INFINITY, REFUSED),
                (f64::NEG_INFINITY, REFUSED),
            ],
        );
    }
}

#[test]
fn check_accepts_anything_for_non_numeric_parameters() {
    for parameter in [Parameter::SupplementalOxygen, Parameter::Consciousness] {
        assert_checks(
            parameter,
            &[(0.0, ORDINARY), (1.0, ORDINARY), (-5.0, ORDINARY), (f64::NAN, ORDINARY)],
        );
    }
}

#[test]
fn impossible_value_says_what_and_why() {
    let err = check(Parameter::Pulse, -5.0).unwrap_err();
    assert_eq!(err.parameter, Parameter::Pulse);
    assert_eq!(err.value, -5.0);
    assert_eq!(
        err.to_string(),
        "Pulse value -5 is impossible: below the lowest possible value"
    );
}

// ---- Names and codes ----

#[test]
fn parameter_names() {
    let names: &[(Parameter, &str)] = &[
        (Parameter::RespirationRate, "respiration_rate"),
        (Parameter::OxygenSaturation, "oxygen_saturation"),
        (Parameter::SupplementalOxygen, "supplemental_oxygen"),
        (Parameter::SystolicBloodPressure, "systolic_blood_pressure"),
        (Parameter::Pulse, "pulse"),
        (Parameter::Consciousness, "consciousness"),
        (Parameter::Temperature, "temperature"),
    ];
    for &(parameter, name) in names {
        assert_eq!(parameter.name(), name);
    }
}

#[test]
fn consciousness_codes_round_trip() {
    let codes: &[(Consciousness, &str)] = &[
        (Consciousness::Alert, "A"),
        (Consciousness::NewConfusion, "C"),
        (Consciousness::Voice, "V"),
        (Consciousness::Pain, "P"),
        (Consciousness::Unresponsive, "U"),
    ];
    for &(level, code) in codes {
        assert_eq!(level.code(), code);
        assert_eq!(Consciousness::from_code(code), Some(level));
    }
    for unknown in ["", "a", "X", "AV", " A"] {
        assert_eq!(Consciousness::from_code(unknown), None, "{unknown:?}");
    }
}

#[test]
fn clinical_risk_names_and_order() {
    assert_eq!(ClinicalRisk::Low.name(), "low");
    assert_eq!(ClinicalRisk::LowMedium.name(), "low-medium");
    assert_eq!(ClinicalRisk::Medium.name(), "medium");
    assert_eq!(ClinicalRisk::High.name(), "high");
    assert!(ClinicalRisk::Low < ClinicalRisk::LowMedium);
    assert!(ClinicalRisk::LowMedium < ClinicalRisk::Medium);
    assert!(ClinicalRisk::Medium < ClinicalRisk::High);
}
