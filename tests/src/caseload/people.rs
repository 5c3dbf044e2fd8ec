//! The people supported: names, dates of birth, NHS numbers, addresses, contacts and consents.

use std::collections::BTreeSet;

use chrono::{Days, NaiveDate};
use outpost_core::{NewConsent, NewContact, NewPerson, RiskTier, TeamId, WorkerId};
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

/// Whether the person is referred to as she or he in the notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gender {
    Female,
    Male,
}

/// (formal name, the name some people with it prefer)
const FEMALE_NAMES: &[(&str, Option<&str>)] = &[
    ("Margaret", Some("Peggy")),
    ("Elizabeth", Some("Betty")),
    ("Patricia", Some("Pat")),
    ("Susan", Some("Sue")),
    ("Dorothy", Some("Dot")),
    ("Kathleen", Some("Kath")),
    ("Jean", None),
    ("Irene", None),
    ("Sheila", None),
    ("Barbara", Some("Babs")),
    ("Christine", Some("Chris")),
    ("Valerie", Some("Val")),
    ("Gwendolyn", Some("Gwen")),
    ("Siân", None),
    ("Bronwen", None),
    ("Eileen", None),
    ("Moira", None),
    ("Agnes", Some("Nessie")),
    ("Hazel", None),
    ("Joan", None),
    ("Winifred", Some("Winnie")),
    ("Rita", None),
    ("Precious", None),
    ("Grace", None),
    ("Nasreen", None),
    ("Shabana", None),
    ("Parveen", None),
    ("Harjit", None),
    ("Mei", None),
    ("Aoife", None),
    ("Catherine", Some("Kate")),
    ("Deborah", Some("Debbie")),
    ("Joanne", Some("Jo")),
    ("Zoë", None),
    ("Abena", None),
    ("Halina", None),
];

const MALE_NAMES: &[(&str, Option<&str>)] = &[
    ("William", Some("Bill")),
    ("Robert", Some("Bob")),
    ("James", Some("Jim")),
    ("Thomas", Some("Tom")),
    ("Edward", Some("Ted")),
    ("Kenneth", Some("Ken")),
    ("Derek", None),
    ("Brian", None),
    ("Malcolm", None),
    ("Raymond", Some("Ray")),
    ("Gareth", None),
    ("Dafydd", None),
    ("Alistair", Some("Ali")),
    ("Frederick", Some("Fred")),
    ("Leonard", Some("Len")),
    ("Stanley", Some("Stan")),
    ("Trevor", None),
    ("Colin", None),
    ("Desmond", Some("Des")),
    ("Winston", None),
    ("Tariq", None),
    ("Mohammed", None),
    ("Gurpreet", None),
    ("Ravi", None),
    ("Wei", None),
    ("Seamus", None),
    ("Michael", Some("Mick")),
    ("Anthony", Some("Tony")),
    ("Stephen", Some("Steve")),
    ("Kwame", None),
    ("Tadeusz", Some("Tad")),
    ("Callum", None),
];

const SURNAMES: &[&str] = &[
    "Atkinson",
    "Bell",
    "Birkett",
    "Braithwaite",
    "Clarke",
    "Dawson",
    "Dixon",
    "Elliott",
    "Fell",
    "Gibson",
    "Graham",
    "Hodgson",
    "Holliday",
    "Irving",
    "Jackson",
    "Kaur",
    "Khan",
    "Lowther",
    "Mason",
    "Nicholson",
    "Okafor",
    "Owusu",
    "Patel",
    "Pattinson",
    "Ritson",
    "Robinson",
    "Sewell",
    "Singh",
    "Stainton",
    "Thwaites",
    "Tyson",
    "Walker",
    "Wilson",
    "Wood",
    "Wright",
    "Hussain",
    "Chen",
    "O'Neill",
    "Nowak",
    "Jones",
    "Evans",
    "Murphy",
    "Mensah",
    "Begum",
    "Armstrong",
    "Harrison",
    "Postlethwaite",
    "Whiteside",
];

