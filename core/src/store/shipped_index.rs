//! Index rows computed by the replica that sends a document, so a device receiving a whole
//! caseload can list, open and search it without first loading every document into Automerge
//! (about 1.5 ms each). The rows are the ones `index::write` produces, captured from a scratch
//! in-memory database; the receiver writes them as they are, marks the document unverified, and
//! `Store::verify_received` later loads each one, checks it and rewrites its rows itself.
//!
//! Two formats, told apart by their first byte: CBOR (`wire::CAP_INDEX`, index-1), and the same
//! CBOR zlib-compressed (`wire::CAP_INDEX_DEFLATE`, index-2), which this build writes. The
//! full-text rows repeat a visit's text, so uncompressed they were as large as the documents
//! they came with; compressed, a fraction.

use std::cell::RefCell;
use std::io::{Read, Write};

use automerge::AutoCommit;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, Transaction};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use super::{index, schema};
use crate::error::{Error, Result};
use crate::ids::DocId;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(ByteBuf),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TableRows {
    table: String,
    columns: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

/// Tables whose rows are shipped, with the columns that may be written; `doc_index` and the
/// full-text table are handled apart because their row ids are local.
const TABLES: [(&str, &[&str]); 7] = [
    (
        "people",
        &[
            "person_id",
            "name",
            "preferred_name",
            "date_of_birth",
            "nhs_number",
            "team",
            "risk_tier",
        ],
    ),
    ("allocations", &["worker_id", "person_id"]),
    (
        "visits",
        &[
            "visit_id",
            "person_id",
            "worker_id",
            "visit_at",
            "setting",
            "safeguarding",
        ],
    ),
    ("reviews", &["visit_id", "state", "contested"]),
    (
        "actions",
        &[
            "action_id",
            "visit_id",
            "person_id",
            "what",
            "who",
            "due",
            "done",
            "cancelled",
        ],
    ),
    (
        "assessments",
        &["assessment_id", "person_id", "assessed_at", "template_id"],
    ),
    (
        "observations",
        &[
            "observations_id",
            "person_id",
            "taken_at",
            "news2",
            "risk",
            "needs_confirmation",
            "next_visit_due",
        ],
    ),
];

/// No document's rows inflate past this; more is refused (a deflate bomb).
const MAX_INFLATED: u64 = crate::sync::wire::MAX_FRAME as u64;

thread_local! {
    static SCRATCH: RefCell<Option<Connection>> = const { RefCell::new(None) };
}

/// The index rows of `doc`, encoded for sending beside its bytes (compressed, index-2).
pub fn compute(id: &DocId, doc: &AutoCommit) -> Result<Vec<u8>> {
    SCRATCH.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mut conn = Connection::open_in_memory()?;
            schema::migrate_to(&mut conn, schema::CURRENT_VERSION)?;
            *slot = Some(conn);
        }
        let conn = slot
            .as_mut()
            .ok_or_else(|| Error::invalid("index", "no scratch database"))?;
        let tx = conn.transaction()?;
        index::clear(&tx)?;
        index::write(&tx, id, doc)?;
        let mut tables = vec![dump(&tx, "doc_index", &["doc_type", "person_id"])?];
        for (table, columns) in TABLES {
            tables.push(dump(&tx, table, columns)?);
        }
        tables.push(dump(&tx, "visit_text", &["visit_id", "person_id", "body"])?);
        // Dropped without committing: the scratch database stays empty.
        drop(tx);
        let mut cbor = Vec::new();
        ciborium::into_writer(&tables, &mut cbor).map_err(|e| Error::invalid("index", e.to_string()))?;
        deflate(&cbor)
    })
}

/// Whether `rows` are compressed (index-2). CBOR's array (how every format starts) begins with a
/// byte from 0x80 to 0x9f; zlib's first byte never does (its window size is at most 2^15).
fn compressed(rows: &[u8]) -> bool {
    !matches!(rows.first(), Some(0x80..=0x9f))
}

