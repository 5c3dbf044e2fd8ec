//! A proportionate assessment: a template, and answers to only the sections that are needed.

use automerge::{AutoCommit, ObjType, ROOT, transaction::Transactable};
use chrono::{DateTime, Utc};

use super::fields::{self, Field, scalar_enum};
use super::header::{self, DocType};
use crate::error::{Error, Result};
use crate::ids::{DocId, PersonId, WorkerId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Achieves,
    AchievesWithDifficulty,
    CannotAchieve,
    NotAssessed,
}

scalar_enum!(Outcome {
    Achieves => "achieves",
    AchievesWithDifficulty => "achieves_with_difficulty",
    CannotAchieve => "cannot_achieve",
    NotAssessed => "not_assessed",
});

#[derive(Debug, PartialEq, Eq)]
pub struct Question {
    pub id: &'static str,
    pub text: &'static str,
}

#[derive(Debug, PartialEq, Eq)]
pub struct TemplateSection {
    pub id: &'static str,
    pub title: &'static str,
    pub questions: &'static [Question],
}

#[derive(Debug, PartialEq, Eq)]
pub struct Template {
    pub id: &'static str,
    pub version: i64,
    pub title: &'static str,
    pub sections: &'static [TemplateSection],
}

impl Template {
    pub fn section_of(&self, question: &str) -> Option<&TemplateSection> {
        self.sections
            .iter()
            .find(|s| s.questions.iter().any(|q| q.id == question))
    }
}

/// The Care Act 2014 eligibility outcomes (Care and Support (Eligibility Criteria) Regulations
/// 2014, reg. 2(2)), grouped so a worker can include only the parts of life that need assessing.
pub const CARE_ACT_OUTCOMES: Template = Template {
    id: "care-act-2014-outcomes",
    version: 1,
    title: "Care Act 2014 eligibility outcomes",
    sections: &[
        TemplateSection {
            id: "daily_living",
            title: "Daily living",
            questions: &[
                Question {
                    id: "nutrition",
                    text: "Managing and maintaining nutrition",
                },
                Question {
                    id: "personal_hygiene",
                    text: "Maintaining personal hygiene",
                },
                Question {
                    id: "toileting",
                    text: "Managing toilet needs",
                },
                Question {
                    id: "clothing",
                    text: "Being appropriately clothed",
                },
            ],
        },
        TemplateSection {
            id: "home",
            title: "Home",
            questions: &[
                Question {
                    id: "home_safety",
                    text: "Being able to make use of the home safely",
                },
                Question {
                    id: "habitable_home",
                    text: "Maintaining a habitable home environment",
                },
            ],
        },
        TemplateSection {
            id: "relationships_and_community",
            title: "Relationships and community",
            questions: &[
                Question {
                    id: "relationships",
                    text: "Developing and maintaining family or other personal relationships",
                },
                Question {
                    id: "work_training_volunteering",
                    text: "Accessing and engaging in work, training, education or volunteering",
                },
                Question {
                    id: "community_services",
                    text: "Making use of necessary facilities or services in the local community, including public transport and recreational facilities or services",
                },
            ],
        },
        TemplateSection {
            id: "caring",
            title: "Caring responsibilities",
            questions: &[Question {
                id: "caring_for_child",
                text: "Carrying out any caring responsibilities the adult has for a child",
            }],
        },
    ],
};

/// Templates this build knows, by id and version.
pub fn template(id: &str, version: i64) -> Option<&'static Template> {
    [&CARE_ACT_OUTCOMES]
        .into_iter()
        .find(|t| t.id == id && t.version == version)
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewAssessment {
    pub person: PersonId,
    pub assessor: WorkerId,
    pub at: DateTime<Utc>,
    pub template_id: String,
    pub template_version: i64,
    /// Section ids to include; proportionate means only these are asked.
    pub sections: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub question: String,
    pub outcome: Field<Outcome>,
    pub note: Option<Field<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub id: DocId,
    pub schema: i64,
    pub person: PersonId,
    pub assessor: Field<String>,
    pub at: Field<DateTime<Utc>>,
    pub template_id: String,
    pub template_version: i64,
    pub sections: Vec<String>,
    /// Answers given so far; a question in an included section with no answer is not assessed.
    pub answers: Vec<Answer>,
}

fn known_template(id: &str, version: i64) -> Result<&'static Template> {
    template(id, version).ok_or_else(|| {
        Error::invalid(
            "template",
            format!("unknown assessment template {id} version {version}"),
        )
    })
}

