//! The [`EnglishAnalyzer`] as a tantivy tokenizer, so that tantivy's indexing
//! threads analyze documents in parallel.

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

use crate::analyzer::EnglishAnalyzer;

/// The name the tokenizer is registered under in the index's schema.
pub(crate) const TOKENIZER_NAME: &str = "dredge_lucene_english";

/// Runs the analyzer over a whole value, then hands its terms to tantivy one by
/// one. Buffers are reused from one value to the next.
#[derive(Clone, Default)]
pub(crate) struct EnglishTokenizer {
    analyzer: EnglishAnalyzer,
    arena: String,
    ends: Vec<usize>,
    token: Token,
}

pub(crate) struct EnglishTokenStream<'a> {
    arena: &'a str,
    ends: &'a [usize],
    next: usize,
    token: &'a mut Token,
}

impl Tokenizer for EnglishTokenizer {
    type TokenStream<'a> = EnglishTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> EnglishTokenStream<'a> {
        let EnglishTokenizer {
            analyzer,
            arena,
            ends,
            token,
        } = self;
        arena.clear();
        ends.clear();
        analyzer.analyze(text, |term| {
            arena.push_str(term);
            ends.push(arena.len());
        });
        token.reset();
        EnglishTokenStream {
            arena,
            ends,
            next: 0,
            token,
        }
    }
}

impl TokenStream for EnglishTokenStream<'_> {
    fn advance(&mut self) -> bool {
        let Some(&end) = self.ends.get(self.next) else {
            return false;
        };
        let start = if self.next == 0 {
            0
        } else {
            self.ends[self.next - 1]
        };
        self.token.text.clear();
        self.token.text.push_str(&self.arena[start..end]);
        self.token.position = self.next;
        self.token.offset_from = 0;
        self.token.offset_to = 0;
        self.next += 1;
        true
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_the_analyzer_terms() {
        let mut tokenizer = EnglishTokenizer::default();
        let mut terms = Vec::new();
        let mut stream = tokenizer.token_stream("Running dogs and the cats' toys");
        while let Some(token) = stream.next() {
            terms.push((token.position, token.text.clone()));
        }
        let expected: Vec<(usize, String)> = ["run", "dog", "cat", "toi"]
            .iter()
            .enumerate()
            .map(|(i, t)| (i, t.to_string()))
            .collect();
        assert_eq!(terms, expected);
    }
}
