//! English analysis as Lucene's `EnglishAnalyzer` (and Pyserini's default analyzer)
//! does it, turning text into the terms that are indexed and searched.

use serde::{Deserialize, Serialize};

use crate::porter;
use crate::words::for_each_word;

/// Lucene's English stop words (`EnglishAnalyzer.ENGLISH_STOP_WORDS_SET`, 33 words).
pub const STOP_WORDS: [&str; 33] = [
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
];

/// The longest word the tokenizer emits, in UTF-16 units (Java's `char`s): Lucene's
/// `StandardTokenizer` reads at most this many from a word's start (its default
/// `maxTokenLength` and scanner buffer, 255), so longer words are cut.
pub const MAX_WORD_CHARS: usize = 255;

/// The identity of an analyzer, saved with an index so that queries are analyzed
/// the way the documents were.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalyzerInfo {
    /// The analyzer's name; see [`EnglishAnalyzer::NAME`].
    pub name: String,
    /// Its version: bumped whenever its output changes for some text.
    pub version: u32,
    /// What it does, in words.
    pub description: String,
}

/// Lucene's `EnglishAnalyzer` with the Porter stemmer, step for step:
///
/// 1. **Tokens** as Lucene's `StandardTokenizer` makes them, with its own scanner
///    tables (Unicode word-boundary rules, UAX #29, over Unicode 9.0 properties):
///    `covid-19` gives `covid` and `19`; `U.S.A.`, `3.14`, `1,000` and `don't`
///    stay whole; emoji and symbols such as `©`, `®`, `™` are tokens; `₂`, `¹`,
///    `½` are not. Words longer than [`MAX_WORD_CHARS`] UTF-16 units are cut.
/// 2. **Possessives**: a final `'s`, `’s` or `＇s` (any case) is removed
///    (`EnglishPossessiveFilter`).
/// 3. **Lowercase**, character by character (Unicode simple case mapping, as Java's
///    `Character.toLowerCase`).
/// 4. **Stop words**: the 33 words of [`STOP_WORDS`] are dropped (`StopFilter`).
/// 5. **Porter stemming**: Martin Porter's original algorithm as Lucene's
///    `PorterStemmer` implements it (not Snowball's Porter2 "English" stemmer).
///
/// The terms are Lucene's for every text, character for character
/// (`tests/lucene_parity.rs` checks it on generated text covering every general
/// category and word-break class; `benches/bm25/lucene_diff.py` reruns the
/// comparison against Lucene itself), with one caveat: lowercasing uses the case
/// mappings of Rust's Unicode version, Lucene those of the Java it runs on.
///
/// ```
/// use dredge_bm25::EnglishAnalyzer;
/// let mut analyzer = EnglishAnalyzer::new();
/// assert_eq!(analyzer.terms("The cat's running-shoes aren't generously sized"), ["cat", "run", "shoe", "aren't", "gener", "size"]);
/// assert!(analyzer.terms("to be or not to be").is_empty());
/// ```
#[derive(Clone, Debug, Default)]
pub struct EnglishAnalyzer {
    bytes: Vec<u8>,
    units: Vec<u16>,
    term: String,
}

impl EnglishAnalyzer {
    /// The name recorded in indexes built with this analyzer.
    pub const NAME: &'static str = "lucene-english-porter";
    /// The version recorded in indexes built with this analyzer.
    pub const VERSION: u32 = 2;

    /// A new analyzer (it holds only scratch buffers).
    pub fn new() -> Self {
        Self::default()
    }

    /// What this analyzer is, for manifests.
    pub fn info() -> AnalyzerInfo {
        AnalyzerInfo {
            name: Self::NAME.to_owned(),
            version: Self::VERSION,
            description: "Lucene EnglishAnalyzer: StandardTokenizer (Lucene 9.9.1 scanner tables, \
                          max 255 UTF-16 units), \
                          possessive 's removed, lowercase, Lucene's 33 English stop words, \
                          original Porter stemmer (Lucene PorterStemmer)"
                .to_owned(),
        }
    }

    /// Calls `emit` with each term of `text`, in order.
    pub fn analyze(&mut self, text: &str, mut emit: impl FnMut(&str)) {
        for_each_word(text, |start, end| {
            self.analyze_word(&text[start..end], &mut emit)
        });
    }

    /// The terms of `text`, in order.
    pub fn terms(&mut self, text: &str) -> Vec<String> {
        let mut terms = Vec::new();
        self.analyze(text, |t| terms.push(t.to_owned()));
        terms
    }

