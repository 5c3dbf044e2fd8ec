//! A device's store kept between a target's inputs (opening one costs more than most inputs),
//! holding one visit as saved by a real device (`IMPORT_BASE`).

use std::cell::RefCell;
use std::thread::LocalKey;

use outpost_core::{Author, DeviceId, DocId, Section, Store, WorkerId};

/// The visit the scratch stores hold, saved whole. The seed generator
/// (tests/tests/fuzz_corpus.rs) writes it beside the seeds made as changes on top of it.
const IMPORT_BASE: &[u8] = include_bytes!("../fixtures/import_base.automerge");
/// The id the scratch stores hold `IMPORT_BASE` under.
pub const IMPORT_BASE_ID: &str = "fuzz-visit";
/// A scratch store is replaced after this many inputs, so documents earlier inputs brought do
/// not pile up for ever.
const SCRATCH_INPUTS: u32 = 20_000;

pub(super) struct Scratch {
    pub store: Store,
    pub existing: DocId,
    inputs: u32,
    _dir: tempfile::TempDir,
}

pub(super) type ScratchCell = RefCell<Option<Scratch>>;

impl Scratch {
    /// With `own_edit`, the store has also typed into the visit, a change no server has
    /// acknowledged.
    fn open(own_edit: bool) -> Scratch {
        // In memory where there is a tmpfs: the store syncs every commit to disk.
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::Builder::new().prefix("outpost-fuzz").tempdir_in(shm)
        } else {
            tempfile::tempdir()
        };
        let dir = match dir {
            Ok(dir) => dir,
            Err(e) => panic!("no scratch directory: {e}"),
        };
        let author = Author::new(worker("fuzz"), device("fuzz-device"));
        let mut store = match Store::open(dir.path().join("scratch.sqlite3"), author) {
            Ok(store) => store,
            Err(e) => panic!("the scratch store does not open: {e}"),
        };
        let existing = doc_id(IMPORT_BASE_ID);
        if let Err(e) = store.import_changes(&existing, IMPORT_BASE) {
            panic!("the import base does not import (write the seeds again): {e}");
        }
        if own_edit && let Err(e) = store.edit_visit(&existing, |v| v.splice(Section::Goals, 0, 0, "Own words. ")) {
            panic!("the scratch store cannot edit its visit: {e}");
        }
        Scratch {
            store,
            existing,
            inputs: 0,
            _dir: dir,
        }
    }
}

/// Runs `f` on this thread's scratch store in `cell`, opening a fresh one at first and after
/// every `SCRATCH_INPUTS` inputs.
pub(super) fn with_scratch<R>(
    cell: &'static LocalKey<ScratchCell>,
    own_edit: bool,
    f: impl FnOnce(&mut Scratch) -> R,
) -> R {
    cell.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.as_ref().is_some_and(|s| s.inputs >= SCRATCH_INPUTS) {
            *cell = None;
        }
        let scratch = cell.get_or_insert_with(|| Scratch::open(own_edit));
        scratch.inputs += 1;
        f(scratch)
    })
}

pub(super) fn doc_id(id: &str) -> DocId {
    match DocId::new(id) {
        Ok(id) => id,
        Err(e) => panic!("{id}: {e}"),
    }
}

fn worker(id: &str) -> WorkerId {
    match WorkerId::new(id) {
        Ok(id) => id,
        Err(e) => panic!("{id}: {e}"),
    }
}

fn device(id: &str) -> DeviceId {
    match DeviceId::new(id) {
        Ok(id) => id,
        Err(e) => panic!("{id}: {e}"),
    }
}
