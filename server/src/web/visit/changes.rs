//! "Changed since approval": the visit as approved (the heads the lead read, kept in the
//! approval) against the visit now, section by section.

use maud::{Markup, html};
use outpost_core::{Record, Review, ReviewAction, Section, Visit};

use super::section_label;

pub fn since_approval(record: &Record, now: &Visit, review: &Review) -> Markup {
    let approved = review
        .history
        .iter()
        .rev()
        .find(|s| s.action == ReviewAction::Approve)
        .and_then(|step| record.at(&step.visit_heads).ok())
        .and_then(|old| old.visit().ok());
    let Some(then) = approved else {
        return html! {
            section.notice aria-labelledby="changed" {
                h2 id="changed" { "Changed since approval" }
                p { "The visit was edited after it was approved." }
            }
        };
    };
    let sections: Vec<(Section, &str, &str)> = Section::ALL
        .iter()
        .map(|s| (*s, then.section(*s), now.section(*s)))
        .filter(|(_, before, after)| before != after)
        .collect();
    let mut other = Vec::new();
    if then.actions != now.actions {
        other.push("the agreed actions");
    }
    if then.safeguarding_concern != now.safeguarding_concern || then.safeguarding_reason != now.safeguarding_reason {
        other.push("the safeguarding concern");
    }
    if then.setting != now.setting || then.at != now.at {
        other.push("when or where the visit took place");
    }
    if then.helped != now.helped || then.feedback != now.feedback {
        other.push("the person's feedback");
    }
    html! {
        section.notice aria-labelledby="changed" {
            h2 id="changed" { "Changed since approval" }
            p { "The visit was edited after it was approved. It is back in the queue for review." }
            @for (section, before, after) in &sections {
                h3 { (section_label(*section)) }
                div.diff {
                    div { p { strong { "As approved" } } p.text dir="auto" { (before) } }
                    div { p { strong { "Now" } } p.text dir="auto" { (after) } }
                }
            }
            @if !other.is_empty() {
                p { "Also changed: " (other.join(", ")) "." }
            }
        }
    }
}