const STREETS: &[&str] = &[
    "Fellside",
    "Station Road",
    "Church Lane",
    "Beck View",
    "Market Street",
    "Mill Brow",
    "Howe Close",
    "Lowther Street",
    "Castle Garth",
    "Greenside",
    "Sandgate",
    "Windermere Road",
    "Quarry Rigg",
    "Fairfield Avenue",
    "Brunswick Terrace",
    "Low Green",
    "Abbey Court",
    "Sycamore Drive",
    "Fountain Street",
    "Moor Lane",
];

/// (town, postcode district)
const TOWNS: &[(&str, &str)] = &[
    ("Kendal", "LA9"),
    ("Penrith", "CA11"),
    ("Keswick", "CA12"),
    ("Ulverston", "LA12"),
    ("Sedbergh", "LA10"),
    ("Appleby-in-Westmorland", "CA16"),
    ("Kirkby Stephen", "CA17"),
    ("Cockermouth", "CA13"),
    ("Workington", "CA14"),
    ("Millom", "LA18"),
    ("Alston", "CA9"),
    ("Barrow-in-Furness", "LA14"),
];

/// (relationship, whether the relative is a woman; None when either is likely)
const CONTACT_RELATIONSHIPS: &[(&str, Option<bool>)] = &[
    ("daughter", Some(true)),
    ("son", Some(false)),
    ("niece", Some(true)),
    ("nephew", Some(false)),
    ("neighbour", None),
    ("friend", None),
    ("sister", Some(true)),
    ("brother", Some(false)),
    ("granddaughter", Some(true)),
    ("grandson", Some(false)),
    ("wife", Some(true)),
    ("husband", Some(false)),
    ("partner", None),
    ("son-in-law", Some(false)),
    ("daughter-in-law", Some(true)),
];

const CONSENT_WITH: &[&str] = &[
    "GP surgery",
    "District nursing team",
    "Community mental health team",
    "Occupational therapy",
    "Adult social care",
    "Named next of kin",
    "Renal unit",
    "Housing association",
    "Carers' centre",
    "Pharmacy",
];

/// A person as the generator knows them: the record to create and what colours their notes.
#[derive(Debug, Clone)]
pub struct PersonPlan {
    pub new: NewPerson,
    pub gender: Gender,
    pub contacts: Vec<NewContact>,
    pub consents: Vec<NewConsent>,
}

impl PersonPlan {
    /// The name a worker writes in a note: the preferred name if there is one.
    pub fn called(&self) -> &str {
        self.new.preferred_name.as_deref().unwrap_or_else(|| {
            self.new
                .name
                .split_whitespace()
                .next()
                .unwrap_or(self.new.name.as_str())
        })
    }
}

/// A valid NHS number: nine digits and the modulus-11 check digit, never one already used.
/// Candidates whose check would be 10 have no valid number and are skipped.
pub fn nhs_number(rng: &mut StdRng, used: &mut BTreeSet<String>) -> String {
    loop {
        // Issued numbers in England start 4 to 7; this keeps the generated ones looking real.
        let base: u32 = rng.random_range(400_000_000..800_000_000);
        let digits: Vec<u32> = format!("{base:09}").chars().filter_map(|c| c.to_digit(10)).collect();
        let weighted: u32 = digits.iter().zip((2..=10).rev()).map(|(d, w)| d * w).sum();
        let check = match 11 - weighted % 11 {
            11 => 0,
            10 => continue,
            c => c,
        };
        let number = format!("{base:09}{check}");
        if used.insert(number.clone()) {
            return number;
        }
    }
}

/// `days` before `date`; dates this generator makes are far from chrono's limits.
pub fn days_before(date: NaiveDate, days: u64) -> NaiveDate {
    date.checked_sub_days(Days::new(days)).unwrap_or(date)
}

fn phone(rng: &mut StdRng) -> String {
    // Ofcom's range reserved for drama: realistic, and never anyone's real number.
    format!("07700 900{:03}", rng.random_range(0..1000))
}

