//! Forensic search for text that must be gone: every place a SQLite store could still hold it.
//!
//! `scan_sqlite` looks for probe strings in a store, server's or device's, and says where it
//! found each: the raw file and its WAL (decrypted page by page when the store is a SQLCipher
//! one, free pages and stale frames included), every cell of every table, every Automerge
//! document or change at every point of its history, and the full-text index through
//! `fts5vocab` and by search. A redaction test runs it once before the redaction, to show it
//! finds every probe everywhere (so it can fail), and once after, expecting nothing.
//!
//! Byte searches ignore ASCII case, so a lowercased copy of a name (a sort key, say) counts.
//! A probe is one unit: one split across two overflow pages, or half of a two-word probe left
//! behind, is not reported, so probes should be single distinctive words or names.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use aes::Aes256;
use automerge::{AutoCommit, Change, ChangeHash, ObjId, ObjType, ReadDoc, ScalarValue, Value};
use cbc::cipher::{BlockModeDecrypt, KeyIvInit, block_padding::NoPadding};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

/// Where probes were found, as (place, probe) pairs; places are `file`, `wal`, `rows`,
/// `automerge history`, `fts5vocab` and `fts5 search`.
pub type Found = BTreeSet<(String, String)>;

/// The probes whose bytes occur in `bytes`, ignoring ASCII case.
pub fn scan_bytes(bytes: &[u8], probes: &[&str]) -> BTreeSet<String> {
    probes
        .iter()
        .filter(|probe| contains(bytes, probe.as_bytes()))
        .map(|probe| probe.to_string())
        .collect()
}

/// Searches the store at `path` for `probes` everywhere it could hold them. `key` is the raw
/// 32-byte SQLCipher key of an encrypted store (`None` for a plain one). The files are read
/// before any connection is opened, and the connection is read-only, so scanning changes
/// nothing: no checkpoint moves the WAL away.
///
/// Panics when the store cannot be read completely (a wrong key, a table that fails to read):
/// a scan that saw less than everything must not pass as "nothing found".
pub fn scan_sqlite(path: &Path, key: Option<&[u8]>, probes: &[&str]) -> Found {
    let mut found = Found::new();
    let mut note = |place: &str, hits: BTreeSet<String>| {
        found.extend(hits.into_iter().map(|probe| (place.to_string(), probe)));
    };

    let file = read_if_present(path);
    let wal = read_if_present(&sibling(path, "-wal"));
    let layout = key.map(|key| Layout::detect(&file, &wal, key));
    for (place, raw) in [("file", &file), ("wal", &wal)] {
        note(place, scan_bytes(raw, probes));
        let plain = match (key, &layout) {
            (Some(key), Some(layout)) if place == "file" => layout.decrypt_file(raw, key),
            (Some(key), Some(layout)) => layout.decrypt_wal(raw, key),
            _ => Vec::new(),
        };
        note(place, scan_bytes(&plain, probes));
        // Automerge chunks that sit whole in one page, in freed space or a stale frame too:
        // compressed, they would escape the byte search.
        let carved = if plain.is_empty() { raw } else { &plain };
        note(place, scan_texts(&automerge_texts(&carve_chunks(carved)), probes));
    }

    let conn = open_read_only(path, key);
    let (hits, blobs) = scan_rows(&conn, probes);
    note("rows", hits);
    note("automerge history", scan_texts(&automerge_texts(&blobs), probes));
    for (table, sql) in fts5_tables(&conn) {
        note("fts5vocab", scan_fts5vocab(&conn, &table, &sql, probes));
        note("fts5 search", scan_fts5_search(&conn, &table, probes));
    }
    found
}

/// Panics, naming every place each probe was found, unless `found` is empty. `what` says what
/// was scanned, for the message.
pub fn assert_gone(found: &Found, what: &str) {
    if !found.is_empty() {
        let list: Vec<String> = found
            .iter()
            .map(|(place, probe)| format!("  {probe:?} in {place}"))
            .collect();
        panic!("removed text is still in {what}:\n{}", list.join("\n"));
    }
}

