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

use std::cell::RefCell;
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

/// Automerge 0.12 (and hexane, its column codec) panics on some crafted bytes instead of
/// returning an error (tests/fuzz/KNOWN.md); the core catches those panics where it hands
/// Automerge bytes from outside and refuses the bytes. libfuzzer-sys's panic hook aborts on every
/// panic, caught or not, so ours lets panics raised in these crates unwind to the core's catch,
/// and `caught` turns one that gets past it into a crash.
pub const CAUGHT_PANIC_SOURCES: &[&str] = &["/automerge-0.12", "/hexane-"];

thread_local! {
    /// The last panic on this thread raised in a caught source, as the hook saw it.
    static CAUGHT_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static HOOK: Once = Once::new();

/// For the fuzz binaries, after libfuzzer-sys's own set-up.
pub fn install_panic_hook() {
    HOOK.call_once(|| install(true));
}

fn install(abort_on_others: bool) {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
        let caught = info
            .location()
            .is_some_and(|at| CAUGHT_PANIC_SOURCES.iter().any(|source| at.file().contains(source)));
        if caught {
            // Quiet, since the core catches them; OUTPOST_FUZZ_VERBOSE=1 shows them.
            if std::env::var_os("OUTPOST_FUZZ_VERBOSE").is_some() {
                eprintln!("panic in Automerge (the core should catch it): {info}");
            }
            CAUGHT_PANIC.set(Some(info.to_string()));
            return;
        }
        previous(info);
        if abort_on_others {
            std::process::abort();
        }
    }));
}

/// Runs `f`, which hands Automerge bytes from outside through the core. A panic raised in
/// Automerge that the core did not catch becomes a crash naming it.
pub fn caught<T>(f: impl FnOnce() -> T) -> T {
    // Under the test harness (the fuzz binaries installed theirs at start).
    HOOK.call_once(|| install(false));
    CAUGHT_PANIC.set(None);
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(payload) => match CAUGHT_PANIC.take() {
            Some(panic) => panic!("a panic in Automerge got past the core: {panic}"),
            None => std::panic::resume_unwind(payload),
        },
    }
}
