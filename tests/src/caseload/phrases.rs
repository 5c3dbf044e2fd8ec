//! Phrase banks for visit notes, in the language of UK strengths-based social work and community
//! nursing. Templates name slots in braces; `prose` fills them from the person's profile or, now
//! and then, from the whole bank. A few words the benches search for ("allotment", "bereavement",
//! "dialysis") sit in single bank entries, so they land in a minority of visits.

/// Things people enjoy or are good at (a gerund phrase).
pub const INTERESTS: &[&str] = &[
    "working on {his} allotment",
    "baking bread and scones",
    "doing the crossword in the paper",
    "knitting for the neonatal unit",
    "watching the rugby league",
    "feeding the birds in the back garden",
    "walking the dog along the river",
    "playing dominoes at the club",
    "singing in the community choir",
    "reading crime novels from the mobile library",
    "looking after {his} grandchildren after school",
    "fishing at the reservoir",
    "growing tomatoes in the greenhouse",
    "doing jigsaws",
    "going to the Friday market",
    "watching the racing",
    "sewing and altering clothes for neighbours",
    "keeping racing pigeons",
    "playing the ukulele",
    "cooking curries for the family",
    "following the football results",
    "painting watercolours of the fells",
    "going to the mosque for Friday prayers",
    "attending mass at St Mary's",
    "chatting to {his} budgie",
    "fixing bicycles in the shed",
    "writing letters to {his} pen friend",
    "volunteering at the charity shop",
    "bowls in the summer",
    "tending the window boxes",
];

/// Health conditions, as a nurse or social worker writes them.
pub const CONDITIONS: &[&str] = &[
    "heart failure",
    "COPD, with breathlessness on exertion",
    "type 2 diabetes, diet and tablet controlled",
    "end-stage kidney disease, on dialysis three times a week",
    "early-stage Alzheimer's disease",
    "vascular dementia",
    "Parkinson's disease",
    "arthritis in both knees",
    "a venous leg ulcer on the left shin",
    "osteoporosis and a previous hip fracture",
    "macular degeneration affecting {his} sight",
    "hearing loss, with hearing aids that need new batteries",
    "a stroke two years ago with left-sided weakness",
    "long-standing depression",
    "anxiety that makes going out difficult",
    "atrial fibrillation, on anticoagulants",
    "multiple sclerosis",
    "a learning disability",
    "chronic back pain",
    "recurrent urine infections",
    "lymphoedema in both legs",
    "a catheter, changed by the district nurses",
    "bipolar disorder, stable on lithium",
    "motor neurone disease",
];

/// What worries the person or the people around them.
pub const WORRIES: &[&str] = &[
    "falls at night on the way to the toilet",
    "the bereavement of losing {his} wife last winter",
    "money, since the winter fuel payment stopped",
    "being lonely in the evenings",
    "the stairs, which are becoming harder each month",
    "forgetting to take {his} tablets",
    "scam phone calls",
    "a cold house, because {he} is rationing the heating",
    "the state of the garden",
    "what happens if {his} carer falls ill",
    "the damp in the back bedroom",
    "driving, now that {his} eyesight is worse",
    "being a burden on the family",
    "going into a care home",
    "the amount of clutter in the hallway",
    "not eating properly since {his} appetite dropped",
    "pressure sores from sitting in the chair all day",
    "the long journey to hospital appointments",
    "rent arrears after a benefits change",
    "neighbours playing loud music late at night",
];

/// Community groups and places people connect with.
pub const GROUPS: &[&str] = &[
    "the lunch club at the Methodist hall",
    "the men's shed on the industrial estate",
    "the dementia café at the library",
    "the Tuesday walking group",
    "the community choir",
    "the carers' centre drop-in",
    "the befriending service",
    "the Age UK day centre",
    "the chair-based exercise class at the leisure centre",
    "the knit and natter group",
    "the bowls club",
    "the gurdwara's community kitchen",
    "the mosque's elders' group",
    "the Citizens Advice outreach session",
    "the Macmillan support group",
    "the parish church coffee morning",
    "the repair café",
    "the community garden",
    "the stroke survivors' club",
    "the food bank and its advice desk",
    "the library's digital help sessions",
];