/// Shipped rows in the format a device reads: compressed (index-2) when `deflated`, else
/// uncompressed CBOR (index-1). Rows stored by an older server are uncompressed.
pub fn in_format(rows: Vec<u8>, deflated: bool) -> Result<Vec<u8>> {
    match (compressed(&rows), deflated) {
        (true, true) | (false, false) => Ok(rows),
        (true, false) => inflate(&rows),
        (false, true) => deflate(&rows),
    }
}

fn deflate(cbor: &[u8]) -> Result<Vec<u8>> {
    let mut compressed = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let written = compressed.write_all(cbor).and_then(|()| compressed.finish());
    written.map_err(|e| Error::invalid("index", format!("the rows could not be compressed: {e}")))
}

fn inflate(rows: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(rows)
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::invalid("shipped index", format!("the compressed rows do not inflate: {e}")))?;
    if out.len() as u64 > MAX_INFLATED {
        return Err(Error::invalid(
            "shipped index",
            format!("the compressed rows inflate past {MAX_INFLATED} bytes"),
        ));
    }
    Ok(out)
}

fn dump(tx: &Transaction<'_>, table: &str, columns: &[&str]) -> Result<TableRows> {
    let mut stmt = tx.prepare(&format!("SELECT {} FROM {table}", columns.join(", ")))?;
    let rows = stmt.query_map([], |row| {
        (0..columns.len())
            .map(|i| {
                Ok(match row.get_ref(i)? {
                    ValueRef::Null => Cell::Null,
                    ValueRef::Integer(v) => Cell::Int(v),
                    ValueRef::Real(v) => Cell::Real(v),
                    ValueRef::Text(v) => Cell::Text(String::from_utf8_lossy(v).into_owned()),
                    ValueRef::Blob(v) => Cell::Blob(ByteBuf::from(v.to_vec())),
                })
            })
            .collect::<rusqlite::Result<Vec<Cell>>>()
    })?;
    Ok(TableRows {
        table: table.to_string(),
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows: rows.collect::<rusqlite::Result<_>>()?,
    })
}

/// Writes shipped rows for `id`. Only known tables and columns are written, and the document's
/// own row must name it; anything else is refused as invalid input.
pub(crate) fn apply(tx: &Transaction<'_>, id: &DocId, bytes: &[u8]) -> Result<()> {
    let invalid = |reason: String| Error::invalid("shipped index", format!("document {id}: {reason}"));
    let inflated;
    let cbor = if compressed(bytes) {
        inflated = inflate(bytes).map_err(|e| invalid(e.to_string()))?;
        &inflated[..]
    } else {
        bytes
    };
    let tables: Vec<TableRows> = ciborium::from_reader(cbor).map_err(|e| invalid(e.to_string()))?;
    let mut row_id = None;
    for table in &tables {
        let columns: Vec<&str> = table.columns.iter().map(String::as_str).collect();
        match table.table.as_str() {
            "doc_index" => {
                let [Cell::Text(doc_type), Cell::Text(person)] = table.rows.first().map(Vec::as_slice).unwrap_or(&[])
                else {
                    return Err(invalid("its own row is missing or malformed".into()));
                };
                row_id = Some(tx.query_row(
                    "INSERT INTO doc_index (doc_id, doc_type, person_id) VALUES (?1, ?2, ?3) RETURNING id",
                    rusqlite::params![id.as_str(), doc_type, person],
                    |row| row.get::<_, i64>(0),
                )?);
            }
            "visit_text" => {
                let row_id = row_id.ok_or_else(|| invalid("full-text rows before the document's row".into()))?;
                for row in &table.rows {
                    let values = cells(row, 3).map_err(invalid)?;
                    tx.execute(
                        "INSERT INTO visit_text (rowid, visit_id, person_id, body) VALUES (?1, ?2, ?3, ?4)",
                        rusqlite::params![row_id, values[0], values[1], values[2]],
                    )?;
                }
            }
            name => {
                let allowed = TABLES
                    .iter()
                    .find(|(t, _)| *t == name)
                    .map(|(_, c)| *c)
                    .ok_or_else(|| invalid(format!("unknown table {name:?}")))?;
                if columns.iter().any(|c| !allowed.contains(c)) {
                    return Err(invalid(format!("unknown columns in {name}")));
                }
                let sql = format!(
                    "INSERT OR REPLACE INTO {name} ({}) VALUES ({})",
                    columns.join(", "),
                    vec!["?"; columns.len()].join(", ")
                );
                let mut stmt = tx.prepare_cached(&sql)?;
                for row in &table.rows {
                    let values = cells(row, columns.len()).map_err(invalid)?;
                    stmt.execute(rusqlite::params_from_iter(values))?;
                }
            }
        }
    }
    if row_id.is_none() {
        return Err(invalid("its own row is missing".into()));
    }
    Ok(())
}

