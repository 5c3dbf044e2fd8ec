//! The audit trail on every backend: entries chain from the start and read back exactly as
//! written; filters by record, user and time; checkpoints sign the chain once and never a broken
//! one; retention removes whole segments and leaves an anchor; two processes appending at once
//! form one chain; and the schema refuses the server's own attempts to rewrite history.
// These are test bodies, called from the #[test]s `on_every_backend!` makes: a failed step
// should panic where it failed.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use outpost_server::Error;
use outpost_server::audit::{self, AuditSettings, GENESIS, Verification, checkpoint_message, entry_hash};
use outpost_server::signing::{self, ServerKey};
use outpost_server::storage::{AuditEntry, AuditFilter, ChainedEntry, Storage};

use crate::Backend;

const NOW: i64 = 1_760_000_000;
const DAY: i64 = 86_400;

fn entry(at: i64, who: &str, subject: &str, detail: &str) -> AuditEntry {
    AuditEntry {
        at,
        who: who.into(),
        action: "push".into(),
        subject: subject.into(),
        detail: detail.into(),
        from: String::new(),
    }
}

fn verify(storage: &dyn Storage, key: &ServerKey) -> Verification {
    audit::verify(storage, &[key.public_key().to_vec()]).unwrap()
}

fn seqs(entries: &[ChainedEntry]) -> Vec<u64> {
    entries.iter().map(|e| e.seq).collect()
}

fn entries_chain_from_genesis_and_read_back_as_written(s: &Backend) {
    let all = AuditFilter::default();
    assert_eq!(s.audit_head().unwrap(), None);
    assert!(s.audit_entries(&all, 0, 10).unwrap().is_empty());
    assert!(s.audit_latest(&all, 10).unwrap().is_empty());
    assert!(s.audit_log(10).unwrap().is_empty());

    let written = [
        AuditEntry {
            from: "203.0.113.7".into(),
            ..entry(i64::MAX, "ann/dev-1", "visit-1", "Zoë's ✓ 'quoted' \\ %_")
        },
        entry(-1, "admin", "", ""),
        AuditEntry {
            action: "enrol-device".into(),
            from: "2001:db8::1".into(),
            ..entry(NOW, "ann", "dev-1", "team north")
        },
    ];
    for e in &written {
        s.audit(e).unwrap();
    }

    let chained = s.audit_entries(&all, 0, 10).unwrap();
    assert_eq!(seqs(&chained), [1, 2, 3]);
    let mut prev = GENESIS;
    for (stored, e) in chained.iter().zip(&written) {
        assert_eq!(&stored.entry, e);
        assert_eq!(stored.prev_hash, prev);
        assert_eq!(stored.hash, entry_hash(&prev, stored.seq, e));
        prev = stored.hash;
    }
    assert_eq!(s.audit_head().unwrap(), Some((3, prev)));

    // Newest first, and a limit of none is none.
    assert_eq!(s.audit_log(2).unwrap(), [written[2].clone(), written[1].clone()]);
    assert!(s.audit_log(0).unwrap().is_empty());
    assert_eq!(seqs(&s.audit_latest(&all, 2).unwrap()), [3, 2]);
    assert_eq!(seqs(&s.audit_entries(&all, 1, 1).unwrap()), [2]);
    assert!(s.audit_entries(&all, 3, 10).unwrap().is_empty());
    assert!(s.audit_entries(&all, u64::MAX, 10).unwrap().is_empty());
}

fn entries_are_found_by_record_and_by_user_and_its_devices(s: &Backend) {
    for (who, subject) in [
        ("ann", "visit-1"),
        ("ann/dev-1", "visit-2"),
        ("ann/web", "visit-1"),
        ("anna/dev-2", "visit-1"),
        ("an_", "visit-3"),
        // Both sort between "ann/" and "ann0" in an ICU locale, never in byte order.
        ("Ann/dev-3", "visit-1"),
        ("ann#2", "visit-4"),
    ] {
        s.audit(&entry(1, who, subject, "")).unwrap();
    }
    let latest = |filter: AuditFilter| seqs(&s.audit_latest(&filter, 10).unwrap());
    let user = |u: &str| AuditFilter {
        user: Some(u.into()),
        ..AuditFilter::default()
    };
    assert_eq!(latest(user("ann")), [3, 2, 1]);
    assert_eq!(latest(user("an")), Vec::<u64>::new());
    assert_eq!(latest(user("an_")), [5]);
    let visit_1 = AuditFilter {
        record: Some("visit-1".into()),
        ..AuditFilter::default()
    };
    assert_eq!(latest(visit_1.clone()), [6, 4, 3, 1]);
    assert_eq!(
        latest(AuditFilter {
            user: Some("ann".into()),
            ..visit_1
        }),
        [3, 1]
    );
    assert_eq!(s.audit_latest(&user("ann"), 1).unwrap()[0].seq, 3);
    assert_eq!(seqs(&s.audit_entries(&user("ann"), 1, 1).unwrap()), [2]);
}

