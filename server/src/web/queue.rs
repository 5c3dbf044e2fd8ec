//! The review queue: visits across the lead's teams, filtered, newest first, a page at a time.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use chrono::NaiveDate;
use maud::{Markup, html};
use outpost_core::WorkerId;

use super::{Lead, PageError, layout, show_day, show_time, url_encode};
use crate::AppState;
use crate::auth::blocking;
use crate::storage::{QueueFilter, QueuePage, QueueState, Role, VisitListing};

/// Visits on one page of the queue.
pub const PAGE_SIZE: usize = 25;

pub fn router() -> Router<AppState> {
    Router::new().route("/review", get(queue))
}

/// The filter and page as the query string gives them, each checked by name.
fn parse(query: &HashMap<String, String>) -> Result<(QueueFilter, usize), PageError> {
    let get = |key: &str| query.get(key).map(|v| v.trim()).filter(|v| !v.is_empty());
    let day = |key: &str, name: &str| {
        get(key)
            .map(|v| {
                NaiveDate::parse_from_str(v, "%Y-%m-%d")
                    .map_err(|_| PageError::BadRequest(format!("{name}: {v:?} is not a date like 2026-03-31")))
            })
            .transpose()
    };
    let filter = QueueFilter {
        worker: get("worker")
            .map(|w| WorkerId::new(w).map_err(|e| PageError::BadRequest(format!("worker: {e}"))))
            .transpose()?,
        person: get("person").map(|p| p.chars().take(100).collect()),
        from: day("from", "from date")?,
        to: day("to", "to date")?,
        state: get("state")
            .map(|s| {
                QueueState::from_code(s)
                    .ok_or_else(|| PageError::BadRequest(format!("state: {s:?} is not a review state")))
            })
            .transpose()?
            .unwrap_or_default(),
        safeguarding_only: get("safeguarding").is_some(),
    };
    let page = get("page")
        .map(|p| {
            p.parse::<usize>()
                .ok()
                .filter(|p| (1..=100_000).contains(p))
                .ok_or_else(|| PageError::BadRequest(format!("page: {p:?} is not a page number")))
        })
        .transpose()?
        .unwrap_or(1);
    Ok((filter, page))
}

