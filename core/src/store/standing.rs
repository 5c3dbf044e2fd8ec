//! The device's standing with its server: the server key pinned at enrolment, the offline lease
//! from the last sync, the latest time the device has seen, and a retirement in progress. The
//! sync engine records what the server says; the façade asks `Standing::lock_reason` before it
//! shows or changes records.

use chrono::DateTime;
use rusqlite::{OptionalExtension, params};

use crate::error::{Error, Result};
use crate::store::Store;
use crate::sync::wire::Lease;

/// Two honest clocks (the phone's and the server's) may disagree by this much before a reading
/// earlier than a time already seen counts as the clock being set back.
pub const CLOCK_TOLERANCE_SECS: i64 = 10 * 60;

/// Clock readings are written down at most this often: each write is an fsync.
const SEEN_EVERY_SECS: i64 = 60;

/// Where the device stands, as the store remembers it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Standing {
    /// The Ed25519 key leases must be signed with (pinned at enrolment).
    pub server_key: Option<Vec<u8>>,
    /// The newest verified lease; None before the server ever sent one.
    pub lease: Option<LeaseTerm>,
    /// The latest time seen (unix seconds): the clock's readings, reset to the server's time
    /// whenever a lease arrives.
    pub latest_seen: i64,
    /// The server asked this device to retire; it takes no new edits.
    pub retiring: bool,
}

/// A verified lease's times (unix seconds, server clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTerm {
    pub issued_at: i64,
    pub expires_at: i64,
}

impl Standing {
    /// Why records may not be shown at `now` (unix seconds), if they may not.
    ///
    /// A device without a lease is not locked: the server has never issued one (an older server,
    /// or a store enrolled before leases that has not synced since).
    pub fn lock_reason(&self, now: i64) -> Option<String> {
        if now + CLOCK_TOLERANCE_SECS < self.latest_seen {
            return Some(format!(
                "this device's clock reads {}, earlier than {} which it has already seen; records \
                 stay locked until the date and time are set right (or a sync succeeds)",
                time(now),
                time(self.latest_seen)
            ));
        }
        match self.lease {
            Some(lease) if now > lease.expires_at => Some(format!(
                "this device has not reached the server since {}, and its offline lease ran out at \
                 {}; records stay locked until a sync succeeds",
                time(lease.issued_at),
                time(lease.expires_at)
            )),
            _ => None,
        }
    }

    /// Why records may not be changed at `now`: locked, or the device is being retired.
    pub fn edit_lock_reason(&self, now: i64) -> Option<String> {
        self.lock_reason(now).or_else(|| {
            self.retiring.then(|| {
                "this device is being retired: it takes no new edits, and wipes itself once the \
                 server holds everything on it"
                    .to_string()
            })
        })
    }
}