fn entries_are_found_since_a_time_whatever_order_they_were_written_in(s: &Backend) {
    for at in [300, 100, 200, 300] {
        s.audit(&entry(at, "admin", "north", "")).unwrap();
    }
    let since = |at: i64, subject: Option<&str>| AuditFilter {
        since: Some(at),
        record: subject.map(String::from),
        ..AuditFilter::default()
    };
    assert_eq!(seqs(&s.audit_entries(&since(200, None), 0, 10).unwrap()), [1, 3, 4]);
    assert_eq!(seqs(&s.audit_latest(&since(300, None), 10).unwrap()), [4, 1]);
    assert_eq!(
        seqs(&s.audit_entries(&since(200, Some("north")), 1, 10).unwrap()),
        [3, 4]
    );
    assert!(s.audit_entries(&since(200, Some("south")), 0, 10).unwrap().is_empty());
}

fn checkpoints_sign_the_chain_once_and_are_kept_in_order(s: &Backend) {
    let key = ServerKey::generate().unwrap();
    let err = s.add_checkpoint(None, NOW, &key).unwrap_err();
    assert!(matches!(err, Error::NotFound(_)), "{err}");
    for n in 0..4 {
        s.audit(&entry(NOW, "admin", "north", &format!("entry {n}"))).unwrap();
    }
    let chained = s.audit_entries(&AuditFilter::default(), 0, 10).unwrap();

    let second = s.add_checkpoint(Some(2), 100, &key).unwrap();
    assert_eq!((second.seq, second.hash, second.at), (2, chained[1].hash, 100));
    assert_eq!(second.public_key, key.public_key());
    let message = checkpoint_message(2, &chained[1].hash, 100);
    assert!(signing::verify(key.public_key(), &message, &second.signature));

    let head = s.add_checkpoint(None, 200, &key).unwrap();
    assert_eq!((head.seq, head.hash), (4, chained[3].hash));
    // Signing again where one is signed keeps the first, whoever asks and when.
    let other_key = ServerKey::generate().unwrap();
    assert_eq!(s.add_checkpoint(Some(2), 300, &other_key).unwrap(), second);
    let err = s.add_checkpoint(Some(5), NOW, &key).unwrap_err();
    assert!(matches!(err, Error::BadRequest { .. }), "{err}");
    assert!(err.to_string().contains("past the last"), "{err}");
    // One between two signed ones: listed in seq order, not the order signed.
    s.add_checkpoint(Some(3), 400, &key).unwrap();
    let listed: Vec<(u64, i64)> = s.checkpoints().unwrap().iter().map(|c| (c.seq, c.at)).collect();
    assert_eq!(listed, [(2, 100), (3, 400), (4, 200)]);
    assert_eq!(s.last_checkpoint().unwrap(), Some(head));

    let verified = verify(&**s, &key);
    assert!(verified.is_intact(), "{verified}");
    assert_eq!(
        (verified.last, verified.checkpoints, verified.last_checkpoint),
        (Some(4), 3, Some(4))
    );
}