async fn queue(
    State(state): State<AppState>,
    lead: Lead,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Markup, PageError> {
    let (filter, page) = parse(&query)?;
    let storage = state.storage.clone();
    let teams = lead.teams.clone();
    let wanted = filter.clone();
    let (found, workers) = blocking(move || {
        let found = storage.queue(&teams, &wanted, (page - 1) * PAGE_SIZE, PAGE_SIZE)?;
        Ok((found, storage.team_workers(&teams)?))
    })
    .await?;
    let workers: Vec<(WorkerId, String)> = workers
        .into_iter()
        .filter(|(_, _, role)| *role == Role::Worker)
        .map(|(id, name, _)| (id, name))
        .collect();
    Ok(layout::page(
        "Review queue",
        Some(&lead),
        html! {
            h1 { "Review queue" }
            (filters(&filter, &workers))
            (results(&found, &filter, page))
        },
    ))
}

fn filters(filter: &QueueFilter, workers: &[(WorkerId, String)]) -> Markup {
    html! {
        form.filters method="get" action="/review" aria-label="Filter visits" {
            div.field {
                label for="state" { "Review state" }
                select id="state" name="state" {
                    @for state in QueueState::ALL {
                        option value=(state.code()) selected[state == filter.state] { (state.label()) }
                    }
                }
            }
            div.field {
                label for="worker" { "Worker" }
                select id="worker" name="worker" {
                    option value="" { "Anyone" }
                    @for (id, name) in workers {
                        option value=(id) selected[filter.worker.as_ref() == Some(id)] { (name) " (" (id) ")" }
                    }
                }
            }
            div.field {
                label for="person" { "Person's name" }
                input id="person" name="person" type="search" value=[filter.person.as_deref()];
            }
            div.field {
                label for="from" { "Visited from" }
                input id="from" name="from" type="date" value=[filter.from.map(|d| d.to_string())];
            }
            div.field {
                label for="to" { "Visited to" }
                input id="to" name="to" type="date" value=[filter.to.map(|d| d.to_string())];
            }
            div.field.check {
                input id="safeguarding" name="safeguarding" type="checkbox" value="1" checked[filter.safeguarding_only];
                " "
                label for="safeguarding" { "Safeguarding concerns only" }
            }
            button type="submit" { "Show visits" }
        }
    }
}

fn results(found: &QueuePage, filter: &QueueFilter, page: usize) -> Markup {
    let pages = found.total.div_ceil(PAGE_SIZE).max(1);
    html! {
        @if found.rows.is_empty() {
            p.empty role="status" { "No visits match." }
        } @else {
            table {
                caption role="status" {
                    (found.total) " " (if found.total == 1 { "visit" } else { "visits" })
                    ", newest first; page " (page) " of " (pages)
                }
                thead {
                    tr {
                        th scope="col" { "Visit" }
                        th scope="col" { "Person" }
                        th scope="col" { "Worker" }
                        th scope="col" { "Submitted" }
                        th scope="col" { "State" }
                    }
                }
                tbody {
                    @for row in &found.rows { (queue_row(row)) }
                }
            }
        }
        @if pages > 1 {
            nav.pages aria-label="Pages" {
                ul {
                    @if page > 1 {
                        li { a href=(page_link(filter, page - 1)) rel="prev" { "Previous page" } }
                    }
                    @if page < pages {
                        li { a href=(page_link(filter, page + 1)) rel="next" { "Next page" } }
                    }
                }
            }
        }
    }
}

fn queue_row(row: &VisitListing) -> Markup {
    html! {
        tr {
            td { a href=(format!("/review/visits/{}", row.visit)) { "Visit on " (show_day(row.visit_at)) } }
            td { a href=(format!("/review/people/{}", row.person)) { (row.person_name) } }
            td { (row.worker_name) }
            td { (row.submitted_at.map(show_time).unwrap_or_default()) }
            td { (state_tags(row)) }
        }
    }
}

/// The state as words, with the flags a lead must not miss.
pub fn state_tags(row: &VisitListing) -> Markup {
    html! {
        span.tag.state { (state_label(&row.state)) }
        @if row.changed_since_approval { " " span.tag.changed { "Changed since approval" } }
        @if row.safeguarding { " " span.tag.flag { "Safeguarding concern" } }
    }
}

pub fn state_label(code: &str) -> &'static str {
    match code {
        "submitted" => "Submitted",
        "approved" => "Approved",
        "returned" => "Returned",
        "draft" => "Draft",
        _ => "Unknown",
    }
}

fn page_link(filter: &QueueFilter, page: usize) -> String {
    let mut parts = vec![format!("state={}", filter.state.code())];
    if let Some(worker) = &filter.worker {
        parts.push(format!("worker={}", url_encode(worker.as_str())));
    }
    if let Some(person) = &filter.person {
        parts.push(format!("person={}", url_encode(person)));
    }
    if let Some(from) = filter.from {
        parts.push(format!("from={from}"));
    }
    if let Some(to) = filter.to {
        parts.push(format!("to={to}"));
    }
    if filter.safeguarding_only {
        parts.push("safeguarding=1".into());
    }
    parts.push(format!("page={page}"));
    format!("/review?{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn filters_parse_and_bad_values_are_named() {
        let (filter, page) = parse(&query(&[
            ("worker", "w1"),
            ("from", "2026-01-02"),
            ("state", "changed"),
            ("safeguarding", "1"),
            ("page", "3"),
        ]))
        .unwrap();
        assert_eq!(filter.worker.unwrap().as_str(), "w1");
        assert_eq!(filter.from, NaiveDate::from_ymd_opt(2026, 1, 2));
        assert_eq!(filter.state, QueueState::ChangedSinceApproval);
        assert!(filter.safeguarding_only);
        assert_eq!(page, 3);
        for (key, value, named) in [
            ("from", "02/01/2026", "from date"),
            ("to", "yesterday", "to date"),
            ("state", "lost", "state"),
            ("page", "0", "page"),
            ("page", "x", "page"),
        ] {
            match parse(&query(&[(key, value)])) {
                Err(PageError::BadRequest(message)) => assert!(message.starts_with(named), "{message}"),
                other => panic!("{key}={value}: {other:?}"),
            }
        }
    }

    #[test]
    fn page_links_keep_the_filter() {
        let (filter, _) = parse(&query(&[("person", "Ann & Bo"), ("to", "2026-02-01")])).unwrap();
        assert_eq!(
            page_link(&filter, 2),
            "/review?state=waiting&person=Ann%20%26%20Bo&to=2026-02-01&page=2"
        );
    }
}
