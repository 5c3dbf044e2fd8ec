//! Lists whose items are never hard-deleted. Automerge drops an edit made inside a list item that
//! someone else deleted at the same time, so removing an item marks it cancelled instead.

use automerge::{AutoCommit, ObjId, ObjType, ROOT, ReadDoc, transaction::Transactable};

use super::fields::{self, Field};
use crate::error::{Error, Result};

/// A list item's own id, stored in the item, stable across replicas and reorderings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemId(pub String);

impl ItemId {
    fn random() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }
}

/// Appends a new map to the list at root key `list` and returns its id and object.
pub(crate) fn append(doc: &mut AutoCommit, list: &str) -> Result<(ItemId, ObjId)> {
    let list = fields::object(doc, &ROOT, list, ObjType::List)?;
    let index = doc.length(&list);
    let item = doc.insert_object(&list, index, ObjType::Map)?;
    let id = ItemId::random();
    fields::put(doc, &item, "id", &id.0)?;
    fields::put(doc, &item, "cancelled", &false)?;
    Ok((id, item))
}

pub(crate) fn item_id(doc: &AutoCommit, item: &ObjId) -> Result<ItemId> {
    let id: Field<String> = fields::require_field(doc, item, "id")?;
    Ok(ItemId(id.value))
}

pub(crate) fn find(doc: &AutoCommit, list: &str, id: &ItemId) -> Result<ObjId> {
    let list_obj = fields::object(doc, &ROOT, list, ObjType::List)?;
    fields::list_items(doc, &list_obj)
        .into_iter()
        .find(|item| item_id(doc, item).is_ok_and(|found| &found == id))
        .ok_or_else(|| Error::invalid(format!("{list} item"), format!("no item with id {}", id.0)))
}

pub(crate) fn cancel(doc: &mut AutoCommit, item: &ObjId) -> Result<()> {
    fields::put(doc, item, "cancelled", &true)
}

/// An item counts as cancelled if anyone cancelled it, even if someone else concurrently wrote
/// `false`: cancelling is the deliberate act, and the item stays visible either way.
pub(crate) fn is_cancelled(doc: &AutoCommit, item: &ObjId) -> Result<bool> {
    Ok(fields::get_field::<bool>(doc, item, "cancelled")?.is_some_and(|f| f.value || f.concurrent.contains(&true)))
}