    fn analyze_word(&mut self, word: &str, emit: &mut impl FnMut(&str)) {
        let word = strip_possessive(word);
        if word.is_ascii() {
            self.bytes.clear();
            self.bytes
                .extend(word.bytes().map(|b| b.to_ascii_lowercase()));
        } else {
            self.term.clear();
            for c in word.chars() {
                // U+0130 is the only character whose full lowercase mapping (what
                // `char::to_lowercase` gives) differs from the simple one Java uses.
                if c == '\u{130}' {
                    self.term.push('i');
                } else {
                    self.term.extend(c.to_lowercase());
                }
            }
            if !self.term.is_ascii() {
                if is_stop_word(&self.term) {
                    return;
                }
                // Lucene stems UTF-16 units: a character outside the Basic
                // Multilingual Plane counts as two (in the stemmer's "two units or
                // fewer are left alone" and in its consonant runs).
                self.units.clear();
                self.units.extend(self.term.encode_utf16());
                porter::stem(&mut self.units);
                self.term.clear();
                // The stemmer only rewrites ASCII suffixes, so pairs stay whole.
                self.term.extend(
                    char::decode_utf16(self.units.iter().copied())
                        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)),
                );
                emit(&self.term);
                return;
            }
            self.bytes.clear();
            self.bytes.extend_from_slice(self.term.as_bytes());
        }
        let lower = std::str::from_utf8(&self.bytes).expect("ASCII");
        if lower.is_empty() || is_stop_word(lower) {
            return;
        }
        porter::stem(&mut self.bytes);
        emit(std::str::from_utf8(&self.bytes).expect("ASCII"));
    }
}

/// Lucene's `PorterStemmer` works on UTF-16 units; words that are not ASCII are
/// stemmed as such.
impl porter::Unit for u16 {
    #[inline]
    fn ascii(self) -> u8 {
        u8::try_from(self).ok().filter(u8::is_ascii).unwrap_or(0)
    }
    #[inline]
    fn from_ascii(b: u8) -> Self {
        u16::from(b)
    }
}

/// Removes a final `'s` (with `'`, `’` or `＇`, and `s` or `S`), as Lucene's
/// `EnglishPossessiveFilter`.
fn strip_possessive(word: &str) -> &str {
    let Some(rest) = word.strip_suffix(['s', 'S']) else {
        return word;
    };
    rest.strip_suffix(['\'', '\u{2019}', '\u{FF07}'])
        .unwrap_or(word)
}

/// True for the words of [`STOP_WORDS`].
pub fn is_stop_word(word: &str) -> bool {
    matches!(
        word,
        "a" | "an"
            | "and"
            | "are"
            | "as"
            | "at"
            | "be"
            | "but"
            | "by"
            | "for"
            | "if"
            | "in"
            | "into"
            | "is"
            | "it"
            | "no"
            | "not"
            | "of"
            | "on"
            | "or"
            | "such"
            | "that"
            | "the"
            | "their"
            | "then"
            | "there"
            | "these"
            | "they"
            | "this"
            | "to"
            | "was"
            | "will"
            | "with"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_word_list_and_matcher_agree() {
        for w in STOP_WORDS {
            assert!(is_stop_word(w), "{w}");
        }
        assert!(!is_stop_word("an't") && !is_stop_word("The") && !is_stop_word("those"));
    }

    // The expected terms are Lucene's (Anserini's DefaultEnglishAnalyzer) for these
    // texts; tests/lucene_parity.rs checks thousands more.
    #[test]
    fn the_pipeline_step_by_step() {
        let mut a = EnglishAnalyzer::new();
        let cases: &[(&str, &[&str])] = &[
            // Possessives go before lowercasing and stop words: "It's" is "it", a stop word.
            (
                "It's John's and JOHN'S and john’s",
                &["john", "john", "john"],
            ),
            // Numbers, versions and abbreviations stay whole.
            (
                "IL-6 levels rose 3.5-fold in 1,000 U.S. patients",
                &[
                    "il", "6", "level", "rose", "3.5", "fold", "1,000", "u.", "patient",
                ],
            ),
            ("İSTANBUL Straße ÉCOLES", &["istanbul", "straße", "école"]),
            // Stemmed in UTF-16 units, as Java does: `𐐨s` is three units, so its `s`
            // goes, where counting characters would leave a two-character word alone.
            ("𐐀s 𐐀𐐁s", &["𐐨", "𐐨𐐩"]),
            ("", &[]),
            ("The and of a", &[]),
            ("--- ... !!!", &[]),
        ];
        for (text, expected) in cases {
            assert_eq!(a.terms(text), *expected, "{text}");
        }
    }

    #[test]
    fn long_words_are_cut_like_lucene() {
        let mut a = EnglishAnalyzer::new();
        let word = "x".repeat(600);
        let terms = a.terms(&word);
        assert_eq!(
            terms.iter().map(String::len).collect::<Vec<_>>(),
            [255, 255, 90]
        );
    }
}