/// Panics unless every probe was found in every one of `places`: the scan before a removal,
/// showing that the scan after it could fail.
pub fn assert_found(found: &Found, places: &[&str], probes: &[&str], what: &str) {
    let missing: Vec<String> = places
        .iter()
        .flat_map(|place| probes.iter().map(move |probe| (*place, *probe)))
        .filter(|(place, probe)| !found.contains(&(place.to_string(), probe.to_string())))
        .map(|(place, probe)| format!("  {probe:?} not in {place}"))
        .collect();
    if !missing.is_empty() {
        panic!(
            "the scan of {what} missed text that is there, so it could not show it gone:\n{}",
            missing.join("\n")
        );
    }
}

/// The decrypted image of a whole SQLCipher file: every page, free ones included, as plain
/// SQLite would have written it (reserved bytes kept). Panics if `key` does not decrypt it.
pub fn decrypt_sqlcipher(file: &[u8], key: &[u8]) -> Vec<u8> {
    Layout::detect(file, &[], key).decrypt_file(file, key)
}

// ---- bytes and files -------------------------------------------------------------------------

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window.eq_ignore_ascii_case(needle))
}

fn scan_texts(texts: &[Vec<u8>], probes: &[&str]) -> BTreeSet<String> {
    texts.iter().flat_map(|text| scan_bytes(text, probes)).collect()
}

fn read_if_present(path: &Path) -> Vec<u8> {
    match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("cannot read {}: {e}", path.display()),
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

// ---- SQLCipher pages -------------------------------------------------------------------------

/// What every plaintext SQLite file, and every decrypted page 1, begins with. In a SQLCipher
/// file these 16 bytes hold the salt instead, and page 1's encrypted region starts after them.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";
const AES_BLOCK: usize = 16;
const WAL_HEADER: usize = 32;
const WAL_FRAME_HEADER: usize = 24;

/// How a SQLCipher file lays out its pages: AES-256-CBC over each page but its reserved tail,
/// which holds the page's IV and then its HMAC. SQLCipher 4's defaults are 4096-byte pages and
/// 80 reserved bytes (16 of IV, 64 of HMAC-SHA512); the others are tried in case a store
/// changes them, and the one page 1 decrypts under, to a valid header, is used.
#[derive(Debug, Clone, Copy)]
struct Layout {
    page_size: usize,
    reserve: usize,
}

impl Layout {
    fn detect(file: &[u8], wal: &[u8], key: &[u8]) -> Self {
        assert_eq!(key.len(), 32, "a store key is 32 raw bytes");
        // Page 1 from the file, or from the WAL when the file is still empty.
        let wal_page_1 = wal_frames(wal).find(|(pgno, _)| *pgno == 1).map(|(_, page)| page);
        let page_1 = if file.is_empty() {
            wal_page_1.unwrap_or(&[])
        } else {
            file
        };
        for page_size in [4096, 1024, 2048, 8192, 16384, 32768, 65536, 512] {
            for reserve in [80, 48, 16] {
                let layout = Self { page_size, reserve };
                if page_1.len() >= page_size && layout.valid_page_1(&layout.decrypt_page(&page_1[..page_size], 1, key))
                {
                    return layout;
                }
            }
        }
        panic!("the key does not decrypt page 1 to a SQLite header: wrong key, or not a SQLCipher store");
    }

    /// A SQLite header whose page size and reserved bytes are this layout's.
    fn valid_page_1(&self, page: &[u8]) -> bool {
        let size = usize::from(u16::from_be_bytes([page[16], page[17]]));
        let size = if size == 1 { 65536 } else { size };
        page.starts_with(SQLITE_HEADER)
            && size == self.page_size
            && usize::from(page[20]) == self.reserve
            // Maximum and minimum embedded payload fractions and the leaf payload fraction,
            // fixed by the file format.
            && page[21..24] == [64, 32, 32]
    }

    fn decrypt_file(&self, file: &[u8], key: &[u8]) -> Vec<u8> {
        file.chunks(self.page_size)
            .zip(1u32..)
            .flat_map(|(page, pgno)| self.decrypt_page(page, pgno, key))
            .collect()
    }

    /// Every frame's page, stale frames of an earlier WAL generation and frames past the last
    /// commit included: they are all on the disk.
    fn decrypt_wal(&self, wal: &[u8], key: &[u8]) -> Vec<u8> {
        wal_frames(wal)
            .filter(|(_, page)| page.len() == self.page_size)
            .flat_map(|(pgno, page)| self.decrypt_page(page, pgno, key))
            .collect()
    }

    fn decrypt_page(&self, page: &[u8], pgno: u32, key: &[u8]) -> Vec<u8> {
        if page.len() != self.page_size {
            // A torn tail: nothing SQLCipher could decrypt either.
            return page.to_vec();
        }
        let start = if pgno == 1 { SQLITE_HEADER.len() } else { 0 };
        let end = self.page_size - self.reserve;
        let iv = &page[end..end + AES_BLOCK];
        let mut region = page[start..end].to_vec();
        let decryptor = cbc::Decryptor::<Aes256>::new_from_slices(key, iv).expect("a 32-byte key and a 16-byte IV");
        decryptor
            .decrypt_padded::<NoPadding>(&mut region)
            .expect("a page's encrypted region is whole AES blocks");
        let mut plain = Vec::with_capacity(self.page_size);
        if pgno == 1 {
            plain.extend_from_slice(SQLITE_HEADER);
        }
        plain.extend_from_slice(&region);
        plain.extend_from_slice(&page[end..]);
        plain
    }
}

/// The WAL's frames as (page number, page bytes): a 32-byte header giving the page size, then
/// frames of a 24-byte header (the page number first) and one page each.
fn wal_frames(wal: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    let page_size = wal
        .get(8..12)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .unwrap_or(0);
    let frames = if page_size == 0 { &[][..] } else { &wal[WAL_HEADER..] };
    frames
        .chunks(WAL_FRAME_HEADER + page_size.max(1))
        .filter(|frame| frame.len() > WAL_FRAME_HEADER)
        .map(|frame| {
            let pgno = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
            (pgno, &frame[WAL_FRAME_HEADER..])
        })
}

// ---- rows ------------------------------------------------------------------------------------

fn open_read_only(path: &Path, key: Option<&[u8]>) -> Connection {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("cannot open {} to scan it: {e}", path.display()));
    if let Some(key) = key {
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        conn.execute_batch(&format!("PRAGMA key = \"x'{hex}'\""))
            .expect("the key pragma");
    }
    conn
}

