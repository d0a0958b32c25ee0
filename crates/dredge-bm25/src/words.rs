//! Splitting text into words by the Unicode word-boundary rules (UAX #29), as
//! Lucene's `StandardTokenizer` does.
//!
//! A word is a UAX #29 segment that holds at least one letter or digit; segments of
//! spaces and punctuation are dropped. In ASCII terms: runs of letters, digits and
//! `_` are words, and a single `.` or `'` between two letters or two digits, `:`
//! between two letters, or `,` / `;` between two digits does not split them
//! (`U.S.A`, `don't`, `3.14`, `1,000`, `e:g`), while `-`, `/`, `(`, `"` and spaces do
//! (`covid-19` is `covid`, `19`).
//!
//! Text is cut at ASCII whitespace first, which is always a word boundary. A piece
//! made only of ASCII goes through a hand-written fast path; any other piece goes
//! through the `unicode-segmentation` crate. The two agree on ASCII text (a property
//! test checks it). The only place where cutting at whitespace can differ from
//! segmenting the whole text is a combining mark placed right after a space, which
//! well-formed text does not contain.

use unicode_segmentation::UnicodeSegmentation;

/// Calls `emit(start, end)` with the byte range of every word of `text`, in order.
pub(crate) fn for_each_word(text: &str, mut emit: impl FnMut(usize, usize)) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let mut ascii = true;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            ascii &= bytes[i].is_ascii();
            i += 1;
        }
        // Pieces start and end at ASCII bytes or at the ends of `text`, so they lie
        // on character boundaries.
        let piece = &text[start..i];
        if ascii {
            ascii_words(piece.as_bytes(), |s, e| emit(start + s, start + e));
        } else {
            for (s, word) in piece.unicode_word_indices() {
                emit(start + s, start + s + word.len());
            }
        }
    }
}

#[inline]
fn is_letter(b: u8) -> bool {
    b.is_ascii_alphabetic()
}

#[inline]
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// UAX #29 word segmentation restricted to ASCII (rules WB5 to WB13b), keeping the
/// segments that hold a letter or digit.
fn ascii_words(b: &[u8], mut emit: impl FnMut(usize, usize)) {
    let n = b.len();
    let mut i = 0;
    while i < n {
        if !is_word_byte(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        let mut alphanumeric = false;
        loop {
            while i < n && is_word_byte(b[i]) {
                alphanumeric |= b[i] != b'_';
                i += 1;
            }
            if i + 1 < n {
                let (prev, mid, next) = (b[i - 1], b[i], b[i + 1]);
                let letters = is_letter(prev) && is_letter(next);
                let digits = prev.is_ascii_digit() && next.is_ascii_digit();
                let joins = match mid {
                    // MidLetter (WB6, WB7).
                    b':' => letters,
                    // MidNumLet and Single_Quote (WB6, WB7, WB11, WB12).
                    b'.' | b'\'' => letters || digits,
                    // MidNum (WB11, WB12).
                    b',' | b';' => digits,
                    _ => false,
                };
                if joins {
                    i += 1;
                    continue;
                }
            }
            break;
        }
        if alphanumeric {
            emit(start, i);
        }
    }
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
        assert_eq!(
            words("a:b 1:2 a.1 1.a a..b 1,,2 end."),
            [
                "a:b", "1", "2", "a", "1", "1", "a", "a", "b", "1", "2", "end"
            ]
        );
        assert_eq!(words("  \t\n"), Vec::<&str>::new());
        assert_eq!(
            words("naïve café’s α-helix 東京"),
            ["naïve", "café’s", "α", "helix", "東", "京"]
        );
        assert_eq!(words("IL-6–mediated"), ["IL", "6", "mediated"]);
    }

    proptest! {
        #[test]
        fn ascii_fast_path_agrees_with_unicode_segmentation(text in "[a-cA-C0-2_.,;:'\\- !?()]{0,40}") {
            let mut fast = Vec::new();
            ascii_words(text.as_bytes(), |s, e| fast.push(&text[s..e]));
            let reference: Vec<&str> = text.unicode_words().collect();
            prop_assert_eq!(fast, reference);
        }

        #[test]
        fn whitespace_cut_agrees_with_whole_text(text in "[a-b0-1.'’é \\n-]{0,30}") {
            let reference: Vec<&str> = text.unicode_words().collect();
            prop_assert_eq!(words(&text), reference);
        }
    }
}
