//! What a round tells a device about its service: a retirement the admin asked for, and an
//! offline lease signed with the server key, dated by the server's clock.

use std::sync::Arc;

use outpost_core::Clock;
use outpost_core::sync::wire::{self, Head, Request};
use serde_bytes::ByteBuf;

use super::SyncService;
use crate::error::{Error, Result};
use crate::signing::ServerKey;
use crate::storage::{AuditEntry, Device};

const DAY: i64 = 86_400;

impl SyncService {
    /// Signs leases with `key`, the server's kept key (devices pin it at enrolment).
    pub fn with_key(mut self, key: Arc<ServerKey>) -> Self {
        self.key = key;
        self
    }

    pub fn key(&self) -> &Arc<ServerKey> {
        &self.key
    }

    /// Dates leases by `clock` from now on.
    pub fn set_clock(&self, clock: Arc<dyn Clock>) -> Result<()> {
        *self
            .clock
            .write()
            .map_err(|_| Error::Internal("the clock lock was poisoned".into()))? = clock;
        Ok(())
    }

    /// A lease for `device`: it may keep its records unlocked for its team's lease days from
    /// now without reaching the server again.
    pub fn lease(&self, device: &Device) -> Result<wire::Lease> {
        let days = self.storage.lease_days(&device.team)?;
        let issued_at = match self.clock.read() {
            Ok(clock) => clock.now(),
            Err(_) => return Err(Error::Internal("the clock lock was poisoned".into())),
        };
        let expires_at = issued_at.saturating_add(i64::from(days) * DAY);
        let message = wire::Lease::message(device.device.as_str(), issued_at, expires_at);
        Ok(wire::Lease {
            device: device.device.to_string(),
            issued_at,
            expires_at,
            key: ByteBuf::from(self.key.public_key().to_vec()),
            signature: ByteBuf::from(self.key.sign(&message).to_vec()),
        })
    }

    /// Called once the round's pushes are stored. A device asked to retire is told so; when it
    /// says it holds nothing unacknowledged, and this round brought nothing that still needs
    /// settling, it is retired (its credential refused from now on) and told it may wipe. Any
    /// other device gets a fresh lease.
    pub(super) fn settle_service(
        &self,
        device: &Device,
        request: &Request,
        head: &mut Head,
        now: i64,
        from: &str,
    ) -> Result<()> {
        if self.storage.retiring(&device.device)? {
            head.retire = true;
            let settled = request.pushes.is_empty()
                && request.automerge_sync.is_empty()
                && request.inventory.is_none()
                && head.refused.is_empty()
                && head.diverged.is_empty()
                && head.automerge_sync.is_empty();
            if request.retire_ready && settled {
                if self.storage.retire(&device.device, now)? {
                    self.storage.audit(&AuditEntry {
                        at: now,
                        who: format!("{}/{}", device.worker, device.device),
                        action: "device-retired".into(),
                        subject: device.device.to_string(),
                        detail: "it held nothing the server lacked; it wipes its store".into(),
                        from: from.to_string(),
                    })?;
                    tracing::info!(device = %device.device, "device retired");
                }
                head.retired = true;
                return Ok(());
            }
        }
        head.lease = Some(self.lease(device)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use outpost_core::sync::wire::Frame;
    use outpost_core::{DeviceId, TeamId, WorkerId};

    use super::*;
    use crate::signing;
    use crate::storage::sqlite::SqliteStorage;
    use crate::storage::{Accounts, Lifecycle, Role, ScopePolicy, Storage};

    #[derive(Debug)]
    struct Fixed(i64);

    impl Clock for Fixed {
        fn now(&self) -> i64 {
            self.0
        }
    }

    const NOW: i64 = 1_750_000_000;

    fn service(dir: &std::path::Path) -> (Arc<SqliteStorage>, SyncService, Device) {
        let storage = Arc::new(SqliteStorage::open(dir.join("server.db")).unwrap());
        let team = TeamId::new("north").unwrap();
        let ann = WorkerId::new("ann").unwrap();
        storage.create_team(&team, "North", ScopePolicy::Team).unwrap();
        storage.add_worker(&ann, "Ann", Role::Worker, &team).unwrap();
        storage.add_enrolment_code(&ann, b"code", i64::MAX).unwrap();
        let device = storage
            .enrol(b"code", &DeviceId::new("d1").unwrap(), "phone", b"cred", NOW)
            .unwrap();
        let service = SyncService::new(storage.clone() as Arc<dyn Storage>, Default::default()).unwrap();
        service.set_clock(Arc::new(Fixed(NOW))).unwrap();
        (storage, service, device)
    }

    fn head(body: &[u8]) -> Head {
        let mut reader = wire::FrameReader::default();
        reader.push(body);
        match reader.next::<Frame>("response").unwrap() {
            Some(Frame::Head(head)) => head,
            other => panic!("not a head: {other:?}"),
        }
    }

    fn request(retire_ready: bool) -> Request {
        Request {
            protocol: wire::PROTOCOL,
            min_protocol: wire::MIN_PROTOCOL,
            retire_ready,
            ..Request::default()
        }
    }

    #[test]
    fn every_round_carries_a_lease_signed_for_the_team_s_days() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, service, device) = service(dir.path());
        let key = Arc::new(ServerKey::generate().unwrap());
        let service = service.with_key(key.clone());

        let lease = head(&service.round(&device, request(false)).unwrap()).lease.unwrap();
        assert_eq!(lease.device, "d1");
        assert_eq!((lease.issued_at, lease.expires_at), (NOW, NOW + 14 * DAY));
        assert_eq!(lease.key.as_slice(), key.public_key());
        let message = wire::Lease::message("d1", lease.issued_at, lease.expires_at);
        assert!(signing::verify(key.public_key(), &message, &lease.signature));
        let other = wire::Lease::message("d2", lease.issued_at, lease.expires_at);
        assert!(!signing::verify(key.public_key(), &other, &lease.signature));

        storage.set_lease_days(&device.team, 1).unwrap();
        let lease = head(&service.round(&device, request(false)).unwrap()).lease.unwrap();
        assert_eq!(lease.expires_at, NOW + DAY);
    }

    #[test]
    fn a_retiring_device_is_retired_only_when_it_says_it_is_ready_with_nothing_to_send() {
        let dir = tempfile::tempdir().unwrap();
        let (storage, service, device) = service(dir.path());
        storage.request_retirement(&device.device, NOW).unwrap();

        let told = head(&service.round(&device, request(false)).unwrap());
        assert!(told.retire && !told.retired);
        assert!(told.lease.is_some(), "it keeps reading until it wipes");
        assert!(storage.retiring(&device.device).unwrap());

        let done = head(&service.round(&device, request(true)).unwrap());
        assert!(done.retire && done.retired);
        assert!(done.lease.is_none());
        assert_eq!(storage.authenticate(b"cred").unwrap(), None);
        let audit = storage.audit_log(5).unwrap();
        assert!(
            audit.iter().any(|e| e.action == "device-retired" && e.subject == "d1"),
            "{audit:?}"
        );

        // Readiness from a device nobody asked to retire means nothing.
        let dir = tempfile::tempdir().unwrap();
        let (storage, service, device) = super::tests::service(dir.path());
        let head = head(&service.round(&device, request(true)).unwrap());
        assert!(!head.retire && !head.retired && head.lease.is_some());
        assert!(storage.authenticate(b"cred").unwrap().is_some());
    }
}