impl Store {
    pub fn standing(&self) -> Result<Standing> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT server_key, lease_issued, lease_expires, latest_seen, retiring FROM standing WHERE only = 1",
            )?
            .query_row([], |r| {
                Ok((
                    r.get::<_, Option<Vec<u8>>>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, bool>(4)?,
                ))
            })
            .optional()?;
        let Some((server_key, issued, expires, latest_seen, retiring)) = row else {
            return Ok(Standing::default());
        };
        Ok(Standing {
            server_key,
            lease: issued
                .zip(expires)
                .map(|(issued_at, expires_at)| LeaseTerm { issued_at, expires_at }),
            latest_seen,
            retiring,
        })
    }

    /// Pins the server's lease-signing key, as enrolment gives it.
    pub(crate) fn pin_server_key(&mut self, key: &[u8]) -> Result<()> {
        check_key(key)?;
        self.conn
            .execute("UPDATE standing SET server_key = ?1 WHERE only = 1", [key])?;
        Ok(())
    }

    /// Verifies a lease the server sent and keeps it if it is newer than the one held. Its
    /// issue time is the server's clock, which then stands as the latest time seen: the server
    /// is the authority on time, so a sync clears a lock left by a clock that had run ahead.
    ///
    /// A store with no pinned key (enrolled before leases existed) pins the key of this first
    /// lease, which arrived over the TLS connection the device already trusts.
    pub(crate) fn accept_lease(&mut self, lease: &Lease) -> Result<()> {
        let refused = |reason: String| Error::invalid("offline lease", reason);
        if lease.device != self.author.device.as_str() {
            return Err(refused(format!(
                "it is for device {:?}, not this one ({})",
                lease.device, self.author.device
            )));
        }
        if lease.expires_at <= lease.issued_at {
            return Err(refused("it expires before it was issued".into()));
        }
        let standing = self.standing()?;
        let key = match &standing.server_key {
            Some(pinned) if pinned.as_slice() != lease.key.as_slice() => {
                return Err(refused(
                    "it is signed by another key than the server's this device was enrolled with".into(),
                ));
            }
            Some(pinned) => pinned.clone(),
            None => {
                check_key(&lease.key)?;
                tracing::info!("no server key was pinned at enrolment; pinning the first lease's");
                lease.key.to_vec()
            }
        };
        let message = Lease::message(&lease.device, lease.issued_at, lease.expires_at);
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &key)
            .verify(&message, &lease.signature)
            .map_err(|_| refused("its signature does not verify".into()))?;
        if standing.lease.is_some_and(|held| held.issued_at > lease.issued_at) {
            // An older lease than the one held (a response replayed or reordered): keep ours.
            return Ok(());
        }
        self.conn.execute(
            "UPDATE standing SET server_key = ?1, lease_issued = ?2, lease_expires = ?3,
                 lease_signature = ?4, latest_seen = ?2
             WHERE only = 1",
            params![key, lease.issued_at, lease.expires_at, lease.signature.as_slice()],
        )?;
        Ok(())
    }

    /// Notes a clock reading. Written only once it passes the time already recorded by
    /// `SEEN_EVERY_SECS`, so reads do not each cost a write.
    pub(crate) fn observe_time(&mut self, now: i64) -> Result<()> {
        let seen = self.standing()?.latest_seen;
        if now >= seen + SEEN_EVERY_SECS {
            self.conn.execute(
                "UPDATE standing SET latest_seen = ?1 WHERE only = 1 AND latest_seen < ?1",
                [now],
            )?;
        }
        Ok(())
    }

    /// The server asked this device to retire: from now on it takes no new edits.
    pub(crate) fn start_retiring(&mut self) -> Result<()> {
        self.conn
            .execute("UPDATE standing SET retiring = 1 WHERE only = 1", [])?;
        Ok(())
    }

    /// Closes the store's file so it can be deleted. The store is left on an empty in-memory
    /// database, so anything still holding it fails rather than reading what was wiped.
    pub(crate) fn close_for_wipe(&mut self) -> Result<()> {
        let conn = std::mem::replace(&mut self.conn, rusqlite::Connection::open_in_memory()?);
        self.cache = super::cache::DocCache::default();
        conn.close().map_err(|(_, e)| Error::Storage(e))
    }
}

fn check_key(key: &[u8]) -> Result<()> {
    if key.len() != 32 {
        return Err(Error::invalid(
            "server key",
            format!("an Ed25519 public key is 32 bytes, not {}", key.len()),
        ));
    }
    Ok(())
}

