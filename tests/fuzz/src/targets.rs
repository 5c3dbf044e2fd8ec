//! One function per fuzz target. Each takes the raw input, handles whatever it is the way the
//! server or a device would, and panics only when a property fails: a decoder panicked, a
//! refusal did not say what it refused, a value did not survive encoding, or a refused input
//! changed something.
//!
//! Included by path from tests/tests/fuzz_corpus.rs as well, so submodules name their files.

#[path = "apply.rs"]
mod apply;
#[path = "documents.rs"]
mod documents;
#[path = "forms.rs"]
mod forms;
#[path = "scratch.rs"]
mod scratch;
#[path = "wire.rs"]
mod wire;

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, PanicHookInfo};
use std::sync::Once;

pub use apply::sync_apply;
pub use documents::{document_import, document_load, repair_checksums};
pub use forms::{enrolment, sign_in, sign_in_input};
pub use scratch::IMPORT_BASE_ID;
pub use wire::{sync_request, sync_response};

/// A target's body: panics only when a property fails.
pub type Target = fn(&[u8]);

/// Every target, by the name cargo-fuzz and the corpus directories use.
pub const TARGETS: &[(&str, Target)] = &[
    ("sync_request", sync_request),
    ("sync_response", sync_response),
    ("sync_apply", sync_apply),
    ("document_load", document_load),
    ("document_import", document_import),
    ("enrolment", enrolment),
    ("sign_in", sign_in),
];

/// Where panics were found by fuzzing in code this workspace does not own: Automerge panics on
/// some crafted bytes instead of returning an error (tests/fuzz/KNOWN.md), and Outpost does not
/// yet catch that. Until it does, the targets treat a panic raised in these crates as a refusal,
/// so fuzzing goes on past it to find anything else; a panic anywhere else is a crash.
pub const KNOWN_PANIC_SOURCES: &[&str] = &["/automerge-0.12", "/hexane-"];

thread_local! {
    /// Set by the panic hook when a panic on this thread was raised in a known source.
    static KNOWN_PANIC: Cell<bool> = const { Cell::new(false) };
}

static HOOK: Once = Once::new();

/// For the fuzz binaries, after libfuzzer-sys's own set-up (its hook aborts on every panic,
/// caught or not): panics from known sources unwind quietly to `tolerating_known`; any other is
/// reported and aborts as before.
pub fn install_panic_hook() {
    HOOK.call_once(|| install(true));
}

fn install(abort_on_others: bool) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
        let known = info
            .location()
            .is_some_and(|at| KNOWN_PANIC_SOURCES.iter().any(|source| at.file().contains(source)));
        KNOWN_PANIC.set(known);
        if known {
            // Quiet, since most are caught; OUTPOST_FUZZ_VERBOSE=1 shows them.
            if std::env::var_os("OUTPOST_FUZZ_VERBOSE").is_some() {
                eprintln!("known panic: {info}");
            }
            return;
        }
        previous(info);
        if abort_on_others {
            std::process::abort();
        }
    }));
}

/// Runs `f`; None if it panicked in a known source. Any other panic goes on unwinding.
pub fn tolerating_known<T>(f: impl FnOnce() -> T) -> Option<T> {
    // Under the test harness (the fuzz binaries installed theirs at start).
    HOOK.call_once(|| install(false));
    KNOWN_PANIC.set(false);
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => Some(value),
        Err(_) if KNOWN_PANIC.get() => None,
        Err(payload) => std::panic::resume_unwind(payload),
    }
}