fn a_chain_broken_since_the_last_checkpoint_is_never_signed(s: &Backend) {
    let key = ServerKey::generate().unwrap();
    for n in 0..5 {
        s.audit(&entry(NOW, "admin", "north", &format!("entry {n}"))).unwrap();
    }
    s.add_checkpoint(Some(2), NOW, &key).unwrap();
    // As someone with the database's credentials would, past the trigger.
    let drop_trigger = match s {
        Backend::Sqlite { .. } => "DROP TRIGGER audit_append_only",
        Backend::Postgres { .. } => "DROP TRIGGER audit_append_only ON audit",
    };
    raw_sql(
        s,
        &format!("{drop_trigger}; UPDATE audit SET detail = 'nothing' WHERE seq = 4"),
    )
    .unwrap();

    let err = s.add_checkpoint(None, NOW, &key).unwrap_err();
    assert!(matches!(err, Error::Conflict(_)), "{err}");
    assert!(err.to_string().contains("seq 4"), "{err}");
    assert_eq!(s.last_checkpoint().unwrap().map(|c| c.seq), Some(2));
    // Before the break the chain still holds, and may still be signed.
    assert_eq!(s.add_checkpoint(Some(3), NOW, &key).unwrap().seq, 3);
    let broken = verify(&**s, &key).broken.unwrap();
    assert_eq!(broken.seq, 4);
    assert!(broken.reason.contains("altered"), "{broken}");
}

fn retention_removes_whole_old_segments_and_what_remains_still_verifies(s: &Backend) {
    let key = ServerKey::generate().unwrap();
    let old = NOW - 100 * DAY;
    // 7 is recent, 8 old again (another process's clock): the segment holding 7 stays whole.
    for (n, at) in [old, old, old, old, old, old, NOW, old, NOW].into_iter().enumerate() {
        s.audit(&entry(at, "admin", "north", &format!("entry {}", n + 1)))
            .unwrap();
    }
    assert_eq!(
        s.retain(NOW - 30 * DAY).unwrap(),
        None,
        "no checkpoint anchors a cut yet"
    );
    for seq in [3, 6, 8] {
        s.add_checkpoint(Some(seq), NOW, &key).unwrap();
    }
    let head = s.audit_head().unwrap();

    assert_eq!(s.retain(NOW - 30 * DAY).unwrap(), Some(6));
    assert_eq!(
        seqs(&s.audit_entries(&AuditFilter::default(), 0, 10).unwrap()),
        [7, 8, 9]
    );
    assert_eq!(
        s.checkpoints().unwrap().iter().map(|c| c.seq).collect::<Vec<_>>(),
        [6, 8]
    );
    assert_eq!(s.audit_head().unwrap(), head);
    let after = verify(&**s, &key);
    assert!(after.is_intact(), "{after}");
    assert_eq!((after.anchor, after.first, after.last), (Some(6), Some(7), Some(9)));
    assert_eq!(s.retain(NOW - 30 * DAY).unwrap(), None, "nothing more is old");
    let err = s.add_checkpoint(Some(5), NOW, &key).unwrap_err();
    assert!(err.to_string().contains("retention removed it"), "{err}");

    // Years later everything is old: every entry goes, and the last checkpoint anchors the next.
    let later = NOW + 1_000 * DAY;
    s.add_checkpoint(None, later, &key).unwrap();
    assert_eq!(s.retain(later).unwrap(), Some(9));
    assert!(s.audit_entries(&AuditFilter::default(), 0, 10).unwrap().is_empty());
    assert_eq!(s.audit_head().unwrap(), head, "the anchor is the head");
    assert_eq!(s.checkpoints().unwrap().iter().map(|c| c.seq).collect::<Vec<_>>(), [9]);
    let empty = verify(&**s, &key);
    assert!(empty.is_intact(), "{empty}");
    assert_eq!((empty.anchor, empty.entries), (Some(9), 0));

    s.audit(&entry(later, "admin", "north", "entry 10")).unwrap();
    let resumed = s.audit_entries(&AuditFilter::default(), 0, 10).unwrap();
    assert_eq!(
        (resumed[0].seq, Some(resumed[0].prev_hash)),
        (10, head.map(|(_, hash)| hash))
    );
    let resumed = verify(&**s, &key);
    assert!(resumed.is_intact(), "{resumed}");
    assert_eq!((resumed.first, resumed.anchor), (Some(10), Some(9)));
}

