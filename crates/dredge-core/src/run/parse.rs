//! The run parser: the file split at newlines into chunks parsed in parallel, each
//! line's six columns found eight bytes at a time, and scores read on a fast path
//! that gives the very double `str::parse` does.

use super::*;

/// The lines of one chunk, grouped into runs of the same query.
pub(super) struct ParsedChunk<'a> {
    pub(super) segments: Vec<Segment<'a>>,
    /// Number of lines in the chunk (blank ones included).
    pub(super) lines: u32,
}

/// Consecutive lines of one query, as [`RunQuery`] holds them.
pub(super) struct Segment<'a> {
    pub(super) qid: &'a str,
    pub(super) entries: Vec<RunEntry>,
    pub(super) docs: String,
}

/// Splits `bytes` into pieces of about `target` bytes that end at a newline.
pub(super) fn split_lines(bytes: &[u8], target: usize) -> Vec<&[u8]> {
    let mut chunks = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let cut = if rest.len() <= target {
            rest.len()
        } else {
            rest[target..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |i| target + i + 1)
        };
        let (chunk, tail) = rest.split_at(cut);
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

/// A line number within a chunk (0-based) and what is wrong there.
pub(super) type ChunkError = (u32, String);

/// Parses one chunk; line numbers in entries and errors are 0-based within it.
///
/// The chunk is checked as UTF-8 in one go (a newline never falls inside a
/// multi-byte character, so that is the same as line by line); only when that
/// fails are the lines before the bad one parsed on their own, so that an earlier
/// error still wins and the UTF-8 error names its line and column.
pub(super) fn parse_chunk(chunk: &[u8]) -> std::result::Result<ParsedChunk<'_>, ChunkError> {
    match std::str::from_utf8(chunk) {
        Ok(text) => parse_text(text),
        Err(e) => {
            let bad = e.valid_up_to();
            let line_start = chunk[..bad]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            let before = std::str::from_utf8(&chunk[..line_start]).unwrap_or_default();
            let lines = parse_text(before)?.lines;
            Err((
                lines,
                format!(
                    "not valid UTF-8 (invalid byte at column {})",
                    bad - line_start + 1
                ),
            ))
        }
    }
}

/// Whitespace between columns, as [`str::split_ascii_whitespace`] sees it
/// (newlines aside, which end lines).
#[inline]
pub(super) fn is_blank(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\x0C')
}

/// The end of the column that starts at `i`: the next blank or newline, or the end
/// of `bytes`. Looks at eight bytes at a time.
#[inline]
pub(super) fn column_end(bytes: &[u8], mut i: usize) -> usize {
    while let Some(word) = bytes.get(i..i + 8) {
        let x = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        // The high bit of each byte below 0x21 (every blank and the newline) is
        // set, and maybe of bytes after the first such: the lowest one is exact.
        let low = x.wrapping_sub(ONES * 0x21) & !x & (ONES * 0x80);
        if low == 0 {
            i += 8;
            continue;
        }
        let j = i + (low.trailing_zeros() / 8) as usize;
        if is_blank(bytes[j]) || bytes[j] == b'\n' {
            return j;
        }
        i = j + 1;
    }
    while i < bytes.len() && !is_blank(bytes[i]) && bytes[i] != b'\n' {
        i += 1;
    }
    i
}

/// Byte ranges of the first six columns of a line.
pub(super) type Columns = [(usize, usize); 6];

/// The line that starts at `i`: where it ends (its newline, or the end of `bytes`),
/// how many columns it has, and the first six of them. Byte by byte; any line.
pub(super) fn scan_columns(bytes: &[u8], mut i: usize) -> (usize, usize, Columns) {
    let mut cols = [(0, 0); 6];
    let mut n = 0;
    loop {
        while i < bytes.len() && is_blank(bytes[i]) {
            i += 1;
        }
        if i == bytes.len() || bytes[i] == b'\n' {
            return (i, n, cols);
        }
        let start = i;
        i = column_end(bytes, i);
        if n < cols.len() {
            cols[n] = (start, i);
        }
        n += 1;
    }
}

pub(super) const ONES: u64 = 0x0101_0101_0101_0101;
pub(super) const HIGH: u64 = ONES * 0x80;

/// The high bit of each byte of `x` that equals `b`; no other bit.
#[inline]
pub(super) fn bytes_equal(x: u64, b: u8) -> u64 {
    let t = x ^ (ONES * u64::from(b));
    !(((t & !HIGH) + !HIGH) | t) & HIGH
}

/// The high bit of each byte of `x` below 0x21 (controls and the space); no other bit.
#[inline]
pub(super) fn bytes_below_0x21(x: u64) -> u64 {
    !(((x & !HIGH) + ONES * (0x80 - 0x21)) | x) & HIGH
}

