//! Folding a duplicate's person record onto the survivor's. The first fold fills what the
//! survivor lacks and keeps the duplicate's other values beside the survivor's (`also_recorded`),
//! never overwriting, with two exceptions a lead would want: the higher risk tier, and a list
//! item cancelled (or consent withdrawn) on either. Later folds carry only what changed on the
//! duplicate since the last one: edits made on devices that had not yet heard of the merge, which
//! are applied to the survivor as the edits they were, the value they replace kept beside.

use std::str::FromStr;

use automerge::{AutoCommit, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value, transaction::Transactable};

use super::{ALSO_RECORDED, MERGED_FROM, MERGED_INTO, MOVED_FROM, also_recorded, object_at, scalar_text};
use crate::error::{Error, Result};
use crate::ids::{Author, PersonId};
use crate::model::header::{self, DocType};
use crate::model::person::RiskTier;
use crate::model::{fields, list};

/// Keys of a person record that are not the person's details: never folded.
const NOT_FOLDED: [&str; 10] = [
    "type",
    "schema",
    "person",
    "team",
    MERGED_INTO,
    super::MERGED_BY,
    super::MERGED_AT,
    MERGED_FROM,
    ALSO_RECORDED,
    MOVED_FROM,
];

/// Folds `duplicate` (its current state) onto `survivor`, as `by`. Returns whether the survivor
/// changed; folding again with nothing new on the duplicate changes nothing.
pub fn fold(
    survivor: &mut AutoCommit,
    survivor_id: &PersonId,
    duplicate: &mut AutoCommit,
    duplicate_id: &PersonId,
    by: &Author,
) -> Result<bool> {
    header::expect(survivor, survivor_id, DocType::Person)?;
    header::expect(duplicate, duplicate_id, DocType::Person)?;
    if survivor_id == duplicate_id {
        return Err(Error::invalid("survivor", "a person cannot be merged into themselves"));
    }
    let heads = duplicate.get_heads();
    let base = object_at(survivor, &ROOT, MERGED_FROM, ObjType::Map)
        .and_then(|ledger| fields::get_field::<String>(survivor, &ledger, duplicate_id.as_str()).ok()?)
        .and_then(|f| parse_heads(&f.value))
        // A duplicate re-created since (redacted) no longer has them: fold as the first time.
        .filter(|base| base.iter().all(|h| duplicate.get_change_by_hash(h).is_some()));
    if base.as_deref() == Some(heads.as_slice()) {
        return Ok(false);
    }
    survivor.set_author(Some(by.to_automerge()));
    let first = base.is_none();
    let mut fold = Fold {
        s: survivor,
        d: duplicate,
        from: duplicate_id.as_str().to_string(),
        base,
        changed: false,
    };
    let keys: Vec<String> = fold
        .d
        .keys(ROOT)
        .filter(|k| !NOT_FOLDED.contains(&k.as_str()))
        .collect();
    for key in keys {
        fold.entry(&ROOT, &ROOT, &key, &key)?;
    }
    if !fold.changed && !first {
        return Ok(false);
    }
    let ledger = match object_at(survivor, &ROOT, MERGED_FROM, ObjType::Map) {
        Some(ledger) => ledger,
        None => survivor.put_object(ROOT, MERGED_FROM, ObjType::Map)?,
    };
    let heads: Vec<String> = heads.iter().map(ToString::to_string).collect();
    fields::put(survivor, &ledger, duplicate_id.as_str(), &heads.join(","))?;
    Ok(true)
}

fn parse_heads(text: &str) -> Option<Vec<ChangeHash>> {
    let mut heads: Vec<ChangeHash> = text
        .split(',')
        .filter(|h| !h.is_empty())
        .map(ChangeHash::from_str)
        .collect::<std::result::Result<_, _>>()
        .ok()?;
    heads.sort();
    Some(heads)
}