/// Searches every cell of every table (the schema, virtual tables and their shadow tables
/// too); returns the probes found and every blob, for decoding.
fn scan_rows(conn: &Connection, probes: &[&str]) -> (BTreeSet<String>, Vec<Vec<u8>>) {
    let mut found = BTreeSet::new();
    let mut tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
        .expect("the store's schema (is the key right?)");
    tables.push("sqlite_schema".into());
    let mut blobs = Vec::new();
    for table in tables {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {}", quote_ident(&table)))
            .unwrap_or_else(|e| panic!("cannot read table {table}: {e}"));
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).expect("a table's rows");
        while let Some(row) = rows.next().unwrap_or_else(|e| panic!("cannot read table {table}: {e}")) {
            for i in 0..columns {
                let cell = match row.get_ref(i).expect("a cell") {
                    ValueRef::Text(bytes) => bytes,
                    ValueRef::Blob(bytes) => {
                        blobs.push(bytes.to_vec());
                        bytes
                    }
                    _ => continue,
                };
                found.extend(scan_bytes(cell, probes));
            }
        }
    }
    (found, blobs)
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

// ---- the full-text index ---------------------------------------------------------------------

/// Every FTS5 table in the main schema, with the statement that created it.
fn fts5_tables(conn: &Connection) -> Vec<(String, String)> {
    conn.prepare("SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'")
        .and_then(|mut stmt| {
            stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<rusqlite::Result<Vec<(String, String)>>>()
        })
        .expect("the store's virtual tables")
        .into_iter()
        .filter(|(_, sql)| {
            // `USING fts5(`, not `USING fts5vocab(`.
            let sql = sql.to_ascii_lowercase();
            let module = sql.split_once("using").map(|(_, rest)| rest.trim_start());
            module
                .and_then(|rest| rest.strip_prefix("fts5"))
                .is_some_and(|rest| rest.trim_start().starts_with('('))
        })
        .collect()
}