/// Services and equipment workers suggest or arrange.
pub const SERVICES: &[&str] = &[
    "a pendant alarm",
    "a key safe so that the carers can get in",
    "grab rails by the front door",
    "a perching stool for the kitchen",
    "a referral to the falls prevention service",
    "community transport to the renal unit",
    "an occupational therapy assessment for a stairlift",
    "a benefits check for Attendance Allowance",
    "a carer's assessment for {his} family",
    "a blister pack from the pharmacy",
    "the district nurses for wound care",
    "a memory clinic referral",
    "a hot meals delivery service",
    "a Warm Homes grant for loft insulation",
    "a dosette box and reminder calls",
    "a referral to talking therapies",
    "a sensory impairment assessment",
    "a walking frame for indoors",
    "a review of pain relief with the GP",
    "telecare sensors on the stairs",
];

/// Where the person wants to get to, or keep going to.
pub const PLACES: &[&str] = &[
    "the post office",
    "the Friday market",
    "the library",
    "the allotment",
    "church on Sunday",
    "the barber's",
    "the chip shop on the corner",
    "the bus stop at the end of the road",
    "the cemetery to visit {his} husband's grave",
    "the park with the grandchildren",
    "the social club",
    "the GP surgery on {his} own",
];

/// Gentle time frames for goals.
pub const PERIODS: &[&str] = &[
    "over the next six weeks",
    "by the spring",
    "before Christmas",
    "by the next review",
    "within a month",
    "over the summer",
    "in the next few weeks",
    "by the time the clocks change",
];

pub const WHAT_MATTERS: &[&str] = &[
    "{name} told me that what matters most is staying in {his} own home, where {he} has lived for over forty years.",
    "\"I just want to get back to {interest},\" {name} said, and {he} said it more than once.",
    "For {name}, being independent with personal care is really important; {he} does not want strangers helping {him} wash.",
    "{name} said {he} misses {interest} and would like to feel useful again.",
    "Being able to get out to {place} matters a great deal to {name}; it is where {he} sees familiar faces.",
    "{name} wants {his} {rel} to be involved in decisions, but does not want to lean on {him} too much.",
    "Staying connected to {group} is important to {name}; {he} described it as the highlight of {his} week.",
    "{name} spoke warmly about {interest} and said that on good days {he} still manages it.",
    "What matters to {name} right now is feeling safe at night and not worrying about {worry}.",
    "{name} was clear that {he} wants to be treated as a person and not as a list of conditions.",
    "{He} said that keeping {his} routine, breakfast at eight and the news at six, helps {him} feel in control.",
    "{name} would like to be well enough to go to {his} {rel}'s birthday party next month.",
    "We talked about what a good day looks like for {name}: a bit of {interest}, a visitor, and a proper meal.",
    "{name} said that talking about {worry} had been hard, but {he} was glad to have said it out loud.",
    "{name} values {his} faith and wants to keep going to services when {he} is able.",
    "Having {his} cat at home with {him} matters enormously to {name}, and any plan needs to include the cat.",
];

