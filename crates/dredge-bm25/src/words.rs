//! Splitting text into tokens exactly as Lucene's `StandardTokenizer` does.
//!
//! `StandardTokenizer` is a JFlex scanner: at each position it takes the longest
//! match of its rules (UAX #29 word-break rules with Unicode 9.0 properties, plus
//! emoji sequences with Unicode 11.0 emoji data), keeps it as a token if it is a
//! word, number, Southeast Asian run, ideograph, hiragana, katakana or hangul run or
//! emoji sequence, and otherwise skips one character. So, unlike a plain reading of
//! UAX #29:
//!
//! - symbols that Unicode calls emoji are tokens: `©`, `®`, `™`, `〰`, `😀`,
//!   `👨‍👩‍👧`, `🇺🇸`, `1️⃣` (a digit alone is a number, not an emoji);
//! - characters that are neither letters nor digits in Unicode 9.0's word-break
//!   properties are dropped, even when newer Unicode versions or general categories
//!   call them numbers: `₂`, `¹`, `½`;
//! - a match never reaches further than 255 UTF-16 units from its start (the
//!   scanner's buffer, which Lucene never grows): a longer word is cut at the last
//!   place within those 255 units where a match could end, and the scan goes on
//!   from there.
//!
//! The scanner's tables (character classes and DFA) are Lucene's own, written to
//! `words/tables.rs` by `benches/bm25/lucene_diff.py tables`; this file runs them
//! the way JFlex's generated code does.

mod tables;

use tables::{BUFFER, CLASSES, KIND, NEXT, RANGES};

/// State kinds in [`KIND`].
const TOKEN: u8 = 2;

/// The class of each ASCII character, looked up without a search.
static ASCII_CLASSES: [u8; 128] = ascii_classes();

const fn ascii_classes() -> [u8; 128] {
    let mut out = [0u8; 128];
    let mut r = 0;
    while r < RANGES.len() && RANGES[r].0 < 128 {
        let end = if r + 1 < RANGES.len() && RANGES[r + 1].0 < 128 {
            RANGES[r + 1].0
        } else {
            128
        };
        let mut c = RANGES[r].0;
        while c < end {
            out[c as usize] = RANGES[r].1;
            c += 1;
        }
        r += 1;
    }
    out
}

/// The scanner's character class of `c`.
#[inline]
fn class_of(c: char) -> usize {
    let c = c as u32;
    if c < 128 {
        return ASCII_CLASSES[c as usize] as usize;
    }
    // RANGES starts at 0, so at least one range starts at or before `c`.
    let i = RANGES.partition_point(|&(start, _)| start <= c) - 1;
    RANGES[i].1 as usize
}

/// Calls `emit(start, end)` with the byte range of every token of `text`, in order.
pub(crate) fn for_each_word(text: &str, mut emit: impl FnMut(usize, usize)) {
    let mut start = 0;
    while start < text.len() {
        let rest = &text[start..];
        let bytes = rest.as_bytes();
        // A run of ASCII characters that are each a whole match by themselves and
        // never a token (spaces, most punctuation) is skipped byte by byte.
        if bytes[0] < 128 && DROPPED_ALONE[bytes[0] as usize] {
            start += 1;
            continue;
        }
        let (len, token) = longest_match(rest);
        if token {
            emit(start, start + len);
        }
        start += len;
    }
}

/// True for the ASCII characters that are a match by themselves that no character
/// can extend, and not a token: the scanner drops them one by one.
static DROPPED_ALONE: [bool; 128] = dropped_alone();

const fn dropped_alone() -> [bool; 128] {
    let mut out = [false; 128];
    let mut c = 0;
    while c < 128 {
        let state = NEXT[0][ASCII_CLASSES[c] as usize] as usize;
        let mut dead = true;
        let mut k = 0;
        while k < CLASSES {
            if NEXT[state][k] >= 0 {
                dead = false;
            }
            k += 1;
        }
        out[c] = dead && KIND[state] != TOKEN;
        c += 1;
    }
    out
}

