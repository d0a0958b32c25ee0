//! dredge's English analysis against Lucene's, without Java: every line of
//! `tests/data/lucene_english.jsonl` is generated text (every general category and
//! UAX #29 word-break class alone and mixed, emoji sequences, Hebrew quotes,
//! Katakana, Hangul, numbers with separators, URLs, possessives, tokens over 255
//! UTF-16 units) with the terms Lucene's analyzer (Anserini's
//! `DefaultEnglishAnalyzer`, as Pyserini indexes) gives it. The file is written by
//! `benches/bm25/lucene_diff.py fixture`, which says how to rerun the comparison
//! against Lucene itself.

use std::path::Path;

use dredge_bm25::EnglishAnalyzer;

#[test]
fn terms_are_lucenes_on_generated_text() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/lucene_english.jsonl");
    let fixture = fs_err::read_to_string(&path).unwrap();
    let mut lines = fixture.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert!(header["reference"].as_str().unwrap().contains("Lucene"));
    let mut analyzer = EnglishAnalyzer::new();
    let (mut checked, mut terms_checked) = (0, 0);
    let mut differ = Vec::new();
    for (i, line) in lines.enumerate() {
        let (text, lucene): (String, Vec<String>) = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 2));
        let ours = analyzer.terms(&text);
        checked += 1;
        terms_checked += lucene.len();
        if ours != lucene {
            differ.push((i + 2, text, ours, lucene));
        }
    }
    assert!(
        checked > 3000 && terms_checked > 10_000,
        "{checked} lines, {terms_checked} terms"
    );
    assert!(
        differ.is_empty(),
        "{} of {checked} lines differ from Lucene; the first (line, text, dredge, Lucene): {:?}",
        differ.len(),
        &differ[..differ.len().min(5)]
    );
}