pub const STRENGTHS: &[&str] = &[
    "{name} manages {his} own medication using a blister pack and keeps a clear diary of appointments.",
    "{He} has a good sense of humour and was quick to put me at ease.",
    "{name} is skilled at {interest} and has taught several neighbours over the years.",
    "Despite {condition}, {name} gets washed and dressed on {his} own most mornings.",
    "{name} knows {his} own health well and noticed the early signs of an infection last month.",
    "{He} is resourceful: {he} has moved the things {he} uses most onto the kitchen worktop to avoid bending.",
    "{name} has a strong relationship with {his} {rel}, who visits most days.",
    "{name} was able to describe {his} needs clearly and knew what would and would not help.",
    "{He} is determined and has kept up the exercises the physiotherapist showed {him}.",
    "{name} cooks a hot meal most days and is proud of keeping the house as {he} likes it.",
    "{He} uses a tablet to video call family and has learned to order shopping online.",
    "{name} is well known at {group}, where people look out for {him}.",
    "{He} has lived with {condition} for years and has found {his} own ways to pace {his} energy.",
    "{name} is a carer too, keeping an eye on a neighbour who is housebound.",
    "{He} is organised with {his} post and bills and keeps everything in a folder by the door.",
    "{name} has kept {his} sense of purpose by {interest}, even on harder weeks.",
];

pub const SUPPORT_NETWORK: &[&str] = &[
    "{His} {rel} does the weekly shop on a Saturday and collects prescriptions.",
    "{name}'s {rel} phones every evening and visits at weekends; {he} described this as a lifeline.",
    "A neighbour, who has a key, pops in most mornings and takes the bins out on a {day}.",
    "{name} has carers twice a day, morning and teatime, from the domiciliary care agency.",
    "Friends from {group} give {him} a lift on {day}s.",
    "{His} {rel} lives two hours away and feels guilty about not being closer.",
    "The district nurses visit on {day}s for {condition}.",
    "{name} is close to {his} {rel} but said the relationship has been strained since {worry} came up.",
    "The GP practice has a named care coordinator who knows {name} well.",
    "The pharmacist delivers medication every fortnight and has flagged missed collections before.",
    "{His} {rel} holds lasting power of attorney for health and welfare.",
    "{name} does not have much family nearby, but the vicar visits and the shop keeps an eye out.",
    "A volunteer from the befriending service has been calling {him} every {day} since the spring.",
    "{name} gets on well with the carers, especially the one who shares {his} love of {interest}.",
    "The renal team and the GP share information with {his} consent.",
];

pub const GOALS: &[&str] = &[
    "To be able to walk to {place} again {period}.",
    "To get back to {interest}, with some help at first.",
    "To manage {his} own shopping {period}, starting with an online order together.",
    "To sleep through the night without worrying about {worry}.",
    "To try {group} with {his} {rel} for the first session.",
    "To feel less lonely in the evenings, with something to look forward to each week.",
    "To have {service} in place {period}.",
    "To stay out of hospital this winter by spotting problems early with the nurse.",
    "To understand {his} benefits and what help {he} is entitled to.",
    "To have a plan that {his} {rel} and the carers all know, so that nobody is guessing.",
    "To keep the house warm and safe, with {service}.",
    "To go to {place} on {his} own {period}.",
    "To talk through {worry} with someone who understands.",
    "To write down what {he} wants to happen if {his} health gets worse.",
];

pub const RISKS_AND_CONCERNS: &[&str] = &[
    "{name} has had two falls in the last three months, both at night; no injuries but {he} could not get up for an hour.",
    "There is a risk of {worry}; we agreed how to reduce it together.",
    "{His} {condition} has been less stable; the nurse will monitor and liaise with the GP.",
    "{name} has lost weight since the last visit and is not always eating the meals left for {him}.",
    "There are concerns about {worry}, which {his} {rel} raised with me privately.",
    "The house was cold today and {name} was wearing a coat indoors.",
    "{name} has capacity to make this decision and understands the risks; {his} choice is respected.",
    "I noticed some unopened post and a reminder letter from the energy supplier.",
    "The pressure areas were checked and were intact; skin on the heels is fragile.",
    "{name} said {he} sometimes feels low but has no thoughts of harming {himself}.",
    "Medication was found in two places with some doses missed; a single supply has been agreed.",
    "{His} {rel} is showing signs of carer strain and said they are exhausted.",
    "The stairs are steep and the banister is loose; {name} goes up on {his} hands on bad days.",
    "No concerns about neglect or abuse were identified today.",
    "{name} is managing {condition} but struggles on the days after hospital appointments.",
];