/// The probes whose every term is in `table`'s index, read through `fts5vocab`. A probe's
/// terms are what the table's own tokenizer makes of it (a temporary FTS5 table with the same
/// `tokenize` option), so stemming and case-folding are exactly the index's: "Happy" is found
/// as the term "happi" that `porter` makes of it, which comparing words by hand would miss.
fn scan_fts5vocab(conn: &Connection, table: &str, sql: &str, probes: &[&str]) -> BTreeSet<String> {
    let vocab = quote_ident(&format!("forensics_vocab_{table}"));
    conn.execute_batch(&format!(
        "CREATE VIRTUAL TABLE IF NOT EXISTS temp.{vocab} USING fts5vocab(main, {}, row)",
        quote_ident(table)
    ))
    .expect("an fts5vocab table over the index");
    let terms: BTreeSet<String> = conn
        .prepare(&format!("SELECT term FROM temp.{vocab}"))
        .and_then(|mut stmt| stmt.query_map([], |row| row.get(0))?.collect())
        .expect("the index's terms");
    probe_terms(conn, table, sql, probes)
        .into_iter()
        .filter(|(_, terms_of_probe)| !terms_of_probe.is_empty() && terms_of_probe.is_subset(&terms))
        .map(|(probe, _)| probe)
        .collect()
}

/// Each probe's terms under the tokenizer `sql` (an FTS5 table's statement) names.
fn probe_terms(conn: &Connection, table: &str, sql: &str, probes: &[&str]) -> BTreeMap<String, BTreeSet<String>> {
    let tokenizer = tokenize_option(sql)
        .map(|t| format!(", tokenize = {t}"))
        .unwrap_or_default();
    let scratch = format!("forensics_probes_{table}");
    let scratch_vocab = quote_ident(&format!("{scratch}_vocab"));
    conn.execute_batch(&format!(
        "DROP TABLE IF EXISTS temp.{scratch_vocab};
         DROP TABLE IF EXISTS temp.{0};
         CREATE VIRTUAL TABLE temp.{0} USING fts5(probe{tokenizer});
         CREATE VIRTUAL TABLE temp.{scratch_vocab} USING fts5vocab(temp, {0}, instance);",
        quote_ident(&scratch)
    ))
    .expect("a scratch FTS5 table with the index's tokenizer");
    for (i, probe) in probes.iter().enumerate() {
        conn.execute(
            &format!(
                "INSERT INTO temp.{}(rowid, probe) VALUES (?1, ?2)",
                quote_ident(&scratch)
            ),
            rusqlite::params![i as i64, probe],
        )
        .expect("a probe into the scratch table");
    }
    let mut terms: BTreeMap<String, BTreeSet<String>> =
        probes.iter().map(|p| (p.to_string(), BTreeSet::new())).collect();
    let rows: Vec<(i64, String)> = conn
        .prepare(&format!("SELECT doc, term FROM temp.{scratch_vocab}"))
        .and_then(|mut stmt| stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect())
        .expect("the probes' terms");
    for (doc, term) in rows {
        if let Some(probe) = usize::try_from(doc).ok().and_then(|i| probes.get(i)) {
            terms.entry(probe.to_string()).or_default().insert(term);
        }
    }
    terms
}

/// The literal of an FTS5 statement's `tokenize = '...'` option, quotes included.
fn tokenize_option(sql: &str) -> Option<&str> {
    let at = sql.to_ascii_lowercase().find("tokenize")?;
    let rest = sql[at + "tokenize".len()..]
        .trim_start()
        .strip_prefix('=')?
        .trim_start();
    let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let mut end = 1;
    loop {
        end += rest[end..].find(quote)? + 1;
        // A doubled quote is one quote inside the literal.
        if rest[end..].starts_with(quote) {
            end += 1;
        } else {
            return Some(&rest[..end]);
        }
    }
}