pub(crate) fn create(doc: &mut AutoCommit, new: &NewAssessment) -> Result<()> {
    let template = known_template(&new.template_id, new.template_version)?;
    for section in &new.sections {
        if !template.sections.iter().any(|s| s.id == section) {
            return Err(Error::invalid(
                "assessment section",
                format!("{section:?} is not in template {}", template.id),
            ));
        }
    }
    header::write(doc, DocType::Assessment, &new.person)?;
    fields::put(doc, &ROOT, "assessor", &new.assessor.as_str().to_string())?;
    fields::put(doc, &ROOT, "at", &new.at)?;
    fields::put(doc, &ROOT, "template_id", &new.template_id)?;
    fields::put(doc, &ROOT, "template_version", &new.template_version)?;
    let sections = doc.put_object(&ROOT, "sections", ObjType::Map)?;
    for section in &new.sections {
        fields::put(doc, &sections, section, &true)?;
    }
    // Answers and notes are flat maps keyed by question id, so two people answering the same
    // question at once give one field with two values rather than two hidden objects.
    doc.put_object(&ROOT, "answers", ObjType::Map)?;
    doc.put_object(&ROOT, "notes", ObjType::Map)?;
    Ok(())
}

pub(crate) fn read(doc: &AutoCommit, id: &DocId) -> Result<Assessment> {
    let header = header::expect(doc, id, DocType::Assessment)?;
    let sections_obj = fields::object(doc, &ROOT, "sections", ObjType::Map)?;
    let answers_obj = fields::object(doc, &ROOT, "answers", ObjType::Map)?;
    let notes_obj = fields::object(doc, &ROOT, "notes", ObjType::Map)?;
    let mut answers = Vec::new();
    for question in automerge::ReadDoc::keys(doc, &answers_obj) {
        if let Some(outcome) = fields::get_field(doc, &answers_obj, &question)? {
            let note = fields::get_field(doc, &notes_obj, &question)?;
            answers.push(Answer {
                question,
                outcome,
                note,
            });
        }
    }
    Ok(Assessment {
        id: id.clone(),
        schema: header.schema,
        person: header.person,
        assessor: fields::require_field(doc, &ROOT, "assessor")?,
        at: fields::require_field(doc, &ROOT, "at")?,
        template_id: fields::require_field(doc, &ROOT, "template_id")?.value,
        template_version: fields::require_field(doc, &ROOT, "template_version")?.value,
        sections: fields::true_keys(doc, &sections_obj),
        answers,
    })
}

#[derive(Debug)]
pub struct AssessmentEditor<'a> {
    pub(crate) doc: &'a mut AutoCommit,
}

impl AssessmentEditor<'_> {
    fn template(&self) -> Result<&'static Template> {
        let id: String = fields::require_field(self.doc, &ROOT, "template_id")?.value;
        let version: i64 = fields::require_field(self.doc, &ROOT, "template_version")?.value;
        known_template(&id, version)
    }

    /// Answers a question; it must exist in the template and its section must be included.
    pub fn answer(&mut self, question: &str, outcome: Outcome, note: Option<&str>) -> Result<()> {
        let template = self.template()?;
        let section = template.section_of(question).ok_or_else(|| {
            Error::invalid(
                "question",
                format!("{question:?} is not a question in template {}", template.id),
            )
        })?;
        let sections = fields::object(self.doc, &ROOT, "sections", ObjType::Map)?;
        if !fields::true_keys(self.doc, &sections).iter().any(|s| s == section.id) {
            return Err(Error::invalid(
                "question",
                format!(
                    "{question:?} belongs to section {:?}, which this assessment does not include",
                    section.id
                ),
            ));
        }
        let answers = fields::object(self.doc, &ROOT, "answers", ObjType::Map)?;
        let notes = fields::object(self.doc, &ROOT, "notes", ObjType::Map)?;
        fields::put(self.doc, &answers, question, &outcome)?;
        fields::put_opt(self.doc, &notes, question, note.map(str::to_string).as_ref())
    }

    /// Includes or leaves out a section; leaving one out keeps its answers in the document.
    pub fn include_section(&mut self, section: &str, included: bool) -> Result<()> {
        let template = self.template()?;
        if !template.sections.iter().any(|s| s.id == section) {
            return Err(Error::invalid(
                "assessment section",
                format!("{section:?} is not in template {}", template.id),
            ));
        }
        let sections = fields::object(self.doc, &ROOT, "sections", ObjType::Map)?;
        fields::put(self.doc, &sections, section, &included)
    }
}