fn cells(row: &[Cell], expected: usize) -> std::result::Result<Vec<Value>, String> {
    if row.len() != expected {
        return Err(format!("a row of {} values where {expected} were expected", row.len()));
    }
    Ok(row
        .iter()
        .map(|cell| match cell {
            Cell::Null => Value::Null,
            Cell::Int(v) => Value::Integer(*v),
            Cell::Real(v) => Value::Real(*v),
            Cell::Text(v) => Value::Text(v.clone()),
            Cell::Blob(v) => Value::Blob(v.to_vec()),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use flate2::Compression;
    use flate2::write::ZlibEncoder;

    use super::*;

    #[test]
    fn compressed_rows_that_inflate_too_far_or_not_at_all_are_refused_by_name_writing_nothing() {
        let mut conn = Connection::open_in_memory().unwrap();
        schema::migrate_to(&mut conn, schema::CURRENT_VERSION).unwrap();
        let tx = conn.transaction().unwrap();
        let id = DocId::new("visit-shipped").unwrap();

        // A deflate bomb: a few tens of kilobytes that would inflate past the limit.
        let mut bomb = ZlibEncoder::new(Vec::new(), Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..=(MAX_INFLATED >> 20) {
            bomb.write_all(&zeros).unwrap();
        }
        let bomb = bomb.finish().unwrap();
        assert!(bomb.len() < 1 << 20, "{}", bomb.len());
        let err = apply(&tx, &id, &bomb).unwrap_err();
        assert!(err.to_string().contains("inflate past"), "{err}");
        assert!(err.to_string().contains("visit-shipped"), "{err}");

        // Not zlib at all, yet not CBOR either.
        let err = apply(&tx, &id, &[0x78, 0x9c, 1, 2, 3]).unwrap_err();
        assert!(err.to_string().contains("do not inflate"), "{err}");

        let written: i64 = tx
            .query_row("SELECT count(*) FROM doc_index", [], |row| row.get(0))
            .unwrap();
        assert_eq!(written, 0);
    }

    #[test]
    fn rows_are_sent_in_the_format_the_device_reads_whichever_format_they_were_stored_in() {
        let tables = vec![TableRows {
            table: "visits".into(),
            columns: vec!["visit_id".into()],
            rows: vec![vec![Cell::Text("visit-1 grows tomatoes ".repeat(50))]],
        }];
        let mut cbor = Vec::new();
        ciborium::into_writer(&tables, &mut cbor).unwrap();
        assert!(!compressed(&cbor));

        let deflated = in_format(cbor.clone(), true).unwrap();
        assert!(compressed(&deflated));
        assert!(deflated.len() * 5 < cbor.len(), "{} of {}", deflated.len(), cbor.len());
        assert_eq!(in_format(deflated.clone(), true).unwrap(), deflated);
        assert_eq!(in_format(deflated, false).unwrap(), cbor);
        assert_eq!(in_format(cbor.clone(), false).unwrap(), cbor);
    }
}