/// The probes a phrase query on `table` matches, as the app's search would.
fn scan_fts5_search(conn: &Connection, table: &str, probes: &[&str]) -> BTreeSet<String> {
    let table = quote_ident(table);
    probes
        .iter()
        .filter(|probe| {
            let phrase = format!("\"{}\"", probe.replace('"', "\"\""));
            conn.query_row(
                &format!("SELECT count(*) FROM {table} WHERE {table} MATCH ?1"),
                [phrase],
                |row| row.get::<_, i64>(0),
            )
            .unwrap_or_else(|e| panic!("cannot search {table} for {probe:?}: {e}"))
                > 0
        })
        .map(|probe| probe.to_string())
        .collect()
}

// ---- Automerge -------------------------------------------------------------------------------

/// Every chunk's magic bytes; a chunk is magic, a 4-byte checksum, a type byte, a LEB128
/// length and that many bytes.
const AUTOMERGE_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

/// Automerge chunks found whole inside `bytes` (a page, say), each as its own bytes.
fn carve_chunks(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    let mut at = 0;
    while let Some(offset) = bytes[at..].windows(4).position(|w| w == AUTOMERGE_MAGIC) {
        let start = at + offset;
        at = start + 1;
        let mut length: u64 = 0;
        let mut pos = start + 9;
        for shift in (0..63).step_by(7) {
            let Some(byte) = bytes.get(pos) else { break };
            length |= u64::from(byte & 0x7f) << shift;
            pos += 1;
            if byte & 0x80 == 0 {
                break;
            }
        }
        if let Some(end) = usize::try_from(length).ok().and_then(|l| pos.checked_add(l))
            && end <= bytes.len()
        {
            chunks.push(bytes[start..end].to_vec());
        }
    }
    chunks
}

/// Every string an Automerge document or change in `blobs` holds or ever held. Whole documents
/// are read at every change of their history; single changes (a store keeps a document's
/// changes one to a row) are joined up with the changes and documents they depend on and read
/// the same way; and each change's own operations are read too, for a change whose
/// dependencies are gone. Blobs that are not Automerge are skipped.
fn automerge_texts(blobs: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut docs = Vec::new();
    let mut changes: BTreeMap<ChangeHash, Change> = BTreeMap::new();
    for blob in blobs {
        if let Some(change) = quietly(|| Change::from_bytes(blob.clone()).ok()) {
            changes.insert(change.hash(), change);
        } else if let Some(doc) = quietly(|| AutoCommit::load(blob).ok()) {
            docs.push(doc);
        } else if let Some(doc) = quietly(|| {
            let mut doc = AutoCommit::new();
            doc.load_incremental(blob).ok().map(|_| doc)
        }) {
            docs.push(doc);
        }
    }

    let mut texts = Vec::new();
    for change in changes.values() {
        texts.extend(change_texts(change));
    }
    for group in connected(&changes) {
        let missing: BTreeSet<ChangeHash> = group
            .iter()
            .flat_map(|change| change.deps().iter().copied())
            .filter(|dep| !changes.contains_key(dep))
            .collect();
        // The document the group continues from, if its history is stored elsewhere.
        let base = if missing.is_empty() {
            None
        } else {
            docs.iter_mut()
                .position(|doc| missing.iter().all(|dep| doc.get_change_by_hash(dep).is_some()))
        };
        let base = base.map(|i| docs[i].clone()).unwrap_or_default();
        if let Some(doc) = quietly(move || {
            let mut doc = base;
            doc.apply_changes(group).ok().map(|_| doc)
        }) {
            docs.push(doc);
        }
    }
    for mut doc in docs {
        texts.extend(quietly(|| history_texts(&mut doc)).unwrap_or_default());
    }
    texts
}

