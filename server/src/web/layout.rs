//! The frame every page shares: a skip link, the header with navigation and sign-out, and the
//! main landmark the page's content goes in.

use maud::{DOCTYPE, Markup, html};

use super::Lead;

pub fn page(title: &str, lead: Option<&Lead>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en-GB" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " – Outpost review" }
                link rel="stylesheet" href="/assets/outpost.css";
            }
            body {
                a.skip href="#main" { "Skip to main content" }
                header.top {
                    p.brand { "Outpost review" }
                    @if let Some(lead) = lead {
                        nav aria-label="Main" {
                            ul {
                                li { a href="/review" { "Review queue" } }
                                li { a href="/review/caseload" { "Caseload" } }
                            }
                        }
                        form.sign-out method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(lead.csrf);
                            span { "Signed in as " (lead.name) }
                            " "
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" tabindex="-1" { (content) }
            }
        }
    }
}

/// A form's hidden anti-forgery field.
pub fn csrf_field(lead: &Lead) -> Markup {
    html! { input type="hidden" name="csrf" value=(lead.csrf); }
}