/// Unix seconds as a reader sees them.
fn time(at: i64) -> String {
    DateTime::from_timestamp(at, 0).map_or_else(|| at.to_string(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use ring::rand::SystemRandom;
    use ring::signature::{Ed25519KeyPair, KeyPair};
    use serde_bytes::ByteBuf;

    use super::*;
    use crate::ids::{Author, DeviceId, WorkerId};

    const NOW: i64 = 1_750_000_000;
    const DAY: i64 = 86_400;

    fn key() -> Ed25519KeyPair {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
    }

    fn lease(key: &Ed25519KeyPair, device: &str, issued_at: i64, days: i64) -> Lease {
        let expires_at = issued_at + days * DAY;
        Lease {
            device: device.into(),
            issued_at,
            expires_at,
            key: ByteBuf::from(key.public_key().as_ref().to_vec()),
            signature: ByteBuf::from(
                key.sign(&Lease::message(device, issued_at, expires_at))
                    .as_ref()
                    .to_vec(),
            ),
        }
    }

    fn store(dir: &tempfile::TempDir) -> Store {
        let author = Author::new(WorkerId::new("w1").unwrap(), DeviceId::new("phone-1").unwrap());
        Store::open(dir.path().join("s.sqlite3"), author).unwrap()
    }

    #[test]
    fn a_lease_signed_by_the_pinned_key_unlocks_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store(&dir);
        let server = key();
        assert_eq!(store.standing().unwrap(), Standing::default());
        assert_eq!(Standing::default().lock_reason(NOW), None, "no lease yet: not locked");

        store.pin_server_key(server.public_key().as_ref()).unwrap();
        store.accept_lease(&lease(&server, "phone-1", NOW, 14)).unwrap();
        let standing = store.standing().unwrap();
        assert_eq!(
            standing.lease,
            Some(LeaseTerm {
                issued_at: NOW,
                expires_at: NOW + 14 * DAY
            })
        );
        assert_eq!(standing.latest_seen, NOW);
        assert_eq!(standing.lock_reason(NOW + 14 * DAY), None);
        let locked = standing.lock_reason(NOW + 14 * DAY + 1).unwrap();
        assert!(locked.contains("offline lease ran out"), "{locked}");

        // An older lease arriving late changes nothing.
        store.accept_lease(&lease(&server, "phone-1", NOW - DAY, 1)).unwrap();
        assert_eq!(store.standing().unwrap(), standing);
    }

    #[test]
    fn leases_for_another_device_by_another_key_or_tampered_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store(&dir);
        let server = key();
        store.pin_server_key(server.public_key().as_ref()).unwrap();

        let other = lease(&key(), "phone-1", NOW, 14);
        let err = store.accept_lease(&other).unwrap_err().to_string();
        assert!(err.contains("another key"), "{err}");

        let err = store
            .accept_lease(&lease(&server, "phone-2", NOW, 14))
            .unwrap_err()
            .to_string();
        assert!(err.contains("phone-2"), "{err}");

        let mut stretched = lease(&server, "phone-1", NOW, 14);
        stretched.expires_at += 365 * DAY;
        let err = store.accept_lease(&stretched).unwrap_err().to_string();
        assert!(err.contains("signature does not verify"), "{err}");

        assert_eq!(store.standing().unwrap().lease, None, "nothing refused was kept");
    }

    #[test]
    fn a_store_enrolled_before_leases_pins_the_first_lease_s_key() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store(&dir);
        let server = key();
        store.accept_lease(&lease(&server, "phone-1", NOW, 14)).unwrap();
        assert_eq!(
            store.standing().unwrap().server_key.as_deref(),
            Some(server.public_key().as_ref())
        );
        let err = store.accept_lease(&lease(&key(), "phone-1", NOW + 1, 14)).unwrap_err();
        assert!(err.to_string().contains("another key"), "{err}");
    }

    #[test]
    fn a_clock_set_back_before_a_time_seen_locks_and_a_lease_resets_the_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store(&dir);
        let server = key();
        store.pin_server_key(server.public_key().as_ref()).unwrap();
        store.accept_lease(&lease(&server, "phone-1", NOW, 14)).unwrap();

        store.observe_time(NOW + 30).unwrap();
        assert_eq!(store.standing().unwrap().latest_seen, NOW, "written a minute at a time");
        store.observe_time(NOW + 3600).unwrap();
        store.observe_time(NOW + 100).unwrap();
        let standing = store.standing().unwrap();
        assert_eq!(standing.latest_seen, NOW + 3600, "never moves back");

        assert_eq!(
            standing.lock_reason(NOW + 3600 - CLOCK_TOLERANCE_SECS),
            None,
            "skew allowed"
        );
        let locked = standing.lock_reason(NOW - DAY).unwrap();
        assert!(locked.contains("already seen"), "{locked}");

        // The next lease carries the server's time, which becomes the latest seen.
        store.accept_lease(&lease(&server, "phone-1", NOW + 60, 14)).unwrap();
        assert_eq!(store.standing().unwrap().latest_seen, NOW + 60);
    }

    #[test]
    fn a_store_from_before_leases_upgrades_unlocked_with_no_key() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut conn = rusqlite::Connection::open(dir.path().join("s.sqlite3")).unwrap();
            crate::store::schema::migrate_to(&mut conn, 4).unwrap();
        }
        let store = store(&dir);
        let standing = store.standing().unwrap();
        assert_eq!(standing, Standing::default());
        assert_eq!(standing.edit_lock_reason(NOW), None);
    }

    #[test]
    fn a_retiring_store_takes_no_edits_but_shows_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = store(&dir);
        store.start_retiring().unwrap();
        let standing = store.standing().unwrap();
        assert!(standing.retiring);
        assert_eq!(standing.lock_reason(NOW), None);
        assert!(standing.edit_lock_reason(NOW).unwrap().contains("being retired"));
    }
}