/// Runs `f`, turning a panic inside Automerge (on bytes it was never meant to see) into `None`.
fn quietly<T>(f: impl FnOnce() -> Option<T>) -> Option<T> {
    panic::catch_unwind(AssertUnwindSafe(f)).ok().flatten()
}

/// The changes grouped by the dependencies among them: each group is one document's changes.
fn connected(changes: &BTreeMap<ChangeHash, Change>) -> Vec<Vec<Change>> {
    let hashes: Vec<ChangeHash> = changes.keys().copied().collect();
    let index: BTreeMap<ChangeHash, usize> = hashes.iter().enumerate().map(|(i, h)| (*h, i)).collect();
    let mut parent: Vec<usize> = (0..hashes.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for (i, change) in changes.values().enumerate() {
        for dep in change.deps() {
            if let Some(&j) = index.get(dep) {
                let (a, b) = (root(&mut parent, i), root(&mut parent, j));
                parent[a] = b;
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<Change>> = BTreeMap::new();
    for (i, change) in changes.values().enumerate() {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(change.clone());
    }
    groups.into_values().collect()
}

/// A change's message and the strings its operations put, those of consecutive operations
/// joined (typing a word puts it one character per operation).
fn change_texts(change: &Change) -> Vec<Vec<u8>> {
    let expanded = quietly(|| Some(change.decode()));
    let Some(expanded) = expanded else { return Vec::new() };
    let mut texts: Vec<Vec<u8>> = expanded.message.iter().map(|m| m.clone().into_bytes()).collect();
    let mut run = Vec::new();
    for op in &expanded.operations {
        match op.primitive_value() {
            Some(ScalarValue::Str(s)) => run.extend_from_slice(s.as_bytes()),
            Some(ScalarValue::Bytes(b)) | Some(ScalarValue::Unknown { bytes: b, .. }) => texts.push(b),
            _ => texts.push(std::mem::take(&mut run)),
        }
    }
    texts.push(run);
    texts
}

/// Everything the document held after each change in its history, and at its heads.
fn history_texts(doc: &mut AutoCommit) -> Option<Vec<Vec<u8>>> {
    let mut points: Vec<Vec<ChangeHash>> = doc.get_changes(&[]).iter().map(|c| vec![c.hash()]).collect();
    points.push(doc.get_heads());
    let mut texts = Vec::new();
    for heads in points {
        walk(doc, &automerge::ROOT, &heads, &mut texts);
    }
    Some(texts)
}

fn walk(doc: &AutoCommit, obj: &ObjId, heads: &[ChangeHash], out: &mut Vec<Vec<u8>>) {
    let values = match doc.object_type(obj) {
        Ok(ObjType::Map | ObjType::Table) => doc
            .keys_at(obj, heads)
            .flat_map(|key| {
                out.push(key.clone().into_bytes());
                doc.get_all_at(obj, key.as_str(), heads).unwrap_or_default()
            })
            .collect(),
        Ok(ObjType::List) => (0..doc.length_at(obj, heads))
            .flat_map(|i| doc.get_all_at(obj, i, heads).unwrap_or_default())
            .collect(),
        Ok(ObjType::Text) => {
            out.extend(doc.text_at(obj, heads).ok().map(String::into_bytes));
            for mark in doc.marks_at(obj, heads).unwrap_or_default() {
                out.push(mark.name().as_bytes().to_vec());
                out.extend(scalar_bytes(mark.value()));
            }
            Vec::new()
        }
        Err(_) => Vec::new(),
    };
    for (value, id) in values {
        match value {
            Value::Object(_) => walk(doc, &id, heads, out),
            Value::Scalar(scalar) => out.extend(scalar_bytes(&scalar)),
        }
    }
}

fn scalar_bytes(value: &ScalarValue) -> Option<Vec<u8>> {
    match value {
        ScalarValue::Str(s) => Some(s.as_bytes().to_vec()),
        ScalarValue::Bytes(b) | ScalarValue::Unknown { bytes: b, .. } => Some(b.clone()),
        _ => None,
    }
}