/// The length in bytes of the longest match at the start of `text` (never 0 for a
/// non-empty text), and whether it is a token.
#[inline]
fn longest_match(text: &str) -> (usize, bool) {
    let mut state = 0usize;
    let (mut pos, mut units) = (0, 0);
    let (mut end, mut kind) = (0, 0);
    for c in text.chars() {
        // The scanner sees at most BUFFER UTF-16 units from the match's start; a
        // character whose surrogate pair would straddle that end is not seen either.
        units += c.len_utf16();
        if units > BUFFER {
            break;
        }
        let next = NEXT[state][class_of(c)];
        if next < 0 {
            break;
        }
        state = next as usize;
        pos += c.len_utf8();
        if KIND[state] != 0 {
            end = pos;
            kind = KIND[state];
        }
    }
    // Every character starts a match on its own (the tables are checked for it when
    // written); this keeps the scan moving even if they were not.
    if end == 0 {
        return (text.chars().next().map_or(1, char::len_utf8), false);
    }
    (end, kind == TOKEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn words(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        for_each_word(text, |s, e| out.push(&text[s..e]));
        out
    }

    #[test]
    fn tables_are_consistent() {
        assert_eq!(BUFFER, crate::MAX_WORD_CHARS);
        assert_eq!(RANGES[0].0, 0);
        assert!(
            RANGES
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 != w[1].1)
        );
        assert!(RANGES.iter().all(|&(_, k)| usize::from(k) < CLASSES));
        assert!(NEXT.iter().flatten().all(|&n| n < NEXT.len() as i8));
        assert_eq!(KIND.len(), NEXT.len());
        // Every character is a match on its own: the scan always moves on.
        assert!(NEXT[0].iter().all(|&n| n >= 0 && KIND[n as usize] != 0));
        // The ASCII shortcut table is the ranges' classes.
        for c in 0..128u8 {
            let i = RANGES.partition_point(|&(start, _)| start <= u32::from(c)) - 1;
            assert_eq!(ASCII_CLASSES[usize::from(c)], RANGES[i].1, "{c}");
            assert_eq!(class_of(char::from(c)), usize::from(RANGES[i].1));
        }
    }

    // The expected tokens below are what Lucene 9.9.1's StandardTokenizer gives
    // for these texts (benches/bm25/lucene_diff.py checks far more).

    #[test]
    fn splits_like_the_standard_tokenizer() {
        assert_eq!(
            words("The U.S.A. isn't 3.14 or 1,000; e.g."),
            ["The", "U.S.A", "isn't", "3.14", "or", "1,000", "e.g"]
        );
        assert_eq!(
            words("covid-19 (SARS-CoV-2) a/b \"q\" x_y __ _z"),
            [
                "covid", "19", "SARS", "CoV", "2", "a", "b", "q", "x_y", "_z"
            ]
        );
        assert_eq!(words("  \t\n"), Vec::<&str>::new());
        assert_eq!(
            words("naïve café’s α-helix 東京"),
            ["naïve", "café’s", "α", "helix", "東", "京"]
        );
        // Emoji are tokens; sub- and superscript digits and fractions are not.
        assert_eq!(
            words("Acme™ © 2024 😀 H₂O x² ½"),
            ["Acme", "™", "©", "2024", "😀", "H", "O", "x"]
        );
    }

    #[test]
    fn a_match_reads_at_most_255_utf16_units() {
        let long = "a".repeat(600);
        let lens: Vec<usize> = words(&long).iter().map(|w| w.len()).collect();
        assert_eq!(lens, [255, 255, 90]);
        // The scanner cannot see past unit 255, so `a…a.b` ends before the dot.
        let text = format!("{}.b", "a".repeat(254));
        assert_eq!(words(&text), [&text[..254], "b"]);
        // A surrogate pair that would straddle unit 255 is left for the next match.
        let text = format!("{}😀", "a".repeat(254));
        assert_eq!(words(&text), [&text[..254], "😀"]);
    }

    proptest! {
        #[test]
        fn tokens_are_in_order_inside_the_text(text in "\\PC{0,40}") {
            let mut last = 0;
            let mut ok = true;
            for_each_word(&text, |s, e| {
                ok &= last <= s && s < e && e <= text.len();
                last = e;
            });
            prop_assert!(ok);
        }
    }
}