/// The high bits of the eight bytes of `x` as the low eight bits (byte `k`, bit `k`).
#[inline]
pub(super) fn gather_high_bits(x: u64) -> u64 {
    // Each set bit lands once in the top byte, at a distinct place: no carries.
    ((x >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// The common case of [`scan_columns`], eight bytes at a time without a branch per
/// column: a line under 64 bytes with exactly six columns gives its end and
/// columns; any other line `None`, to be scanned byte by byte.
#[inline]
pub(super) fn short_line_columns(bytes: &[u8], i: usize) -> Option<(usize, Columns)> {
    // Bit k: byte i + k is a blank / ends the line (a newline or the end of text).
    let mut blanks = 0u64;
    let mut line_len = None;
    for k in 0..8 {
        let at = i + 8 * k;
        let (x, valid) = match bytes.get(at..at + 8) {
            Some(word) => (u64::from_le_bytes(word.try_into().expect("8 bytes")), 0xff),
            None => {
                let tail = bytes.get(at..).unwrap_or_default();
                let mut word = [0u8; 8];
                word[..tail.len()].copy_from_slice(tail);
                (u64::from_le_bytes(word), (1u64 << tail.len()) - 1)
            }
        };
        let below = bytes_below_0x21(x);
        let newlines = bytes_equal(x, b'\n');
        let mut blank = bytes_equal(x, b' ');
        let others = below & !(blank | newlines);
        if others != 0 {
            // Tabs, carriage returns and form feeds separate columns too; other
            // control bytes belong to them.
            blank |=
                others & (bytes_equal(x, b'\t') | bytes_equal(x, b'\r') | bytes_equal(x, 0x0C));
        }
        blanks |= gather_high_bits(blank) << (8 * k);
        let ends = gather_high_bits(newlines) | (!valid & 0xff);
        if ends != 0 {
            line_len = Some(8 * k + ends.trailing_zeros() as usize);
            break;
        }
    }
    let line_len = line_len.filter(|&len| len < 64)?;
    // Everything from the line's end on separates columns.
    let gaps = blanks | (u64::MAX << line_len);
    let mut starts = !gaps & ((gaps << 1) | 1);
    let mut ends = gaps & (!gaps << 1);
    if starts.count_ones() != 6 {
        return None;
    }
    let mut cols = [(0, 0); 6];
    for col in &mut cols {
        *col = (
            i + starts.trailing_zeros() as usize,
            i + ends.trailing_zeros() as usize,
        );
        starts &= starts - 1;
        ends &= ends - 1;
    }
    Some((i + line_len, cols))
}

/// Parses whole lines of run text; see [`parse_chunk`].
pub(super) fn parse_text(text: &str) -> std::result::Result<ParsedChunk<'_>, ChunkError> {
    let bytes = text.as_bytes();
    let mut segments: Vec<Segment<'_>> = Vec::new();
    // The previous query's size, to size the next one's buffers (runs list about
    // the same number of documents for every query).
    let (mut entries_hint, mut docs_hint) = (0, 0);
    let mut lines = 0u32;
    let mut i = 0;
    while i < bytes.len() {
        let line_no = lines;
        lines = lines
            .checked_add(1)
            .ok_or_else(|| (line_no, TOO_MANY_LINES.to_owned()))?;
        let line_start = i;
        let (line_end, cols) = match short_line_columns(bytes, i) {
            Some(found) => found,
            None => match scan_columns(bytes, i) {
                (line_end, 6, cols) => (line_end, cols),
                (line_end, _, _) if text[line_start..line_end].trim().is_empty() => {
                    i = line_end + 1;
                    continue;
                }
                (_, n, _) => {
                    return Err((
                        line_no,
                        format!("expected 6 columns (qid Q0 docid rank score tag), found {n}"),
                    ));
                }
            },
        };
        i = line_end + 1; // past the newline
        // Columns start and end next to ASCII bytes (or the ends of the text), so
        // these are character boundaries.
        let col = |k: usize| &text[cols[k].0..cols[k].1];
        let (qid, doc, score) = (col(0), col(2), col(4));
        let score = match parse_score(score) {
            Some(s) if s.is_finite() => s,
            _ => return Err((line_no, format!("score `{score}` is not a finite number"))),
        };
        let segment = match segments.last_mut() {
            Some(s) if s.qid == qid => s,
            _ => {
                if let Some(last) = segments.last() {
                    (entries_hint, docs_hint) = (last.entries.len(), last.docs.len());
                }
                segments.push(Segment {
                    qid,
                    entries: Vec::with_capacity(entries_hint),
                    docs: String::with_capacity(docs_hint),
                });
                segments.last_mut().expect("just pushed")
            }
        };
        let doc_start =
            push_id(&mut segment.docs, doc).ok_or_else(|| (line_no, too_many_ids(qid)))?;
        segment.entries.push(RunEntry {
            score,
            line: line_no,
            doc_start,
        });
    }
    Ok(ParsedChunk { segments, lines })
}

/// Parses a score as `str::parse::<f64>` does, the common plain decimals
/// (`-12.345`) without its general machinery.
pub(super) fn parse_score(s: &str) -> Option<f64> {
    plain_decimal(s.as_bytes()).or_else(|| s.parse().ok())
}

/// `[-]digits[.digits]` with at most 19 digits, a value below 2^53 once the point is
/// dropped, and at most 22 after the point: then both the digits and the power of
/// ten are exact doubles and one correctly rounded division gives the correctly
/// rounded value, the very double `str::parse` returns (Clinger's fast path).
/// `None` for anything else.
pub(super) fn plain_decimal(s: &[u8]) -> Option<f64> {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let (negative, s) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let mut mantissa = 0u64;
    let mut digits = 0;
    let mut point = None;
    for (i, &b) in s.iter().enumerate() {
        match b {
            b'0'..=b'9' if digits < 19 => {
                mantissa = mantissa * 10 + u64::from(b - b'0');
                digits += 1;
            }
            b'.' if point.is_none() && i > 0 && i + 1 < s.len() => point = Some(i),
            _ => return None,
        }
    }
    let after_point = point.map_or(0, |i| s.len() - i - 1);
    if digits == 0 || mantissa > 1 << 53 || after_point >= POW10.len() {
        return None;
    }
    let value = mantissa as f64 / POW10[after_point];
    Some(if negative { -value } else { value })
}
