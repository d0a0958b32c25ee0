"""The benchmark's pairs: the first QUERIES queries of a TREC run with the texts of
their top DEPTH documents, as `dredge rerank` pairs them (query text; title + " " +
text, trimmed, or the text alone when the title is empty).

    python3 make_pairs.py DATASET RUN.trec QUERIES DEPTH PAIRS.jsonl
"""

import json
import sys


def document_text(title, text):
    title = title.lstrip()
    if not title:
        return text.strip()
    text = text.rstrip()
    if not text:
        return title.rstrip()
    return title + " " + text


def main():
    data, run_path, n_queries, depth, out = sys.argv[1:6]
    n_queries, depth = int(n_queries), int(depth)
    queries = {}
    with open(data + "/queries.jsonl", encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            queries[q["_id"]] = q["text"]
    ranked = {}
    with open(run_path, encoding="utf-8") as f:
        for line in f:
            qid, _, doc, _, score, _ = line.split()
            ranked.setdefault(qid, []).append((float(score), doc))
    chosen = list(ranked)[:n_queries]
    wanted = {d for q in chosen for _, d in sorted(ranked[q], key=lambda x: (-x[0], x[1]))[:depth]}
    docs = {}
    with open(data + "/corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            if d["_id"] in wanted:
                docs[d["_id"]] = document_text(d.get("title", ""), d.get("text", ""))
    n = 0
    with open(out, "w", encoding="utf-8") as f:
        for q in chosen:
            top = sorted(ranked[q], key=lambda x: (-x[0], x[1]))[:depth]
            for _, d in top:
                f.write(json.dumps({"query": queries[q], "passage": docs[d]}) + "\n")
                n += 1
    print("%d pairs from %d queries" % (n, len(chosen)), file=sys.stderr)


if __name__ == "__main__":
    main()
