#!/usr/bin/env python3
"""Generate TokenGuard's exactness fixture: token counts from OpenAI's Python `tiktoken` for a
deterministic sample of the texts in ../shared/eval plus hand-picked edge cases.

    pip install tiktoken
    TIKTOKEN_CACHE_DIR=../shared/peers/tiktoken_cache python3 scripts/token_fixture.py \
        ../shared/eval services/tokenguard/tests/fixtures/token_counts.jsonl

Counts use `encode_ordinary` (special-token strings such as <|endoftext|> are plain text), which is
what TokenGuard counts.
"""

import json
import pathlib
import sys

import tiktoken

PER_FILE = 160   # sampled rows per eval file (every k-th row)
LONGEST = 12     # plus the longest texts of each file
EDGE_CASES = [
    "",
    " ",
    "\n\n\n",
    "   leading and trailing   ",
    "hello world",
    "Hello, World! How's it going?",
    "<|endoftext|> is a special token written as text",
    "<|im_start|>system\nYou are helpful<|im_end|>",
    "😀😃😄😁 emoji 👩‍👩‍👧‍👦 family",
    "日本語のテキストと中文文本和한국어 텍스트",
    "Ελληνικά και русский текст",
    "def f(x):\n    return x ** 2  # comment\n\tif x: pass",
    "a" * 5000,
    "ab" * 3000,
    " " * 1000 + "x",
    "1234567890" * 50,
    "https://example.com/path?query=1&b=%20x#frag",
    "\u200b\u200bzero\u200dwidth\u2066bidi\u2069",
    "mixed\r\nline\rendings\n",
]


def texts_of(row):
    for key in ("text", "sent_more", "sent_less", "context", "question", "answer"):
        value = row.get(key)
        if isinstance(value, str):
            yield key, value
    for i, turn in enumerate(row.get("turns") or []):
        yield f"turns[{i}]", turn
    for sample in row.get("samples") or []:
        yield f"samples[{sample.get('id')}]", sample.get("content", "")


def main(eval_dir, out_path):
    encodings = {name: tiktoken.get_encoding(name) for name in ("cl100k_base", "o200k_base")}
    chosen = []
    for path in sorted(pathlib.Path(eval_dir).rglob("*.jsonl")):
        rows = [json.loads(line) for line in path.open(encoding="utf-8")]
        step = max(1, len(rows) // PER_FILE)
        texts = [(path.name, r.get("id"), k, t) for r in rows[::step][:PER_FILE] for k, t in texts_of(r)]
        texts = texts[:PER_FILE]  # rows with many texts (batches, conversations) would dominate
        every = [(path.name, r.get("id"), k, t) for r in rows for k, t in texts_of(r)]
        texts += sorted(every, key=lambda x: -len(x[3]))[:LONGEST]
        seen = set()
        for item in texts:
            if item[:3] not in seen:
                seen.add(item[:3])
                chosen.append(item)
    for i, t in enumerate(EDGE_CASES):
        chosen.append(("edge-cases", str(i), "text", t))
    with open(out_path, "w", encoding="utf-8") as out:
        for source, row_id, field, text in chosen:
            counts = {name: len(enc.encode_ordinary(text)) for name, enc in encodings.items()}
            out.write(json.dumps({"source": source, "id": row_id, "field": field, "text": text, **counts},
                                 ensure_ascii=False) + "\n")
    print(f"{len(chosen)} texts written to {out_path}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
