//! The caseload overview for multidisciplinary team meetings: people by risk tier (a chart and
//! the table it draws), overdue actions, and days since each person was last visited.

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use maud::{Markup, html};

use super::{Lead, PageError, layout};
use crate::AppState;
use crate::auth::blocking;
use crate::storage::CaseloadEntry;

const TIERS: [(&str, &str); 4] = [
    ("high", "High"),
    ("medium", "Medium"),
    ("low", "Low"),
    ("unknown", "Not yet known"),
];

pub fn router() -> Router<AppState> {
    Router::new().route("/review/caseload", get(show))
}

async fn show(State(state): State<AppState>, lead: Lead) -> Result<Markup, PageError> {
    let storage = state.storage.clone();
    let teams = lead.teams.clone();
    let today = chrono::Utc::now().date_naive();
    let people = blocking(move || storage.caseload(&teams, today)).await?;
    let now = chrono::Utc::now().timestamp();
    Ok(layout::page(
        "Caseload",
        Some(&lead),
        html! {
            h1 { "Caseload" }
            (chart(&people))
            (table(&people, now))
        },
    ))
}

fn counts(people: &[CaseloadEntry]) -> Vec<(&'static str, usize)> {
    TIERS
        .iter()
        .map(|(code, label)| (*label, people.iter().filter(|p| p.risk == *code).count()))
        .collect()
}

/// A bar per risk tier. The numbers are in the text beside each bar, and the table below
/// holds the same facts, so the picture is never the only way to read them.
fn chart(people: &[CaseloadEntry]) -> Markup {
    let counts = counts(people);
    let max = counts.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let (label_width, bar_width, row) = (130, 300, 34);
    let height = row * counts.len() + 10;
    let summary: Vec<String> = counts.iter().map(|(label, n)| format!("{label}: {n}")).collect();
    html! {
        h2 id="by-risk" { "People by risk tier" }
        svg.chart role="img" aria-labelledby="by-risk chart-summary" viewBox=(format!("0 0 {} {height}", label_width + bar_width + 60))
            xmlns="http://www.w3.org/2000/svg" {
            title id="chart-summary" { (summary.join(", ")) }
            @for (i, (label, n)) in counts.iter().enumerate() {
                @let y = i * row + 5;
                @let width = n * bar_width / max;
                text x="0" y=(y + 20) { (label) }
                rect x=(label_width) y=(y + 4) width=(width) height="22" fill=(colour(i)) {}
                text x=(label_width + width + 8) y=(y + 20) { (n) }
            }
        }
    }
}

fn colour(i: usize) -> &'static str {
    ["#8a1c1c", "#b35900", "#00703c", "#505a5f"][i % 4]
}

fn table(people: &[CaseloadEntry], now: i64) -> Markup {
    let overdue: usize = people.iter().map(|p| p.overdue_actions).sum();
    html! {
        h2 { "Everyone on the caseload" }
        p {
            (people.len()) (if people.len() == 1 { " person; " } else { " people; " })
            (overdue) (if overdue == 1 { " overdue action in all." } else { " overdue actions in all." })
        }
        @if !people.is_empty() {
            table {
                caption { "By risk tier, highest first" }
                thead {
                    tr {
                        th scope="col" { "Person" }
                        th scope="col" { "Risk tier" }
                        th scope="col" { "Days since last visit" }
                        th scope="col" { "Open actions" }
                        th scope="col" { "Overdue actions" }
                    }
                }
                tbody {
                    @for person in people {
                        tr {
                            td dir="auto" { a href=(format!("/review/people/{}", person.person)) { (person.name) } }
                            td { (TIERS.iter().find(|(c, _)| *c == person.risk).map_or("Not yet known", |(_, l)| *l)) }
                            td { (person.last_visit_at.map_or_else(|| "Never visited".to_string(), |at| ((now - at).max(0) / 86_400).to_string())) }
                            td { (person.open_actions) }
                            td {
                                (person.overdue_actions)
                                @if person.overdue_actions > 0 { " " span.tag.flag { "Overdue" } }
                            }
                        }
                    }
                }
            }
        }
    }
}