struct Fold<'a> {
    s: &'a mut AutoCommit,
    d: &'a AutoCommit,
    from: String,
    /// The duplicate's heads at the last fold; None on the first.
    base: Option<Vec<ChangeHash>>,
    changed: bool,
}

impl Fold<'_> {
    fn entry(&mut self, d_obj: &ObjId, s_obj: &ObjId, key: &str, path: &str) -> Result<()> {
        let Some((value, d_child)) = self.d.get(d_obj, key)? else {
            return Ok(());
        };
        let Value::Object(kind) = value else {
            return self.scalar(d_obj, s_obj, key, path);
        };
        match self.s.get(s_obj, key)? {
            None if self.base.is_none() || self.is_new(d_obj, key) => {
                let s_child = self.s.put_object(s_obj, key, kind)?;
                self.copy(&d_child, &s_child, kind)?;
                self.changed = true;
            }
            Some((Value::Object(s_kind), s_child)) if s_kind == kind => match kind {
                ObjType::Map | ObjType::Table => {
                    let keys: Vec<String> = self.d.keys(&d_child).collect();
                    for k in keys {
                        self.entry(&d_child, &s_child, &k, &format!("{path}.{k}"))?;
                    }
                }
                ObjType::List => self.list(&d_child, &s_child, path)?,
                ObjType::Text => {
                    let theirs = self.d.text(&d_child)?;
                    if theirs != self.s.text(&s_child)? && (self.base.is_none() || self.is_new(d_obj, key)) {
                        self.record(path, &ScalarValue::Str(theirs.into()))?;
                    }
                }
            },
            _ => {}
        }
        Ok(())
    }

    /// Items are matched by their own id: one copied before is the same item on both records.
    fn list(&mut self, d_list: &ObjId, s_list: &ObjId, path: &str) -> Result<()> {
        let s_items: Vec<(String, ObjId)> = fields::list_items(self.s, s_list)
            .into_iter()
            .filter_map(|item| Some((list::item_id(self.s, &item).ok()?.0, item)))
            .collect();
        for d_item in fields::list_items(self.d, d_list) {
            // Outpost's list items all carry an id; one without is not ours to match.
            let Ok(id) = list::item_id(self.d, &d_item) else {
                continue;
            };
            match s_items.iter().find(|(s_id, _)| *s_id == id.0) {
                Some((_, s_item)) => {
                    let keys: Vec<String> = self.d.keys(&d_item).collect();
                    for k in keys {
                        self.entry(&d_item, s_item, &k, &format!("{path}.{}.{k}", id.0))?;
                    }
                }
                None => {
                    let at = self.s.length(s_list);
                    let s_item = self.s.insert_object(s_list, at, ObjType::Map)?;
                    self.copy(&d_item, &s_item, ObjType::Map)?;
                    self.changed = true;
                }
            }
        }
        Ok(())
    }

    fn scalar(&mut self, d_obj: &ObjId, s_obj: &ObjId, key: &str, path: &str) -> Result<()> {
        let theirs = values(self.d, d_obj, key, None);
        let mut ours = values(self.s, s_obj, key, None);
        let before = self.base.clone().map(|base| values(self.d, d_obj, key, Some(&base)));
        for value in theirs {
            if ours.contains(&value) {
                continue;
            }
            // Written on the duplicate since the last fold: an edit made without knowing of the merge.
            let newer = before.as_ref().is_some_and(|b| !b.contains(&value));
            if before.is_some() && !newer {
                continue;
            }
            let Some(current) = ours.first().cloned() else {
                self.s.put(s_obj, key, value.clone())?;
                self.changed = true;
                ours.push(value);
                continue;
            };
            let riskier = key == "risk_tier" && risk(&value) > risk(&current);
            let cancelled = value == ScalarValue::Boolean(true) && current == ScalarValue::Boolean(false);
            if newer || riskier || cancelled {
                for old in &ours {
                    if !matches!(old, ScalarValue::Boolean(_)) {
                        self.record(path, old)?;
                    }
                }
                self.s.put(s_obj, key, value.clone())?;
                self.changed = true;
                ours = vec![value];
            } else {
                self.record(path, &value)?;
            }
        }
        Ok(())
    }

    /// Whether `key` of `obj` on the duplicate is new since the last fold.
    fn is_new(&self, obj: &ObjId, key: &str) -> bool {
        match &self.base {
            None => true,
            Some(base) => !matches!(self.d.get_all_at(obj, key, base), Ok(found) if !found.is_empty()),
        }
    }

    /// Keeps a value of the duplicate's beside the survivor's, once.
    fn record(&mut self, field: &str, value: &ScalarValue) -> Result<()> {
        let text = scalar_text(value);
        if also_recorded(self.s)
            .iter()
            .any(|a| a.field == field && a.value == text)
        {
            return Ok(());
        }
        if object_at(self.s, &ROOT, ALSO_RECORDED, ObjType::List).is_none() {
            self.s.put_object(ROOT, ALSO_RECORDED, ObjType::List)?;
        }
        let (_, item) = list::append(self.s, ALSO_RECORDED)?;
        fields::put(self.s, &item, "field", &field.to_string())?;
        self.s.put(&item, "value", value.clone())?;
        fields::put(self.s, &item, "from", &self.from)?;
        self.changed = true;
        Ok(())
    }

    /// Copies the duplicate's object `d_obj` into the survivor's new, empty `s_obj`.
    fn copy(&mut self, d_obj: &ObjId, s_obj: &ObjId, kind: ObjType) -> Result<()> {
        match kind {
            ObjType::Map | ObjType::Table => {
                let keys: Vec<String> = self.d.keys(d_obj).collect();
                for key in keys {
                    match self.d.get(d_obj, key.as_str())? {
                        Some((Value::Scalar(v), _)) => self.s.put(s_obj, key.as_str(), v.into_owned())?,
                        Some((Value::Object(k), child)) => {
                            let new = self.s.put_object(s_obj, key.as_str(), k)?;
                            self.copy(&child, &new, k)?;
                        }
                        None => {}
                    }
                }
            }
            ObjType::List => {
                for i in 0..self.d.length(d_obj) {
                    match self.d.get(d_obj, i)? {
                        Some((Value::Scalar(v), _)) => self.s.insert(s_obj, i, v.into_owned())?,
                        Some((Value::Object(k), child)) => {
                            let new = self.s.insert_object(s_obj, i, k)?;
                            self.copy(&child, &new, k)?;
                        }
                        None => {}
                    }
                }
            }
            ObjType::Text => {
                let text = self.d.text(d_obj)?;
                self.s.splice_text(s_obj, 0, 0, &text)?;
            }
        }
        Ok(())
    }
}

/// Every readable value of `key`, the one replicas show first, as now or at `heads`.
fn values(doc: &AutoCommit, obj: &ObjId, key: &str, heads: Option<&[ChangeHash]>) -> Vec<ScalarValue> {
    let (winner, all) = match heads {
        None => (doc.get(obj, key), doc.get_all(obj, key)),
        Some(heads) => (doc.get_at(obj, key, heads), doc.get_all_at(obj, key, heads)),
    };
    let winner = winner.ok().flatten().map(|(_, id)| id);
    let mut found: Vec<(bool, ScalarValue)> = all
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(v, id)| match v {
            Value::Scalar(s) => Some((Some(&id) != winner.as_ref(), s.into_owned())),
            Value::Object(_) => None,
        })
        .collect();
    found.sort_by_key(|(later, _)| *later);
    found.into_iter().map(|(_, v)| v).collect()
}

/// A risk tier's rank, the higher the riskier; anything unreadable ranks below every tier.
fn risk(value: &ScalarValue) -> Option<std::cmp::Reverse<RiskTier>> {
    match value {
        ScalarValue::Str(s) => RiskTier::from_code(s).map(std::cmp::Reverse),
        _ => None,
    }
}
