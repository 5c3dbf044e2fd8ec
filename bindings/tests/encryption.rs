//! What an app sees of encryption at rest: a wrong or missing key is `WrongKey` (never a crash,
//! never an empty store), and `rekey` moves the store to a new key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use outpost::{Outpost, OutpostError};

fn open(path: &str, key: Option<u8>) -> Result<std::sync::Arc<Outpost>, OutpostError> {
    Outpost::open(path.to_string(), key.map(|byte| vec![byte; 32]))
}

#[test]
fn a_wrong_or_missing_key_is_wrong_key_and_rekey_moves_the_store_to_the_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("phone.sqlite3").display().to_string();
    drop(open(&path, Some(1)).unwrap());

    for (key, why) in [(Some(2), "another key"), (None, "no key")] {
        match open(&path, key) {
            Err(OutpostError::WrongKey { reason }) => assert!(reason.contains("key"), "{why}: {reason}"),
            Err(other) => panic!("{why}: expected WrongKey, got {other}"),
            Ok(_) => panic!("{why}: the store opened"),
        }
    }

    let phone = open(&path, Some(1)).unwrap();
    let err = phone.rekey(vec![3; 16]).unwrap_err();
    assert!(
        matches!(&err, OutpostError::InvalidInput { field, .. } if field == "key"),
        "{err}"
    );
    phone.rekey(vec![3; 32]).unwrap();
    drop(phone);
    assert!(matches!(open(&path, Some(1)), Err(OutpostError::WrongKey { .. })));
    assert!(open(&path, Some(3)).unwrap().enrolment().is_none());
}
