//! How a device leaves service, and the offline lease that locks it when it stays away.
//!
//! - Revoked (lost or stolen): the server refuses the credential with `revoked`, and the device
//!   wipes its store at once, unsent changes included.
//! - Retired (handed in): the server says `retire`; the device takes no new edits, sends
//!   everything it holds, says it is ready, and wipes once the server records the retirement.
//!   It never says so with anything unacknowledged, so the wipe loses nothing.
//! - Never seen again: each sync brings a lease the server signed. Past its expiry, or with the
//!   clock set back before a time already seen, records are locked until a sync succeeds.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Device, Inner, Link, lock, peer, poisoned};
use crate::error::{Error, Result};
use crate::net::SyncReport;
use crate::store::{Standing, Store};
use crate::sync::wire::Lease;

/// Where the device's "now" comes from: the system clock, or a test's.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Unix seconds.
    fn now(&self) -> i64;
}

/// The phone's own clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        chrono::Utc::now().timestamp()
    }
}

impl Device {
    /// Replaces the clock leases are checked against (tests move it days ahead, or back).
    pub fn set_clock(&self, clock: Arc<dyn Clock>) -> Result<()> {
        *self.inner.clock.write().map_err(|_| poisoned())? = clock;
        Ok(())
    }
}

impl Inner {
    pub(super) fn now(&self) -> i64 {
        match self.clock.read() {
            Ok(clock) => clock.now(),
            Err(_) => SystemClock.now(),
        }
    }

    /// Refuses to show records while the store is locked.
    pub(super) fn check_readable(&self, store: &mut Store) -> Result<()> {
        self.check(store, |standing, now| standing.lock_reason(now))
    }

    /// As `check_readable`, and also refuses edits while the device is being retired.
    pub(super) fn check_writable(&self, store: &mut Store) -> Result<()> {
        self.check(store, |standing, now| standing.edit_lock_reason(now))
    }

    /// Notes the clock's reading, locked or not (a clock run ahead and put back is then seen
    /// as set back), and refuses when `reason` gives one. A reading that cannot be written (a
    /// full disk) does not stop a read.
    fn check(&self, store: &mut Store, reason: impl FnOnce(&Standing, i64) -> Option<String>) -> Result<()> {
        let now = self.now();
        let locked = reason(&store.standing()?, now);
        if let Err(e) = store.observe_time(now) {
            tracing::warn!(error = %e, "the clock's reading could not be kept");
        }
        match locked {
            Some(reason) => Err(Error::Locked(reason)),
            None => Ok(()),
        }
    }

    /// Pins the server key enrolment gave and keeps the first lease. An older server sends
    /// neither: the device then pins the key of the first lease a sync brings.
    pub(super) fn adopt_enrolment(&self, link: &Link, server_key: Option<&[u8]>, lease: Option<&Lease>) -> Result<()> {
        // The enrolment is saved by now and stands whatever happens here: a key that cannot be
        // pinned leaves the first lease's to be pinned, and the next sync brings a lease.
        let mut store = lock(&link.store)?;
        if let Some(key) = server_key
            && let Err(e) = store.pin_server_key(key)
        {
            tracing::warn!(error = %e, "the server key given at enrolment was not pinned");
        }
        if let Some(lease) = lease
            && let Err(e) = store.accept_lease(lease)
        {
            tracing::warn!(error = %e, "the lease given at enrolment was refused");
        }
        if let Err(e) = store.observe_time(self.now()) {
            tracing::warn!(error = %e, "the clock's reading could not be kept");
        }
        Ok(())
    }

    /// Acts on what a sync said about this device's service: wipes a revoked device, and a
    /// retired one that holds nothing unacknowledged; otherwise notes the time.
    pub(super) fn settle(&self, link: &Link, result: &Result<SyncReport>) -> Result<()> {
        match result {
            Ok(report) if report.progress.retired => self.wipe_when_all_sent(
                link,
                "this device was retired: everything on it reached the server, and its store was wiped",
            ),
            Ok(_) => {
                let now = self.now();
                lock(&link.store)?.observe_time(now)
            }
            Err(Error::Revoked(message)) => {
                tracing::warn!(%message, "this device was revoked; wiping its store");
                self.wipe(
                    Some(link),
                    &format!("this device was revoked ({message}); its store was wiped"),
                )
            }
            Err(Error::Retired(message)) => self.wipe_when_all_sent(
                link,
                &format!("this device was retired ({message}); its store was wiped"),
            ),
            Err(_) => Ok(()),
        }
    }

    /// A retired device wipes only with nothing unacknowledged. It said it was ready with
    /// nothing pending and has taken no edits since, so this holds; if it somehow does not,
    /// the changes stay and the app is told.
    fn wipe_when_all_sent(&self, link: &Link, reason: &str) -> Result<()> {
        let pending = lock(&link.store)?.pending_docs(&peer(&link.enrolment.server))?.len();
        if pending > 0 {
            tracing::error!(pending, "retired with changes the server lacks; the store is kept");
            return Err(Error::Retired(format!(
                "the server retired this device, but {pending} record(s) on it were never \
                 acknowledged; they are kept on this device"
            )));
        }
        self.wipe(Some(link), reason)
    }

    /// Closes the store and deletes its files (the enrolment is in them); the device then
    /// reports itself wiped and not enrolled, and a reopen finds an empty store.
    pub(super) fn wipe(&self, link: Option<&Link>, reason: &str) -> Result<()> {
        // From the automatic sync thread itself this does not wait for that thread.
        let auto = lock(&self.auto)?.take();
        drop(auto);
        let taken = self.link.write().map_err(|_| poisoned())?.take();
        *lock(&self.wiped)? = Some(reason.to_string());
        for link in taken.iter().chain(link) {
            if let Ok(mut client) = link.client.lock() {
                client.set_credential(None);
                client.disconnect();
            }
            // Waits for a read or write in progress on another thread, then closes.
            lock(&link.store)?.close_for_wipe()?;
        }
        let removed = delete_store_files(&self.path);
        self.notify_status();
        removed
    }

    pub(super) fn wiped(&self) -> Option<String> {
        self.wiped.lock().ok().and_then(|w| w.clone())
    }
}

/// The store's file and every file SQLite or encryption keeps beside it, then the directory
/// entry made durable.
fn delete_store_files(path: &Path) -> Result<()> {
    let encrypting = sibling(path, ".encrypting");
    for base in [path.to_path_buf(), encrypting] {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let file = sibling(&base, suffix);
            match fs::remove_file(&file) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => {
                    return Err(Error::File {
                        action: "remove",
                        path: file,
                        source: e,
                    });
                }
                _ => {}
            }
        }
    }
    if cfg!(unix)
        && let Some(dir) = path.parent()
    {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| Error::File {
                action: "sync",
                path: dir.to_path_buf(),
                source,
            })?;
    }
    Ok(())
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}
