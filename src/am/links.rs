//! Graph edits shared by insert and VACUUM: adding an edge to a full node without cutting
//! another node's only route, and recording what could not be done for VACUUM to repair.

use super::index::write_meta;
use super::pages::{self, Wal};
use super::store::PgStore;
use pgrx::pg_sys::Relation;
use vsag_core::page::{ItemPointer, NodeMut};

/// What `link` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Linked {
    /// The edge was there already, or `from` is a tombstone (never worth an edge).
    Unchanged,
    /// Appended, or it replaced an edge whose target `to` links to as well.
    Kept,
    /// `from` was full and `to` shared no neighbour with it: the displaced neighbour was
    /// handed to `to`, at the cost of `to`'s last edge (`Some`: that target, which may now
    /// lack an in-edge).
    HandedOver(Option<u64>),
}

/// Makes `from` link to `to` (whose navigation code is `to_code`). A full `from` gives up
/// the farthest neighbour that `to` also links to, so every route through `from` survives
/// (from → to → it); failing that its last one, which is then handed to `to`.
/// (`wal`: unlogged only while a build writes the index.)
pub unsafe fn link(store: &mut PgStore, from: ItemPointer, to: ItemPointer, to_code: &[u8], wal: Wal) -> Linked {
    let layout = store.st.layout;
    if from == to {
        return Linked::Unchanged;
    }
    let to_list: Vec<ItemPointer> = store.with_node(to.to_u64(), |n| n.neighbours().collect()).unwrap_or_default();
    let mut displaced = None;
    let mut result = Linked::Unchanged;
    pages::modify_item_as(store.index, from, wal, |b| {
        let mut node = NodeMut::new(&layout, b);
        let r = node.as_ref();
        if r.is_deleted() || r.neighbours().any(|p| p == to) {
            return false;
        }
        let degree = r.degree();
        if degree < layout.m {
            node.set_neighbour(degree, to, Some(to_code));
            result = Linked::Kept;
            return true;
        }
        let list: Vec<ItemPointer> = r.neighbours().collect();
        let slot = match list.iter().rposition(|p| to_list.contains(p)) {
            Some(s) => {
                result = Linked::Kept;
                s
            }
            None => {
                let s = layout.m - 1;
                displaced = Some((list[s], r.inline_code(s).map(|c| c.to_vec())));
                s
            }
        };
        node.set_neighbour(slot, to, Some(to_code));
        true
    });
    let Some((w, w_code)) = displaced else { return result };
    let mut lost = None;
    pages::modify_item_as(store.index, to, wal, |b| {
        let mut node = NodeMut::new(&layout, b);
        let r = node.as_ref();
        if r.neighbours().any(|p| p == w) || w == to {
            return false;
        }
        let degree = r.degree();
        let slot = if degree < layout.m { degree } else { layout.m - 1 };
        if slot < degree {
            lost = Some(r.neighbour(slot).to_u64());
        }
        node.set_neighbour(slot, w, w_code.as_deref());
        true
    });
    Linked::HandedOver(lost)
}

/// Records `n` events VACUUM must repair (see `MetaPage::pending_repair`); nothing is
/// written when `n` is 0.
pub unsafe fn note_pending_repair(index: Relation, n: u64) {
    if n > 0 {
        write_meta(index, |m| m.pending_repair = m.pending_repair.saturating_add(n));
    }
}
