//! Encryption at rest. A device's store is a SQLCipher database (documents, index, full-text
//! index and WAL alike) under a raw 256-bit key that the app keeps in the platform keystore
//! (Android Keystore, iOS Keychain). A raw key skips SQLCipher's PBKDF2, so opening an encrypted
//! store costs what opening a plain one does, plus decrypting the pages it reads.
//!
//! Every connection to a store is made here: the key is the first statement on it, and a read
//! proves the key before anything else touches the file. A store written before encryption is
//! encrypted on its first keyed open by writing an encrypted copy beside it and renaming that
//! over it, so a crash at any point leaves one store or the other, never half of each.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, params};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Length of a store key: 256 bits.
pub const KEY_LEN: usize = 32;

/// How every plaintext SQLite file begins. A SQLCipher file begins with its random salt.
const PLAINTEXT_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Suffix of the encrypted copy a plaintext store is written to before it replaces the store.
const ENCRYPTING: &str = ".encrypting";

/// A store's raw 256-bit key. Never printed, and wiped from memory when dropped.
#[derive(Clone)]
pub struct StoreKey(Zeroizing<[u8; KEY_LEN]>);

impl StoreKey {
    /// Takes the key's bytes, which must be exactly `KEY_LEN` (32).
    pub fn new(bytes: &[u8]) -> Result<Self> {
        let bytes: [u8; KEY_LEN] = bytes.try_into().map_err(|_| {
            Error::invalid(
                "key",
                format!("must be {KEY_LEN} bytes (256 bits), got {}", bytes.len()),
            )
        })?;
        Ok(Self(Zeroizing::new(bytes)))
    }

    /// SQLCipher's raw-key literal, `x'<64 hex digits>'`: a key given this way is used as it is,
    /// with no key derivation.
    fn literal(&self) -> Zeroizing<String> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        // Sized exactly, so no reallocation leaves a copy of the key behind.
        let mut out = Zeroizing::new(String::with_capacity(2 * KEY_LEN + 3));
        out.push_str("x'");
        for byte in self.0.iter() {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        out.push('\'');
        out
    }

    /// `PRAGMA <pragma> = "x'...'"`. A pragma takes no bound parameters, so the key is in the
    /// statement's text; `scrub` keeps that text out of any error.
    fn pragma(&self, pragma: &str) -> Zeroizing<String> {
        let literal = self.literal();
        let mut sql = Zeroizing::new(String::with_capacity(pragma.len() + literal.len() + 14));
        sql.push_str("PRAGMA ");
        sql.push_str(pragma);
        sql.push_str(" = \"");
        sql.push_str(&literal);
        sql.push('"');
        sql
    }
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKey(<redacted>)")
    }
}

/// Opens a connection to the store at `path` and proves that `key` opens it; the caller then
/// configures it. With a key, a plaintext store is encrypted under it first. A store the key
/// (or the lack of one) does not open is refused with `WrongKey`, and left exactly as it was.
pub(crate) fn connect(path: &Path, key: Option<&StoreKey>) -> Result<Connection> {
    discard_unfinished_copy(path);
    if let Some(key) = key
        && on_disk(path)? == OnDisk::Plaintext
    {
        encrypt(path, key)?;
    }
    // Read-only on a read-only disk, so what was saved can still be read.
    let conn = super::disk::connection(path)?;
    if let Some(key) = key {
        // The first statement on the connection: SQLCipher reads nothing before it has a key.
        conn.execute_batch(&key.pragma("key")).map_err(scrub)?;
    }
    prove(&conn, key.is_some())?;
    Ok(conn)
}

/// Re-encrypts the store under `new_key` (SQLCipher rewrites every page in one transaction, so a
/// crash leaves it under one key or the other), then proves the new key opens it from disk.
pub(crate) fn rekey(conn: &Connection, new_key: &StoreKey) -> Result<()> {
    conn.execute_batch(&new_key.pragma("rekey")).map_err(scrub)?;
    // Every page was rewritten under the new key, so the WAL's frames under the old one are
    // superseded; emptying the WAL also takes them off the disk. A reader elsewhere only delays
    // that to a later checkpoint.
    if let Err(e) = checkpoint(conn) {
        tracing::warn!(error = %e, "the WAL could not be emptied after a rekey");
    }
    if let Some(path) = conn.path().filter(|p| !p.is_empty()) {
        let check = Connection::open(path)?;
        check.execute_batch(&new_key.pragma("key")).map_err(scrub)?;
        prove(&check, true).map_err(|e| match e {
            Error::WrongKey(_) => Error::Internal("the store does not open with its new key after a rekey".into()),
            other => other,
        })?;
    }
    Ok(())
}

/// `rekey` for a store not held open (a device that has not enrolled yet).
pub(crate) fn rekey_file(path: &Path, old_key: &StoreKey, new_key: &StoreKey) -> Result<()> {
    let conn = connect(path, Some(old_key))?;
    rekey(&conn, new_key)
}

