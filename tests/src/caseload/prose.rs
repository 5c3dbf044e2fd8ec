//! Visit notes written from the phrase banks. Each person has a profile (interests, conditions,
//! worries, groups, relatives) that most of their notes draw on, so one person's visits read as
//! one story and a search for "dialysis" finds a few people's visits rather than everyone's.

use outpost_core::Section;
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};

use super::people::{Gender, PersonPlan};
use super::phrases;

/// Chance that a slot is filled from the person's own profile rather than the whole bank.
const FROM_PROFILE: f64 = 0.8;

/// Share of a visit's text in each section, in `Section::ALL` order.
const SECTION_SHARES: [f64; 6] = [0.18, 0.18, 0.17, 0.13, 0.19, 0.15];

#[derive(Debug, Clone)]
pub struct Profile {
    called: String,
    gender: Gender,
    interests: Vec<&'static str>,
    conditions: Vec<&'static str>,
    worries: Vec<&'static str>,
    groups: Vec<&'static str>,
    places: Vec<&'static str>,
    /// "daughter Karen", taken from the person's contacts where they have family.
    relatives: Vec<String>,
}

fn some_of(rng: &mut StdRng, bank: &'static [&'static str], min: usize, max: usize) -> Vec<&'static str> {
    let n = rng.random_range(min..=max);
    bank.choose_multiple(rng, n).copied().collect()
}

impl Profile {
    pub fn new(rng: &mut StdRng, person: &PersonPlan) -> Self {
        let mut relatives: Vec<String> = person
            .contacts
            .iter()
            .filter(|c| c.relationship != "neighbour" && c.relationship != "friend")
            .map(|c| {
                let first = c.name.split_whitespace().next().unwrap_or("");
                format!("{} {first}", c.relationship)
            })
            .collect();
        if relatives.is_empty() {
            relatives.push("niece".to_string());
        }
        Self {
            called: person.called().to_string(),
            gender: person.gender,
            interests: some_of(rng, phrases::INTERESTS, 2, 3),
            conditions: some_of(rng, phrases::CONDITIONS, 1, 2),
            worries: some_of(rng, phrases::WORRIES, 1, 2),
            groups: some_of(rng, phrases::GROUPS, 1, 2),
            places: some_of(rng, phrases::PLACES, 1, 2),
            relatives,
        }
    }

    pub fn called(&self) -> &str {
        &self.called
    }

    pub fn has_condition(&self, needle: &str) -> bool {
        self.conditions.iter().any(|c| c.contains(needle))
    }

    pub fn relative(&self, rng: &mut StdRng) -> &str {
        self.relatives.choose(rng).map_or("family", String::as_str)
    }

    /// A pronoun or name slot, or None for a content slot.
    fn voice(&self, slot: &str) -> Option<&str> {
        let female = self.gender == Gender::Female;
        Some(match slot {
            "name" => &self.called,
            "he" => {
                if female {
                    "she"
                } else {
                    "he"
                }
            }
            "He" => {
                if female {
                    "She"
                } else {
                    "He"
                }
            }
            "him" => {
                if female {
                    "her"
                } else {
                    "him"
                }
            }
            "his" => {
                if female {
                    "her"
                } else {
                    "his"
                }
            }
            "His" => {
                if female {
                    "Her"
                } else {
                    "His"
                }
            }
            "himself" => {
                if female {
                    "herself"
                } else {
                    "himself"
                }
            }
            _ => return None,
        })
    }

    fn pick(&self, rng: &mut StdRng, own: &[&'static str], bank: &'static [&'static str]) -> &'static str {
        let source = if own.is_empty() || !rng.random_bool(FROM_PROFILE) {
            bank
        } else {
            own
        };
        source.choose(rng).copied().unwrap_or("")
    }

    /// Fills every `{slot}` in `template`; content slots may themselves hold pronoun slots.
    pub fn fill(&self, rng: &mut StdRng, template: &str) -> String {
        let mut out = String::with_capacity(template.len() + 64);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            let slot = &rest[open + 1..open + close];
            rest = &rest[open + close + 1..];
            if let Some(word) = self.voice(slot) {
                out.push_str(word);
                continue;
            }
            let value: String = match slot {
                "interest" => self.pick(rng, &self.interests, phrases::INTERESTS).into(),
                "condition" => self.pick(rng, &self.conditions, phrases::CONDITIONS).into(),
                "worry" => self.pick(rng, &self.worries, phrases::WORRIES).into(),
                "group" => self.pick(rng, &self.groups, phrases::GROUPS).into(),
                "place" => self.pick(rng, &self.places, phrases::PLACES).into(),
                "service" => phrases::SERVICES.choose(rng).copied().unwrap_or("").into(),
                "period" => phrases::PERIODS.choose(rng).copied().unwrap_or("").into(),
                "day" => phrases::DAYS.choose(rng).copied().unwrap_or("").into(),
                "rel" => self.relative(rng).to_string(),
                other => format!("{{{other}}}"),
            };
            // Bank entries hold only pronoun slots, so one level of recursion ends it.
            out.push_str(&self.fill(rng, &value));
        }
        out.push_str(rest);
        out
    }
}

fn templates(section: Section) -> &'static [&'static str] {
    match section {
        Section::WhatMatters => phrases::WHAT_MATTERS,
        Section::Strengths => phrases::STRENGTHS,
        Section::SupportNetwork => phrases::SUPPORT_NETWORK,
        Section::Goals => phrases::GOALS,
        Section::RisksAndConcerns => phrases::RISKS_AND_CONCERNS,
        Section::CommunityConnections => phrases::COMMUNITY_CONNECTIONS,
    }
}

/// The text a worker means to write in each section, about `chars` characters in all.
pub fn visit_sections(rng: &mut StdRng, profile: &Profile, chars: usize) -> Vec<(Section, String)> {
    Section::ALL
        .iter()
        .zip(SECTION_SHARES)
        .map(|(&section, share)| {
            let target = (chars as f64 * share * rng.random_range(0.75..1.25)) as usize;
            let mut order: Vec<&str> = templates(section).to_vec();
            order.shuffle(rng);
            let mut text = String::new();
            let mut len = 0;
            for template in order.iter().cycle().take(order.len() * 3) {
                let sentence = profile.fill(rng, template);
                let sentence_len = sentence.chars().count();
                // Stop at the sentence boundary nearest the target, so sections do not all overshoot.
                if len > 0 && len + sentence_len / 2 > target {
                    break;
                }
                len += sentence_len + 1;
                if !text.is_empty() {
                    // Goals read as a list; other sections as paragraphs with the odd break.
                    let sep = if section == Section::Goals || rng.random_bool(0.15) {
                        "\n"
                    } else {
                        " "
                    };
                    text.push_str(sep);
                }
                text.push_str(&sentence);
            }
            (section, text)
        })
        .collect()
}
