//! Interned identifiers: external string ids mapped to dense integer newtypes.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;

/// A dense integer id, assigned in order of first appearance.
pub trait Id: Copy + Eq + Ord + std::hash::Hash + fmt::Debug {
    /// The id with this index.
    fn from_index(index: usize) -> Self;
    /// The index of this id, `0..len`.
    fn index(self) -> usize;
}

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[derive(serde::Serialize, serde::Deserialize)]
        #[repr(transparent)]
        pub struct $name(pub u32);

        impl Id for $name {
            #[inline]
            fn from_index(index: usize) -> Self {
                $name(u32::try_from(index).expect("more than u32::MAX ids"))
            }
            #[inline]
            fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

define_id!(
    /// A document of the corpus: its position in the index's doc-id table.
    DocId
);
define_id!(
    /// A query: its position in the query table it was read into.
    QueryId
);

/// Maps external string ids to dense [`Id`]s and back.
///
/// Ids are assigned `0, 1, 2, ...` in order of insertion, so an `IdTable` is also the
/// ordered list of the external ids.
#[derive(Clone, Debug)]
pub struct IdTable<I> {
    names: Vec<String>,
    lookup: HashMap<String, u32>,
    _id: PhantomData<I>,
}

impl<I> Default for IdTable<I> {
    fn default() -> Self {
        IdTable {
            names: Vec::new(),
            lookup: HashMap::new(),
            _id: PhantomData,
        }
    }
}

impl<I: Id> IdTable<I> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of `name`, adding it if it is new.
    pub fn intern(&mut self, name: &str) -> I {
        if let Some(&i) = self.lookup.get(name) {
            return I::from_index(i as usize);
        }
        self.insert_new(name.to_owned()).expect("checked above")
    }

    /// Adds `name` and returns its id, or `None` when it is already present.
    pub fn insert_new(&mut self, name: String) -> Option<I> {
        let next = I::from_index(self.names.len());
        match self.lookup.entry(name) {
            std::collections::hash_map::Entry::Occupied(_) => None,
            std::collections::hash_map::Entry::Vacant(slot) => {
                self.names.push(slot.key().clone());
                slot.insert(next.index() as u32);
                Some(next)
            }
        }
    }

    /// The id of `name`, if present.
    pub fn get(&self, name: &str) -> Option<I> {
        self.lookup.get(name).map(|&i| I::from_index(i as usize))
    }

    /// The external id of `id`.
    ///
    /// # Panics
    /// If `id` was not issued by this table.
    pub fn name(&self, id: I) -> &str {
        &self.names[id.index()]
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when the table holds no id.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// External ids in id order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// `(id, external id)` pairs in id order.
    pub fn iter(&self) -> impl Iterator<Item = (I, &str)> + '_ {
        self.names
            .iter()
            .enumerate()
            .map(|(i, n)| (I::from_index(i), n.as_str()))
    }
}

impl<I: Id> FromIterator<String> for IdTable<I> {
    /// Builds a table from distinct names; a repeated name keeps its first id.
    fn from_iter<T: IntoIterator<Item = String>>(iter: T) -> Self {
        let mut table = IdTable::new();
        for name in iter {
            table.insert_new(name);
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interning_is_stable_and_reversible() {
        let mut t: IdTable<DocId> = IdTable::new();
        let a = t.intern("doc-a");
        let b = t.intern("doc-b");
        assert_eq!(t.intern("doc-a"), a);
        assert_eq!((a, b), (DocId(0), DocId(1)));
        assert_eq!(t.name(b), "doc-b");
        assert_eq!(t.get("missing"), None);
        assert_eq!(t.insert_new("doc-b".into()), None);
        assert_eq!(t.len(), 2);
    }
}