/// Encrypts the plaintext store at `path` under `key`: an encrypted copy is written beside it,
/// synced, and renamed over it.
fn encrypt(path: &Path, key: &StoreKey) -> Result<()> {
    let copy = sibling(path, ENCRYPTING);
    let copy_name = copy
        .to_str()
        .ok_or_else(|| Error::invalid("store path", format!("{} is not UTF-8", path.display())))?;
    let conn = Connection::open(path)?;
    prove(&conn, false)?;
    // The WAL's pages go into the main file first (this also recovers a WAL a crash left), so
    // the copy holds every committed change and no plaintext WAL is left to pair with it.
    checkpoint(&conn)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    conn.execute(
        "ATTACH DATABASE ?1 AS encrypted KEY ?2",
        params![copy_name, key.literal().as_str()],
    )
    .map_err(scrub)?;
    conn.query_row("SELECT sqlcipher_export('encrypted')", [], |_| Ok(()))?;
    // `sqlcipher_export` copies the schema and rows, not the header's schema version.
    conn.pragma_update(Some("encrypted"), "user_version", version)?;
    conn.execute_batch("DETACH DATABASE encrypted")?;
    conn.close().map_err(|(_, e)| e)?;

    sync(&copy)?;
    rename(&copy, path)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    // Closing the plaintext store removed its WAL and shared memory; a crash between the close
    // and here could leave them, checkpointed and empty: harmless, but they belong to the old
    // file.
    for suffix in ["-wal", "-shm"] {
        if let Err(e) = remove_if_present(&sibling(path, suffix)) {
            tracing::warn!(error = %e, "a plaintext store's empty WAL file could not be removed");
        }
    }
    tracing::info!(path = %path.display(), "a plaintext store was encrypted");
    Ok(())
}

/// A crash while encrypting leaves the unfinished copy, never renamed: the store beside it is
/// still the plaintext one, so the copy is deleted and encrypting starts again. Nothing reads
/// the copy, so one that cannot be deleted (a read-only disk) is only reported, and replacing
/// it, if it comes to that, fails then.
fn discard_unfinished_copy(path: &Path) {
    let copy = sibling(path, ENCRYPTING);
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let file = sibling(&copy, suffix);
        // Looked for first: on a read-only disk even removing a missing file fails.
        if fs::symlink_metadata(&file).is_ok()
            && let Err(e) = remove_if_present(&file)
        {
            tracing::warn!(error = %e, "an unfinished encrypted copy of the store could not be removed");
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum OnDisk {
    /// No file, or an empty one: SQLite writes a new store.
    Empty,
    Plaintext,
    /// Encrypted, or not a store at all; only a key tells which.
    Other,
}

fn on_disk(path: &Path) -> Result<OnDisk> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(OnDisk::Empty),
        Err(e) => return Err(file_error("read", path, e)),
    };
    let mut header = [0u8; 16];
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(file_error("read", path, e)),
        }
    }
    Ok(match read {
        0 => OnDisk::Empty,
        _ if &header == PLAINTEXT_HEADER => OnDisk::Plaintext,
        _ => OnDisk::Other,
    })
}

/// Reads the schema: the first read of the file, which fails when the key is wrong or missing.
fn prove(conn: &Connection, keyed: bool) -> Result<()> {
    match conn.query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get::<_, i64>(0)) {
        Ok(_) => Ok(()),
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::NotADatabase) => Err(Error::WrongKey(if keyed {
            "this key does not open the store".into()
        } else {
            "the store is encrypted: it opens only with its key".into()
        })),
        Err(e) => Err(e.into()),
    }
}

/// Moves every page in the WAL into the main file and empties the WAL.
fn checkpoint(conn: &Connection) -> Result<()> {
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
    if busy != 0 {
        return Err(Error::Storage(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            Some("the store is open elsewhere; close it there first".into()),
        )));
    }
    Ok(())
}

/// An error from a statement whose text holds the key, without that text.
fn scrub(error: rusqlite::Error) -> Error {
    match error {
        rusqlite::Error::SqlInputError { error, msg, .. } => {
            Error::Storage(rusqlite::Error::SqliteFailure(error, Some(msg)))
        }
        other => Error::Storage(other),
    }
}

/// `path` with `suffix` appended to its file name, as SQLite names a store's `-wal`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

fn sync(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| file_error("sync", path, e))
}

/// Makes a rename in `dir` durable. Directories cannot be opened for syncing on Windows, which
/// is not a target.
fn sync_dir(dir: &Path) -> Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    if cfg!(unix) {
        sync(dir)?;
    }
    Ok(())
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| file_error("rename", from, e))
}

fn remove_if_present(path: &Path) -> Result<()> {
    // Asked first: on a read-only disk, removing even a missing file fails as read-only.
    if fs::symlink_metadata(path).is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
        return Ok(());
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(file_error("remove", path, e)),
    }
}

fn file_error(action: &'static str, path: &Path, source: io::Error) -> Error {
    Error::File {
        action,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_never_prints_and_its_literal_is_raw_hex() {
        let key = StoreKey::new(&[0xab; KEY_LEN]).expect("key");
        assert_eq!(format!("{key:?}"), "StoreKey(<redacted>)");
        assert_eq!(key.literal().as_str(), format!("x'{}'", "ab".repeat(KEY_LEN)));
        assert_eq!(
            key.pragma("key").as_str(),
            format!("PRAGMA key = \"x'{}'\"", "ab".repeat(KEY_LEN))
        );
    }

    #[test]
    fn a_key_of_another_length_is_invalid_input() {
        let err = StoreKey::new(&[1; 16]).expect_err("short key");
        assert!(
            matches!(&err, Error::InvalidInput { field, .. } if field == "key"),
            "{err}"
        );
    }
}
