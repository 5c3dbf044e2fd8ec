//! The enrolment that makes a store a device: which server it syncs with, how it trusts that
//! server, who it writes as, and its credential. Read before the store is opened (the store
//! needs the author), so these functions open the file themselves.

use std::fmt;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::disk::configure;
use super::{StoreKey, encryption, schema};
use crate::error::{Error, Result};
use crate::ids::{Author, DeviceId, TeamId, WorkerId};

/// A sync server and how this device trusts it.
#[derive(Clone, PartialEq, Eq)]
pub struct Server {
    /// The name checked against the server's certificate.
    pub host: String,
    pub port: u16,
    /// A private deployment's CA (PEM); without one the platform's certificate store decides.
    pub ca_pem: Option<Vec<u8>>,
    /// SHA-256 of the server key's SubjectPublicKeyInfo; when any are given, one must match.
    pub pins: Vec<[u8; 32]>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("host", &self.host)
            .field("port", &self.port)
            .field(
                "ca_pem",
                &self.ca_pem.as_ref().map(|pem| format!("{} bytes", pem.len())),
            )
            .field("pins", &self.pins.len())
            .finish()
    }
}

/// What enrolling gave this device.
#[derive(Clone, PartialEq, Eq)]
pub struct Enrolment {
    pub server: Server,
    /// The worker this device writes as, and the device id the server gave it.
    pub author: Author,
    pub team: TeamId,
    /// The worker is a team lead, who may approve or return visits.
    pub lead: bool,
    /// The device credential; the server keeps only its hash.
    pub credential: String,
    /// RFC 3339.
    pub enrolled_at: String,
}

impl fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enrolment")
            .field("server", &self.server)
            .field("author", &self.author)
            .field("team", &self.team)
            .field("lead", &self.lead)
            .field("credential", &"<redacted>")
            .field("enrolled_at", &self.enrolled_at)
            .finish()
    }
}

fn open(path: &Path, key: Option<&StoreKey>) -> Result<Connection> {
    let mut conn = encryption::connect(path, key)?;
    configure(&conn)?;
    schema::migrate_to(&mut conn, schema::CURRENT_VERSION)?;
    Ok(conn)
}

impl Enrolment {
    /// The enrolment stored at `path` (creating, upgrading or encrypting the store, as
    /// `Store::open_with_key` does), if the device has one.
    pub fn load(path: impl AsRef<Path>, key: Option<&StoreKey>) -> Result<Option<Self>> {
        let conn = open(path.as_ref(), key)?;
        let row = conn
            .query_row(
                "SELECT host, port, ca_pem, pins, worker, device, team, lead, credential, enrolled_at
                 FROM enrolment WHERE only = 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Option<Vec<u8>>>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, String>(5)?,
                        r.get::<_, String>(6)?,
                        r.get::<_, bool>(7)?,
                        r.get::<_, String>(8)?,
                        r.get::<_, String>(9)?,
                    ))
                },
            )
            .optional()?;
        let Some((host, port, ca_pem, pins, worker, device, team, lead, credential, enrolled_at)) = row else {
            return Ok(None);
        };
        let corrupt = |what: &str| Error::invalid("stored enrolment", what.to_string());
        let port = u16::try_from(port).map_err(|_| corrupt("the port is out of range"))?;
        if pins.len() % 32 != 0 {
            return Err(corrupt("the pins are not whole SHA-256 hashes"));
        }
        let pins = pins
            .chunks_exact(32)
            .map(|c| c.try_into().map_err(|_| corrupt("a pin is not 32 bytes")))
            .collect::<Result<_>>()?;
        Ok(Some(Self {
            server: Server {
                host,
                port,
                ca_pem,
                pins,
            },
            author: Author::new(WorkerId::new(worker)?, DeviceId::new(device)?),
            team: TeamId::new(team)?,
            lead,
            credential,
            enrolled_at,
        }))
    }

    /// Stores this enrolment at `path`, replacing any earlier one, durably.
    pub fn save(&self, path: impl AsRef<Path>, key: Option<&StoreKey>) -> Result<()> {
        let conn = open(path.as_ref(), key)?;
        let pins: Vec<u8> = self.server.pins.iter().flatten().copied().collect();
        conn.execute(
            "INSERT OR REPLACE INTO enrolment
                (only, host, port, ca_pem, pins, worker, device, team, lead, credential, enrolled_at)
             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                self.server.host,
                i64::from(self.server.port),
                self.server.ca_pem,
                pins,
                self.author.worker.as_str(),
                self.author.device.as_str(),
                self.team.as_str(),
                self.lead,
                self.credential,
                self.enrolled_at,
            ],
        )?;
        Ok(())
    }
}
