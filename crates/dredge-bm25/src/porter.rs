//! The original Porter stemmer, as Lucene's `PorterStemFilter` runs it.
//!
//! This is a line-by-line port of Lucene's `org.tartarus.snowball`-free
//! `PorterStemmer.java`, itself Martin Porter's own C implementation (the one on
//! his web page, with its two documented departures from the 1980 paper: step 2
//! maps `-bli` to `-ble` instead of `-abli` to `-able`, and adds `-logi` to `-log`).
//! It is *not* Snowball's "English" (Porter2) stemmer that `rust-stemmers` and
//! tantivy ship: the two disagree on many words (`generously`: Porter `gener`,
//! Porter2 `generous`), and Pyserini's numbers are made with this one.
//!
//! Only `a e i o u` (and `y` after a consonant) are vowels; every other character,
//! non-ASCII letters included, counts as a consonant, as in Lucene. Words of one or
//! two characters are left alone.

/// One unit of a word: a byte of an ASCII word or a `char` of any word.
pub(crate) trait Unit: Copy + PartialEq {
    /// The unit as an ASCII byte, or 0 for anything that is not ASCII.
    fn ascii(self) -> u8;
    /// The unit for an ASCII byte.
    fn from_ascii(b: u8) -> Self;
}

impl Unit for u8 {
    #[inline]
    fn ascii(self) -> u8 {
        if self.is_ascii() { self } else { 0 }
    }
    #[inline]
    fn from_ascii(b: u8) -> Self {
        b
    }
}

impl Unit for char {
    #[inline]
    fn ascii(self) -> u8 {
        if self.is_ascii() { self as u8 } else { 0 }
    }
    #[inline]
    fn from_ascii(b: u8) -> Self {
        b as char
    }
}

/// Stems `word` in place (truncating or rewriting its end) and returns true when it
/// changed. `word` must already be lowercase.
pub(crate) fn stem<T: Unit>(word: &mut Vec<T>) -> bool {
    if word.len() <= 2 {
        return false;
    }
    let before = word.len();
    let mut s = Stemmer {
        b: word,
        k: before - 1,
        j: 0,
        dirty: false,
    };
    s.step1();
    s.step2();
    s.step3();
    s.step4();
    s.step5();
    s.step6();
    let (k, dirty) = (s.k, s.dirty);
    word.truncate(k + 1);
    dirty || k + 1 != before
}

/// The state of Lucene's `PorterStemmer`: the word `b[0..=k]`, and `j`, the end of
/// the stem left by the last successful [`Stemmer::ends`]. Indices are signed in
/// Lucene; here `j` may be "-1" only transiently, which `ends` never produces for a
/// word of three or more units because suffixes are checked to fit first.
struct Stemmer<'a, T> {
    b: &'a mut Vec<T>,
    k: usize,
    j: usize,
    dirty: bool,
}

