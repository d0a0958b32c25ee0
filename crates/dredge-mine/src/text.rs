//! Text identity: 64-bit keys of normalised text, so that a document whose text
//! equals a positive's (after [`dredge_core::normalize_text`]) is found without
//! keeping a second copy of the corpus.

use dredge_core::{DocId, DocStore, Id};
use rayon::prelude::*;

/// The key of a normalised text: a 64-bit hash (foldhash's quality hasher with a
/// fixed seed) of `normalize_text(text)`'s bytes. Two texts equal after
/// normalisation have the same key; two different ones collide with probability
/// about 2^-64 per pair, and a collision can only drop a candidate, never keep a
/// positive. Keys live in memory only: the hash can change between versions.
pub fn text_key(text: &str) -> u64 {
    let mut buf = Vec::with_capacity(text.len());
    push_normalised(&mut buf, text);
    hash(&buf)
}

/// The key of a document's `title + " " + text` ([`dredge_core::document_text`]).
pub fn document_key(title: &str, text: &str) -> u64 {
    let mut buf = Vec::with_capacity(title.len() + text.len() + 1);
    push_normalised(&mut buf, title);
    push_normalised(&mut buf, text);
    hash(&buf)
}

/// A fixed seed: keys are the same in every thread and every run.
const SEED: u64 = 0x6472_6564_6765_6b79;

fn hash(normalised: &[u8]) -> u64 {
    use std::hash::BuildHasher;
    foldhash::quality::FixedState::with_seed(SEED).hash_one(normalised)
}

/// What an ASCII byte becomes in normalised text: its lowercase, or a space for the
/// ASCII characters with Unicode's White_Space property (`\t \n \x0b \x0c \r` and
/// space).
const ASCII_NORMAL: [u8; 128] = {
    let mut t = [0u8; 128];
    let mut b = 0;
    while b < 128 {
        t[b] = match b as u8 {
            b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ' => b' ',
            c => c.to_ascii_lowercase(),
        };
        b += 1;
    }
    t
};

/// Appends `s` as [`dredge_core::normalize_text`] writes it (words split at Unicode
/// whitespace, lowercased, joined by one space) to `out`, with a space first when
/// `out` already holds a word and `s` has one: appending a title and then a text
/// gives the normalised joined text.
///
/// Without branching on word boundaries: every ASCII byte is written at the output
/// position, which moves on unless the byte is a space after a space. Characters
/// outside ASCII, the rare case, are decoded and lowercased one by one.
fn push_normalised(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let start = out.len();
    let joined = start > 0;
    if joined {
        out.push(b' ');
    }
    let base = out.len();
    // ASCII output is never longer than its input; `out` stays `pos` plus what is
    // left of the input long, so every write below is in bounds.
    out.resize(base + bytes.len(), 0);
    let mut pos = base;
    // True after white space (and at the start, so leading space is dropped).
    let mut space = true;
    let mut i = 0;
    while i < bytes.len() {
        // A run of ASCII, written through a slice (so the buffer's pointer stays in
        // a register).
        let dst = &mut out[..];
        while let Some(&b) = bytes.get(i).filter(|b| b.is_ascii()) {
            let c = ASCII_NORMAL[usize::from(b)];
            let is_space = c == b' ';
            dst[pos] = c;
            pos += usize::from(!(is_space && space));
            space = is_space;
            i += 1;
        }
        if i == bytes.len() {
            break;
        }
        let c = s[i..].chars().next().expect("a character starts here");
        i += c.len_utf8();
        if c.is_whitespace() {
            out[pos] = b' ';
            pos += usize::from(!space);
            space = true;
        } else {
            out.truncate(pos);
            let mut utf8 = [0u8; 4];
            for lower in c.to_lowercase() {
                out.extend_from_slice(lower.encode_utf8(&mut utf8).as_bytes());
            }
            pos = out.len();
            out.resize(pos + (bytes.len() - i), 0);
            space = false;
        }
    }
    // A trailing space: the last word was followed by white space.
    if space && pos > base {
        pos -= 1;
    }
    out.truncate(if joined && pos == base { start } else { pos });
}

/// [`document_key`] and [`text_key`] of one document, normalising its text once
/// (into `buf`, reused between documents).
fn document_and_text_keys(buf: &mut Vec<u8>, title: &str, text: &str) -> (u64, u64) {
    buf.clear();
    push_normalised(buf, title);
    let title_end = buf.len();
    push_normalised(buf, text);
    // The text alone starts after the title and the space that joins them.
    let text_start = if title_end > 0 && buf.len() > title_end {
        title_end + 1
    } else {
        title_end
    };
    (hash(buf), hash(&buf[text_start..]))
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
            .map_init(Vec::new, |buf, i| {
                let d = DocId::from_index(i);
                document_and_text_keys(buf, docs.title(d), docs.text(d))
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

    proptest! {
        #[test]
        fn keys_equal_hash_of_normalised_text(
            title in "[ aAbB\t\u{b}\u{1f}ÉéŞ\n\u{a0}\u{2003}]{0,12}",
            text in "[ aAbBİ\t\u{b}\u{1f}\n.\u{85}\u{3000}]{0,20}",
        ) {
            prop_assert_eq!(text_key(&text), hash(normalize_text(&text).as_bytes()));
            prop_assert_eq!(document_key(&title, &text), hash(normalize_text(&document_text(&title, &text)).as_bytes()));
            let mut buf = vec![b'x'; 3];
            prop_assert_eq!(document_and_text_keys(&mut buf, &title, &text), (document_key(&title, &text), text_key(&text)));
        }
    }

    proptest! {
        #[test]
        fn normalised_bytes_equal_normalize_text(title in any::<String>(), text in "\\PC{0,60}") {
            let mut out = Vec::new();
            push_normalised(&mut out, &text);
            prop_assert_eq!(String::from_utf8(out).unwrap(), normalize_text(&text));
            let mut out = Vec::new();
            push_normalised(&mut out, &title);
            push_normalised(&mut out, &text);
            prop_assert_eq!(String::from_utf8(out).unwrap(), normalize_text(&document_text(&title, &text)));
        }
    }

    #[test]
    fn equal_after_normalisation_means_equal_keys() {
        assert_eq!(text_key("  Hello\tWORLD \n"), text_key("hello world"));
        assert_eq!(document_key("Hello", "World"), text_key("hello world"));
        assert_eq!(document_key("", " hello  world "), text_key("hello world"));
        assert_ne!(text_key("hello world"), text_key("helloworld"));
        assert_ne!(text_key("a"), text_key(""));
        // U+001F is not whitespace for Unicode (nor for normalize_text).
        assert_ne!(text_key("a\u{1f}b"), text_key("a b"));
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
