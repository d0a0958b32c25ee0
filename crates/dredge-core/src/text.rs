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
    if title.is_empty() {
        text.trim().to_owned()
    } else {
        format!("{title} {text}").trim().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