impl<T: Unit> Stemmer<'_, T> {
    #[inline]
    fn at(&self, i: usize) -> u8 {
        self.b[i].ascii()
    }

    /// True when `b[i]` is a consonant.
    fn cons(&self, i: usize) -> bool {
        match self.at(i) {
            b'a' | b'e' | b'i' | b'o' | b'u' => false,
            b'y' => i == 0 || !self.cons(i - 1),
            _ => true,
        }
    }

    /// The number of vowel-consonant sequences in `b[0..=j]` (Porter's *m*):
    /// `[C](VC){m}[V]`.
    fn m(&self) -> usize {
        let j = self.j;
        let mut n = 0;
        let mut i = 0;
        loop {
            if i > j {
                return n;
            }
            if !self.cons(i) {
                break;
            }
            i += 1;
        }
        i += 1;
        loop {
            loop {
                if i > j {
                    return n;
                }
                if self.cons(i) {
                    break;
                }
                i += 1;
            }
            i += 1;
            n += 1;
            loop {
                if i > j {
                    return n;
                }
                if !self.cons(i) {
                    break;
                }
                i += 1;
            }
            i += 1;
        }
    }

    /// True when `b[0..=j]` contains a vowel.
    fn vowel_in_stem(&self) -> bool {
        (0..=self.j).any(|i| !self.cons(i))
    }

    /// True when `b[j-1..=j]` is a double consonant.
    fn double_c(&self, j: usize) -> bool {
        j >= 1 && self.b[j] == self.b[j - 1] && self.cons(j)
    }

    /// True when `b[i-2..=i]` is consonant-vowel-consonant and the last consonant
    /// is not `w`, `x` or `y` (`-cav(e)`, `-lov(e)`, `-hop(e)`, but not `-snow`).
    fn cvc(&self, i: usize) -> bool {
        if i < 2 || !self.cons(i) || self.cons(i - 1) || !self.cons(i - 2) {
            return false;
        }
        !matches!(self.at(i), b'w' | b'x' | b'y')
    }

    /// True when `b[0..=k]` ends with `s`; then sets `j` to the end of the stem.
    fn ends(&mut self, s: &[u8]) -> bool {
        let l = s.len();
        if l > self.k + 1 {
            return false;
        }
        let o = self.k + 1 - l;
        if (0..l).any(|i| self.at(o + i) != s[i]) {
            return false;
        }
        // Lucene sets j = k - l, which is -1 when the suffix is the whole word; the
        // stem is then empty. Callers only use j through `m`, `vowel_in_stem` and
        // `set_to`, which we keep correct by working with j + 1 = o.
        self.j = o.wrapping_sub(1);
        true
    }

    /// Replaces `b[j+1..=k]` with `s`.
    fn set_to(&mut self, s: &[u8]) {
        let o = self.j.wrapping_add(1);
        self.b.truncate(o);
        self.b.extend(s.iter().map(|&c| T::from_ascii(c)));
        // o + len - 1; `r` never empties the word (it needs m > 0, so o >= 1).
        self.k = (o + s.len()).wrapping_sub(1);
        self.dirty = true;
    }

    /// `set_to(s)` when m > 0.
    fn r(&mut self, s: &[u8]) {
        if self.stem_measure() > 0 {
            self.set_to(s);
        }
    }

    /// `m()` that treats an empty stem (j = -1) as measure 0.
    fn stem_measure(&self) -> usize {
        if self.j == usize::MAX { 0 } else { self.m() }
    }

    /// `vowel_in_stem()` that treats an empty stem as having no vowel.
    fn stem_has_vowel(&self) -> bool {
        self.j != usize::MAX && self.vowel_in_stem()
    }

    /// Plurals and `-ed` / `-ing` (Porter's step 1a and 1b).
    fn step1(&mut self) {
        if self.at(self.k) == b's' {
            if self.ends(b"sses") {
                self.k -= 2;
            } else if self.ends(b"ies") {
                self.set_to(b"i");
            } else if self.at(self.k - 1) != b's' {
                self.k -= 1;
            }
        }
        if self.ends(b"eed") {
            if self.stem_measure() > 0 {
                self.k -= 1;
            }
        } else if (self.ends(b"ed") || self.ends(b"ing")) && self.stem_has_vowel() {
            self.k = self.j;
            if self.ends(b"at") {
                self.set_to(b"ate");
            } else if self.ends(b"bl") {
                self.set_to(b"ble");
            } else if self.ends(b"iz") {
                self.set_to(b"ize");
            } else if self.double_c(self.k) {
                let ch = self.at(self.k);
                if !matches!(ch, b'l' | b's' | b'z') {
                    self.k -= 1;
                }
            } else {
                self.j = self.k;
                if self.m() == 1 && self.cvc(self.k) {
                    self.set_to(b"e");
                }
            }
        }
    }

    /// Terminal `y` to `i` when the stem has another vowel (Porter's step 1c).
    fn step2(&mut self) {
        if self.ends(b"y") && self.stem_has_vowel() {
            let k = self.k;
            self.b[k] = T::from_ascii(b'i');
            self.dirty = true;
        }
    }

    /// Double suffixes to single ones (Porter's step 2), when m > 0.
    fn step3(&mut self) {
        if self.k == 0 {
            return;
        }
        let rules: &[(&[u8], &[u8])] = match self.at(self.k - 1) {
            b'a' => &[(b"ational", b"ate"), (b"tional", b"tion")],
            b'c' => &[(b"enci", b"ence"), (b"anci", b"ance")],
            b'e' => &[(b"izer", b"ize")],
            b'l' => &[
                (b"bli", b"ble"),
                (b"alli", b"al"),
                (b"entli", b"ent"),
                (b"eli", b"e"),
                (b"ousli", b"ous"),
            ],
            b'o' => &[(b"ization", b"ize"), (b"ation", b"ate"), (b"ator", b"ate")],
            b's' => &[
                (b"alism", b"al"),
                (b"iveness", b"ive"),
                (b"fulness", b"ful"),
                (b"ousness", b"ous"),
            ],
            b't' => &[(b"aliti", b"al"), (b"iviti", b"ive"), (b"biliti", b"ble")],
            b'g' => &[(b"logi", b"log")],
            _ => &[],
        };
        self.first_rule(rules);
    }

    /// `-ic-`, `-full`, `-ness` and the like (Porter's step 3), when m > 0.
    fn step4(&mut self) {
        let rules: &[(&[u8], &[u8])] = match self.at(self.k) {
            b'e' => &[(b"icate", b"ic"), (b"ative", b""), (b"alize", b"al")],
            b'i' => &[(b"iciti", b"ic")],
            b'l' => &[(b"ical", b"ic"), (b"ful", b"")],
            b's' => &[(b"ness", b"")],
            _ => &[],
        };
        self.first_rule(rules);
    }

    /// Applies the first rule whose suffix matches (and only that one).
    fn first_rule(&mut self, rules: &[(&[u8], &[u8])]) {
        for (suffix, replacement) in rules {
            if self.ends(suffix) {
                self.r(replacement);
                return;
            }
        }
    }

    /// Removes `-ant`, `-ence` and the like when m > 1 (Porter's step 4).
    fn step5(&mut self) {
        if self.k == 0 {
            return;
        }
        let matched = match self.at(self.k - 1) {
            b'a' => self.ends(b"al"),
            b'c' => self.ends(b"ance") || self.ends(b"ence"),
            b'e' => self.ends(b"er"),
            b'i' => self.ends(b"ic"),
            b'l' => self.ends(b"able") || self.ends(b"ible"),
            b'n' => {
                self.ends(b"ant") || self.ends(b"ement") || self.ends(b"ment") || self.ends(b"ent")
            }
            b'o' => {
                (self.ends(b"ion")
                    && self.j != usize::MAX
                    && matches!(self.at(self.j), b's' | b't'))
                    || self.ends(b"ou")
            }
            b's' => self.ends(b"ism"),
            b't' => self.ends(b"ate") || self.ends(b"iti"),
            b'u' => self.ends(b"ous"),
            b'v' => self.ends(b"ive"),
            b'z' => self.ends(b"ize"),
            _ => false,
        };
        if matched && self.stem_measure() > 1 {
            self.k = self.j;
        }
    }

    /// Removes a final `-e` when m > 1 (or m = 1 and not `*o`), and `-ll` to `-l`
    /// when m > 1 (Porter's step 5).
    fn step6(&mut self) {
        self.j = self.k;
        if self.k >= 1 && self.at(self.k) == b'e' {
            let a = self.m();
            if a > 1 || (a == 1 && !self.cvc(self.k - 1)) {
                self.k -= 1;
            }
        }
        if self.at(self.k) == b'l' && self.double_c(self.k) && self.m() > 1 {
            self.k -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stemmed(word: &str) -> String {
        let mut bytes = word.as_bytes().to_vec();
        stem(&mut bytes);
        let ascii = String::from_utf8(bytes).unwrap();
        let mut chars: Vec<char> = word.chars().collect();
        stem(&mut chars);
        assert_eq!(
            ascii,
            chars.iter().collect::<String>(),
            "byte and char paths differ on {word}"
        );
        ascii
    }

    /// Words and their stems from Porter (1980), "An algorithm for suffix
    /// stripping", and from the C reference implementation's departures.
    #[test]
    fn stems_like_the_reference_implementation() {
        let cases = [
            ("caresses", "caress"),
            ("ponies", "poni"),
            ("ties", "ti"),
            ("caress", "caress"),
            ("cats", "cat"),
            ("feed", "feed"),
            ("agreed", "agre"),
            ("plastered", "plaster"),
            ("bled", "bled"),
            ("motoring", "motor"),
            ("sing", "sing"),
            ("conflated", "conflat"),
            ("troubled", "troubl"),
            ("sized", "size"),
            ("hopping", "hop"),
            ("tanned", "tan"),
            ("falling", "fall"),
            ("hissing", "hiss"),
            ("fizzed", "fizz"),
            ("failing", "fail"),
            ("filing", "file"),
            ("happy", "happi"),
            ("sky", "sky"),
            ("relational", "relat"),
            ("conditional", "condit"),
            ("rational", "ration"),
            ("digitizer", "digit"),
            ("operator", "oper"),
            ("feudalism", "feudal"),
            ("decisiveness", "decis"),
            ("hopefulness", "hope"),
            ("callousness", "callous"),
            ("formaliti", "formal"),
            ("sensitiviti", "sensit"),
            ("sensibiliti", "sensibl"),
            ("triplicate", "triplic"),
            ("formative", "form"),
            ("formalize", "formal"),
            ("electriciti", "electr"),
            ("electrical", "electr"),
            ("hopeful", "hope"),
            ("goodness", "good"),
            ("revival", "reviv"),
            ("allowance", "allow"),
            ("inference", "infer"),
            ("airliner", "airlin"),
            ("gyroscopic", "gyroscop"),
            ("adjustable", "adjust"),
            ("defensible", "defens"),
            ("irritant", "irrit"),
            ("replacement", "replac"),
            ("adjustment", "adjust"),
            ("dependent", "depend"),
            ("adoption", "adopt"),
            ("homologous", "homolog"),
            ("communism", "commun"),
            ("activate", "activ"),
            ("angularity", "angular"),
            ("effective", "effect"),
            ("bowdlerize", "bowdler"),
            ("probate", "probat"),
            ("rate", "rate"),
            ("cease", "ceas"),
            ("controlling", "control"),
            ("roll", "roll"),
            ("generously", "gener"),
            // The C implementation's departures from the paper, which Lucene keeps.
            ("sensibly", "sensibl"),
            ("analogies", "analog"),
            ("archaeology", "archaeolog"),
            // Short words are left alone; non-letters are consonants.
            ("is", "is"),
            ("as", "as"),
            ("ss", "ss"),
            ("1990s", "1990"),
            ("don't", "don't"),
            ("covid-19", "covid-19"),
            ("yes", "ye"),
            ("eed", "eed"),
            ("ing", "ing"),
            ("ied", "i"),
            ("ion", "ion"),
        ];
        for (word, expected) in cases {
            assert_eq!(stemmed(word), expected, "stem of {word}");
        }
    }

    #[test]
    fn non_ascii_letters_are_consonants() {
        let mut word: Vec<char> = "naïveties".chars().collect();
        stem(&mut word);
        assert_eq!(word.iter().collect::<String>(), "naïveti");
        let mut word: Vec<char> = "ééé".chars().collect();
        assert!(!stem(&mut word));
    }
}
