//! The admin CLI's `subject-access` command: the export as HTML or JSON, printed or written to
//! a new file, and audited as done by "admin".

use std::io::Write;
use std::path::Path;

use outpost_core::PersonId;

use crate::error::{Error, Result};
use crate::storage::{AuditEntry, Storage};
use crate::web::subject_access::{AUDIT_ACTION, document};

/// Returns what to print: the export itself, or where it was written.
pub fn run(storage: &dyn Storage, person: &PersonId, json: bool, out: Option<&Path>) -> Result<String> {
    let export = super::gather(storage, person)?;
    let (form, text) = if json {
        let value = super::to_json(&export);
        let text = serde_json::to_string_pretty(&value)
            .map_err(|e| Error::Internal(format!("writing the export as JSON: {e}")))?;
        ("json", text)
    } else {
        ("html", document(&export))
    };
    let (detail, printed) = match out {
        Some(path) => {
            write_new(path, &text)?;
            (
                format!("{form} to {}", path.display()),
                format!(
                    "wrote the subject access export of person {person} ({form}) to {}",
                    path.display()
                ),
            )
        }
        None => (format!("{form}, printed"), text),
    };
    // Where a copy of someone's whole record went belongs in the audit log, as for a backup.
    storage.audit(&AuditEntry {
        at: chrono::Utc::now().timestamp(),
        who: "admin".into(),
        action: AUDIT_ACTION.into(),
        subject: person.to_string(),
        detail,
        from: String::new(),
    })?;
    Ok(printed)
}

/// Writes a file that must not exist yet (an export never replaces another file), readable by
/// its owner only: it holds a person's whole record.
fn write_new(path: &Path, text: &str) -> Result<()> {
    let failed = |e: std::io::Error| Error::bad("--out", format!("{}: {e}", path.display()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(failed)?;
    file.write_all(text.as_bytes()).map_err(failed)?;
    file.sync_all().map_err(failed)
}