fn postcode(rng: &mut StdRng, district: &str) -> String {
    const LETTERS: &[u8] = b"ABDEFGHJLNPQRSTUWXY";
    let letter = |rng: &mut StdRng| char::from(LETTERS[rng.random_range(0..LETTERS.len())]);
    format!("{district} {}{}{}", rng.random_range(1..10), letter(rng), letter(rng))
}

/// One person, allocated to one or two of `team_workers`.
pub fn plan_person(
    rng: &mut StdRng,
    today: NaiveDate,
    team: &TeamId,
    team_workers: &[WorkerId],
    used_nhs: &mut BTreeSet<String>,
) -> PersonPlan {
    let gender = if rng.random_bool(0.55) {
        Gender::Female
    } else {
        Gender::Male
    };
    let names = match gender {
        Gender::Female => FEMALE_NAMES,
        Gender::Male => MALE_NAMES,
    };
    let (first, nickname) = names[rng.random_range(0..names.len())];
    let surname = SURNAMES[rng.random_range(0..SURNAMES.len())];
    let preferred_name = nickname.filter(|_| rng.random_bool(0.6)).map(str::to_string);

    // Adults of working age and older; most people with care and support needs are older.
    let age_years = if rng.random_bool(0.7) {
        rng.random_range(68..99)
    } else {
        rng.random_range(19..68)
    };
    let date_of_birth = Some(days_before(today, age_years * 365 + rng.random_range(0..365)));

    let (town, district) = TOWNS[rng.random_range(0..TOWNS.len())];
    let street = STREETS[rng.random_range(0..STREETS.len())];
    let address = format!(
        "{} {street}, {town}, {}",
        rng.random_range(1..120),
        postcode(rng, district)
    );

    let mut allocated = vec![team_workers[rng.random_range(0..team_workers.len())].clone()];
    if team_workers.len() > 1 && rng.random_bool(0.3) {
        // A joint allocation: typically a social worker and a nurse in the integrated team.
        let other = loop {
            let w = &team_workers[rng.random_range(0..team_workers.len())];
            if *w != allocated[0] {
                break w.clone();
            }
        };
        allocated.push(other);
    }

    let risk = match rng.random_range(0..100) {
        0..15 => RiskTier::High,
        15..50 => RiskTier::Medium,
        _ => RiskTier::Low,
    };

    let contacts = (0..rng.random_range(1..=3))
        .map(|_| {
            let (relationship, woman) = CONTACT_RELATIONSHIPS[rng.random_range(0..CONTACT_RELATIONSHIPS.len())];
            let pool = if woman.unwrap_or_else(|| rng.random_bool(0.5)) {
                FEMALE_NAMES
            } else {
                MALE_NAMES
            };
            let contact_surname = if rng.random_bool(0.6) {
                surname
            } else {
                SURNAMES[rng.random_range(0..SURNAMES.len())]
            };
            NewContact {
                name: format!("{} {contact_surname}", pool[rng.random_range(0..pool.len())].0),
                relationship: relationship.to_string(),
                phone: rng.random_bool(0.85).then(|| phone(rng)),
            }
        })
        .collect();

    let consent_count = rng.random_range(0..=3);
    let consent_with: Vec<&str> = CONSENT_WITH.choose_multiple(rng, consent_count).copied().collect();
    let consents = consent_with
        .into_iter()
        .map(|with_whom| NewConsent {
            with_whom: with_whom.to_string(),
            given_on: days_before(today, rng.random_range(30..900)),
        })
        .collect();

    PersonPlan {
        new: NewPerson {
            name: format!("{first} {surname}"),
            preferred_name,
            date_of_birth,
            nhs_number: Some(nhs_number(rng, used_nhs)),
            address: Some(address),
            team: team.clone(),
            allocated_workers: allocated,
            risk,
        },
        gender,
        contacts,
        consents,
    }
}