fn the_schema_refuses_to_change_or_remove_entries_outside_retention(s: &Backend) {
    let key = ServerKey::generate().unwrap();
    for n in 0..5 {
        s.audit(&entry(NOW - 100 * DAY, "admin", "north", &format!("entry {n}")))
            .unwrap();
    }
    s.add_checkpoint(Some(3), NOW, &key).unwrap();
    let refused = |sql: &str, why: &str| {
        let err = raw_sql(s, sql).unwrap_err();
        assert!(err.contains(why), "{sql}: {err}");
    };
    refused("UPDATE audit SET detail = 'x' WHERE seq = 2", "append-only");
    refused("DELETE FROM audit WHERE seq = 2", "only retention removes entries");
    refused("DELETE FROM audit", "only retention removes entries");
    refused("UPDATE audit_checkpoints SET at = 0", "never changed");
    refused("DELETE FROM audit_checkpoints", "never the anchor");
    if let Backend::Postgres { .. } = s {
        refused("TRUNCATE audit", "only retention removes entries");
        refused("TRUNCATE audit_checkpoints", "never the anchor");
    }

    assert_eq!(s.retain(NOW).unwrap(), Some(3));
    // Past the seq retention reached, and its anchor, nothing more goes.
    refused("DELETE FROM audit WHERE seq = 4", "only retention removes entries");
    refused("DELETE FROM audit_checkpoints WHERE seq = 3", "never the anchor");
    refused("UPDATE audit SET detail = 'x' WHERE seq = 5", "append-only");
    let verified = verify(&**s, &key);
    assert!(verified.is_intact(), "{verified}");
    assert_eq!(
        (verified.anchor, verified.first, verified.last),
        (Some(3), Some(4), Some(5))
    );
}

fn two_storages_appending_at_once_form_one_chain(s: &Backend) {
    const EACH: u64 = 150;
    let other = s.reopen();
    let key = ServerKey::generate().unwrap();
    let settings = AuditSettings {
        checkpoint_every: 25,
        ..AuditSettings::new(Path::new("unused"))
    };
    std::thread::scope(|scope| {
        for (writer, storage) in [(0, &**s), (1, &*other)] {
            let (key, settings) = (&key, &settings);
            scope.spawn(move || {
                for n in 0..EACH {
                    storage
                        .audit(&entry(NOW, &format!("writer-{writer}"), "north", &format!("entry {n}")))
                        .unwrap();
                    // Both sign what is due, often the same checkpoint at once.
                    audit::seal(storage, key, settings, NOW).unwrap();
                }
            });
        }
    });

    for storage in [&**s, &*other] {
        let verified = verify(storage, &key);
        assert!(verified.is_intact(), "{verified}");
        assert_eq!(
            (verified.first, verified.last, verified.entries, verified.checkpoints),
            (Some(1), Some(2 * EACH), 2 * EACH, 12)
        );
    }
    for writer in ["writer-0", "writer-1"] {
        let filter = AuditFilter {
            user: Some(writer.into()),
            ..AuditFilter::default()
        };
        let written = s.audit_entries(&filter, 0, 1_000).unwrap();
        let details: Vec<String> = written.iter().map(|e| e.entry.detail.clone()).collect();
        let expected: Vec<String> = (0..EACH).map(|n| format!("entry {n}")).collect();
        assert_eq!(details, expected, "{writer}'s entries, in the order it wrote them");
    }
}

/// Runs `sql` on the backend's database directly, not through the storage; the database's own
/// message when it refuses.
fn raw_sql(s: &Backend, sql: &str) -> Result<(), String> {
    match s {
        Backend::Sqlite { _dir: dir, .. } => {
            let conn = rusqlite::Connection::open(dir.path().join("server.db")).unwrap();
            conn.execute_batch(sql).map_err(|e| e.to_string())
        }
        Backend::Postgres { schema, .. } => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut config: tokio_postgres::Config = crate::postgres_url().parse().unwrap();
                config.options(format!("-c search_path={schema}"));
                let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(connection);
                client.batch_execute(sql).await.map_err(|e| match e.as_db_error() {
                    Some(db) => db.message().to_string(),
                    None => e.to_string(),
                })
            })
        }
    }
}

on_every_backend!(
    entries_chain_from_genesis_and_read_back_as_written,
    entries_are_found_by_record_and_by_user_and_its_devices,
    entries_are_found_since_a_time_whatever_order_they_were_written_in,
    checkpoints_sign_the_chain_once_and_are_kept_in_order,
    a_chain_broken_since_the_last_checkpoint_is_never_signed,
    retention_removes_whole_old_segments_and_what_remains_still_verifies,
    the_schema_refuses_to_change_or_remove_entries_outside_retention,
    two_storages_appending_at_once_form_one_chain,
);
