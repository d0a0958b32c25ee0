//! Text identity: 64-bit keys of normalised text, so that a document whose text
//! equals a positive's (after [`dredge_core::normalize_text`]) is found without
//! keeping a second copy of the corpus.

use dredge_core::{DocId, DocStore, Id};
use rayon::prelude::*;

/// The key of a normalised text: FNV-1a (64-bit) of `normalize_text(text)`'s bytes,
/// computed without building the normalised string. Two texts equal after
/// normalisation have the same key; two different ones collide with probability
/// about 2^-64 per pair, and a collision can only drop a candidate, never keep a
/// positive.
pub fn text_key(text: &str) -> u64 {
    key_of_words(text.split_whitespace())
}

/// The key of a document's `title + " " + text` ([`dredge_core::document_text`]).
pub fn document_key(title: &str, text: &str) -> u64 {
    key_of_words(title.split_whitespace().chain(text.split_whitespace()))
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

#[inline(always)]
fn fnv(h: u64, byte: u8) -> u64 {
    (h ^ byte as u64).wrapping_mul(FNV_PRIME)
}

/// Feeds the lowercased `word` into `h`: bytes directly for ASCII, else char by
/// char through Unicode lowercasing, as [`dredge_core::normalize_text`] does.
#[inline]
fn feed_word(mut h: u64, word: &str) -> u64 {
    if word.is_ascii() {
        for &b in word.as_bytes() {
            h = fnv(h, b.to_ascii_lowercase());
        }
    } else {
        let mut buf = [0u8; 4];
        for c in word.chars().flat_map(char::to_lowercase) {
            for &b in c.encode_utf8(&mut buf).as_bytes() {
                h = fnv(h, b);
            }
        }
    }
    h
}

fn key_of_words<'a>(words: impl Iterator<Item = &'a str>) -> u64 {
    let mut h = FNV_OFFSET;
    for (i, word) in words.enumerate() {
        if i > 0 {
            h = fnv(h, b' ');
        }
        h = feed_word(h, word);
    }
    h
}

/// [`document_key`] and [`text_key`] of one document in one pass over its text.
fn document_and_text_keys(title: &str, text: &str) -> (u64, u64) {
    let (mut joined, mut alone) = (key_of_words(title.split_whitespace()), FNV_OFFSET);
    let mut joined_started = title.split_whitespace().next().is_some();
    for (i, word) in text.split_whitespace().enumerate() {
        if joined_started {
            joined = fnv(joined, b' ');
        }
        joined_started = true;
        if i > 0 {
            alone = fnv(alone, b' ');
        }
        let before = (joined, alone);
        if word.is_ascii() {
            for &b in word.as_bytes() {
                let b = b.to_ascii_lowercase();
                joined = fnv(joined, b);
                alone = fnv(alone, b);
            }
        } else {
            joined = feed_word(before.0, word);
            alone = feed_word(before.1, word);
        }
    }
    (joined, alone)
}

/// Normalised-text keys of every document of a [`DocStore`]: of its joined
/// `title text` and of its text alone, and a sorted table to find documents by
/// key.
#[derive(Debug, Default)]
pub struct TextKeys {
    joined: Vec<u64>,
    text: Vec<u64>,
    lookup: Vec<(u64, DocId)>,
}

impl TextKeys {
    /// Computes the keys of all documents (in parallel).
    pub fn build(docs: &DocStore) -> Self {
        let pairs: Vec<(u64, u64)> = (0..docs.len())
            .into_par_iter()
            .map(|i| {
                let d = DocId::from_index(i);
                document_and_text_keys(docs.title(d), docs.text(d))
            })
            .collect();
        let (joined, text): (Vec<u64>, Vec<u64>) = pairs.into_iter().unzip();
        let mut lookup: Vec<(u64, DocId)> = Vec::with_capacity(joined.len() * 2);
        for (i, (&j, &t)) in joined.iter().zip(&text).enumerate() {
            let d = DocId::from_index(i);
            lookup.push((j, d));
            if t != j {
                lookup.push((t, d));
            }
        }
        lookup.par_sort_unstable();
        TextKeys {
            joined,
            text,
            lookup,
        }
    }

    /// The key of `doc`'s joined `title text`.
    pub fn joined(&self, doc: DocId) -> u64 {
        self.joined[doc.index()]
    }

    /// True when `doc`'s joined text or its text alone has one of `keys`
    /// (which must be sorted).
    pub fn matches_any(&self, doc: DocId, keys: &[u64]) -> bool {
        let i = doc.index();
        keys.binary_search(&self.joined[i]).is_ok() || keys.binary_search(&self.text[i]).is_ok()
    }

    /// The documents whose joined text or text alone has key `key`, lowest id first.
    pub fn find(&self, key: u64) -> impl Iterator<Item = DocId> + '_ {
        let start = self.lookup.partition_point(|&(k, _)| k < key);
        self.lookup[start..]
            .iter()
            .take_while(move |&&(k, _)| k == key)
            .map(|&(_, d)| d)
    }

    /// Number of documents covered.
    pub fn len(&self) -> usize {
        self.joined.len()
    }

    /// True when no document is covered.
    pub fn is_empty(&self) -> bool {
        self.joined.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dredge_core::{document_text, normalize_text};
    use proptest::prelude::*;

    fn fnv_of(bytes: &[u8]) -> u64 {
        bytes.iter().fold(FNV_OFFSET, |h, &b| fnv(h, b))
    }

    proptest! {
        #[test]
        fn keys_equal_hash_of_normalised_text(title in "[ aAbB\tÉé\n]{0,12}", text in "[ aAbBİ\t\n.]{0,20}") {
            prop_assert_eq!(text_key(&text), fnv_of(normalize_text(&text).as_bytes()));
            prop_assert_eq!(document_key(&title, &text), fnv_of(normalize_text(&document_text(&title, &text)).as_bytes()));
            prop_assert_eq!(document_and_text_keys(&title, &text), (document_key(&title, &text), text_key(&text)));
        }
    }

    #[test]
    fn finds_documents_by_either_key() {
        let mut store = DocStore::new();
        let a = store.push("a", "Title", "Body  text");
        let b = store.push("b", "", "title BODY text");
        let c = store.push("c", "Other", "body text");
        let keys = TextKeys::build(&store);
        let k = text_key("title body text");
        assert_eq!(keys.find(k).collect::<Vec<_>>(), [a, b]);
        assert_eq!(keys.find(text_key("body text")).collect::<Vec<_>>(), [a, c]);
        assert_eq!(keys.find(text_key("nothing")).count(), 0);
        let mut wanted = vec![k];
        wanted.sort_unstable();
        assert!(
            keys.matches_any(a, &wanted)
                && keys.matches_any(b, &wanted)
                && !keys.matches_any(c, &wanted)
        );
        assert_eq!(keys.joined(a), keys.joined(b));
    }
}