pub const COMMUNITY_CONNECTIONS: &[&str] = &[
    "We talked about {group} and {name} is willing to give it a try.",
    "{name} already goes to {group} and would like to keep going, with transport if needed.",
    "I gave {him} details of {group}, and {his} {rel} offered to go along the first time.",
    "{name} was interested in volunteering at {group}, which would use {his} experience of {interest}.",
    "The community connector will visit to talk about {group} and what else is nearby.",
    "{name} did not want any groups at the moment, and that is {his} choice to make.",
    "We looked at the bus timetable together; the number 106 stops near {place}.",
    "The library runs digital help sessions on {day}s, which could help {him} stay in touch online.",
    "{name} used to go to {group} before {his} health changed and might go back with support.",
    "The community garden welcomes people who can only manage light jobs.",
    "{name} agreed to a referral to the befriending service for a weekly phone call.",
    "{His} faith community has offered lifts, and {name} was pleased to be asked.",
];

pub const FEEDBACK: &[&str] = &[
    "It was nice to be asked what I want for a change.",
    "Helpful, and I liked that you listened.",
    "I felt a bit rushed today but it was fine.",
    "Good to have someone to talk to about it all.",
    "I'm not sure it will make a difference, but we'll see.",
    "Thank you for explaining things properly.",
    "Too many questions, but I know you have to ask them.",
    "I feel more hopeful now there is a plan.",
];

pub const SAFEGUARDING_REASONS: &[&str] = &[
    "Unexplained bruising on both forearms; the explanation given did not fit the injuries.",
    "Financial abuse suspected: large cash withdrawals that the person could not explain.",
    "Self-neglect: no food in the house, soiled bedding and the heating off in cold weather.",
    "The person disclosed that a relative shouts at them and takes their pension.",
    "A visitor who would not give a name was in the house and answered for the person.",
];

/// Actions a worker or the person agrees to do, with who usually does them.
pub const ACTIONS: &[(&str, &str)] = &[
    ("Refer to the falls prevention service", "worker"),
    ("Request an occupational therapy assessment", "worker"),
    ("Ring the GP about the medication review", "worker"),
    ("Complete the Attendance Allowance form together", "worker"),
    ("Phone the energy supplier about the payment plan", "person"),
    ("Try the lunch club on Thursday", "person"),
    ("Arrange a carer's assessment", "worker"),
    ("Order a pendant alarm", "worker"),
    ("Collect the blister pack from the pharmacy", "family"),
    ("Book community transport for the renal appointment", "worker"),
    ("Check the heel dressing and re-dress", "nurse"),
    ("Recheck blood pressure next visit", "nurse"),
    ("Send details of the befriending service", "worker"),
    ("Talk to the landlord about the damp", "person"),
    ("Review the care package with the agency", "worker"),
    ("Bring the bus timetable next visit", "worker"),
];

/// Words a worker might go back and change: (typed first, replaced with).
pub const RETYPES: &[(&str, &str)] = &[
    ("very", "really"),
    ("good", "positive"),
    ("wants", "would like"),
    ("difficult", "hard"),
    ("family", "relatives"),
    ("often", "sometimes"),
    ("home", "house"),
    ("low", "flat"),
    ("visits", "calls in"),
];

/// Notes against assessment answers.
pub const ASSESSMENT_NOTES: &[&str] = &[
    "Manages with prompting from family; would struggle without it.",
    "Takes much longer than it used to and is exhausted afterwards.",
    "Cannot do this safely alone since the fall.",
    "Achieves this independently using adapted equipment.",
    "Relies on carers twice a day for this.",
    "Fluctuates: fine on good days, unable on bad days.",
    "Significant impact on wellbeing; describes feeling cut off.",
    "Wants to keep doing this and needs only light support.",
];

pub const DAYS: &[&str] = &[
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
