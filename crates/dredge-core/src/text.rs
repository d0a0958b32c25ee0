//! Text helpers shared by the engine and the miner.

/// Lowercases `text` and collapses every run of whitespace into one space, trimming
/// both ends. Two texts that are equal after this are treated as the same text (for
/// example a corpus document that duplicates a positive passage).
pub fn normalize_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        for c in word.chars() {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// The text an encoder sees for a document: `title + " " + text`, trimmed, as
/// sentence-transformers and BEIR build it; just the text when the title is empty.
pub fn document_text(title: &str, text: &str) -> String {
    match document_text_parts(title, text) {
        (whole, "") => whole.to_owned(),
        (title, text) => format!("{title} {text}"),
    }
}

/// [`document_text`] without allocating: two pieces that make it when joined by one
/// space, or the whole of it and `""`.
pub fn document_text_parts<'a>(title: &'a str, text: &'a str) -> (&'a str, &'a str) {
    let title = title.trim_start();
    if title.is_empty() {
        return (text.trim(), "");
    }
    let text = text.trim_end();
    if text.is_empty() {
        return (title.trim_end(), "");
    }
    (title, text)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn document_text_is_title_space_text_trimmed(title in "[ a\\t\u{a0}]{0,4}", text in "[ b\\n\u{a0}]{0,4}") {
            let expect = if title.is_empty() {
                text.trim().to_owned()
            } else {
                format!("{title} {text}").trim().to_owned()
            };
            prop_assert_eq!(document_text(&title, &text), expect);
        }
    }

    #[test]
    fn normalization_folds_case_and_whitespace() {
        assert_eq!(
            normalize_text("  The\tQuick\n\nBROWN  fox "),
            "the quick brown fox"
        );
        assert_eq!(normalize_text(""), "");
        assert_eq!(normalize_text("Éclair"), "éclair");
    }

    #[test]
    fn document_text_joins_like_beir() {
        assert_eq!(document_text("Title", "body"), "Title body");
        assert_eq!(document_text("", " body "), "body");
        assert_eq!(document_text("Title", ""), "Title");
    }
}
