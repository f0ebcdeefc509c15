#!/usr/bin/env python3
"""Writes a synthetic sentences bundle for the benchmarks.

    benches/corpus.py OUT_DIR [--sentences N] [--seed S]

The bundle has the layout of the public hitokoto sentences-bundle
(version.json, categories.json, sentences/a.json … l.json), so that
`diem import OUT_DIR` reads it as it reads the real one, and the shape of
the real bundle of 10,032 sentences: its count per category and the
distribution of sentence lengths (the percentiles below, in characters;
~94 % CJK characters, so ~2.9 UTF-8 bytes per character). The text is
drawn from a fixed list of common characters: it means nothing, and the
bundle is the repository's own (MIT OR Apache-2.0, as diem). The same
seed writes the same bundle.

To benchmark with the real sentences instead, set DIEM_BENCH_CORPUS to a
bundle directory (docs/operations.md says where to get one).
"""

import argparse
import json
import os
import random
import uuid

# Sentences per category in the real bundle (1.0.971), 10,032 in all.
CATEGORIES = [
    ("a", "动画", "Anime", 1465), ("b", "漫画", "Comic", 110), ("c", "游戏", "Game", 1154),
    ("d", "文学", "Literature", 1937), ("e", "原创", "Original", 1472),
    ("f", "来自网络", "Internet", 1238), ("g", "其他", "Other", 1184),
    ("h", "影视", "Video", 196), ("i", "诗词", "Poem", 753), ("j", "网易云", "NCM", 135),
    ("k", "哲学", "Philosophy", 307), ("l", "抖机灵", "Funny", 81),
]

# Percentiles 0, 1, …, 100 of the real sentences' length in characters.
LENGTH_PERCENTILES = [
    2, 7, 8, 9, 9, 10, 10, 10, 10, 11, 11, 12, 12, 12, 12, 12, 13, 13, 13, 14, 14, 14, 14, 14,
    15, 15, 15, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 17, 17, 17, 17, 18, 18, 18, 18, 19, 19,
    19, 20, 20, 20, 20, 20, 21, 21, 21, 22, 22, 22, 23, 23, 24, 24, 24, 25, 25, 25, 26, 26, 27,
    27, 28, 28, 29, 29, 30, 30, 31, 32, 32, 33, 34, 34, 35, 36, 37, 38, 39, 40, 42, 43, 45, 47,
    49, 51, 54, 57, 61, 68, 80, 255,
]

# Percentiles 0, 10, …, 100 of the length of `from`; 37 % have no from_who.
FROM_PERCENTILES = [1, 2, 2, 3, 4, 4, 5, 6, 7, 10, 48]
NO_FROM_WHO = 0.37

CJK = (
    "的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可里后"
    "小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长"
    "知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最"
)
PUNCTUATION = "，。！？、…"
ASCII = "abcdefghijklmnopqrstuvwxyz "


def sample(percentiles, rng):
    """A value drawn from the distribution the percentiles describe."""
    at = rng.random() * (len(percentiles) - 1)
    i = int(at)
    low, high = percentiles[i], percentiles[min(i + 1, len(percentiles) - 1)]
    return max(1, round(low + (high - low) * (at - i)))


def text(length, rng):
    chars = []
    for i in range(length):
        r = rng.random()
        if i == length - 1:
            chars.append(rng.choice("。！？…"))
        elif r < 0.06:
            chars.append(rng.choice(ASCII))
        elif r < 0.12:
            chars.append(rng.choice(PUNCTUATION))
        else:
            chars.append(rng.choice(CJK))
    return "".join(chars)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("--sentences", type=int, default=10032)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    total = sum(c[3] for c in CATEGORIES)
    os.makedirs(os.path.join(args.out, "sentences"), exist_ok=True)
    entries, categories, next_id = [], [], 1
    for n, (key, name, desc, count) in enumerate(CATEGORIES):
        path = f"./sentences/{key}.json"
        wanted = round(count * args.sentences / total)
        sentences = []
        for _ in range(wanted):
            sentences.append({
                "id": next_id,
                "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "hitokoto": text(sample(LENGTH_PERCENTILES, rng), rng),
                "type": key,
                "from": text(sample(FROM_PERCENTILES, rng), rng).rstrip("。！？…") or "无名",
                "from_who": None if rng.random() < NO_FROM_WHO else text(rng.randint(2, 5), rng)[:-1],
                "creator": "diem-bench",
                "creator_uid": 0,
                "reviewer": 0,
                "commit_from": "web",
                "created_at": str(1468605909 + next_id * 3600),
                "length": 0,
            })
            sentences[-1]["length"] = len(sentences[-1]["hitokoto"])
            next_id += 1
        with open(os.path.join(args.out, "sentences", f"{key}.json"), "w", encoding="utf-8") as f:
            json.dump(sentences, f, ensure_ascii=False, indent=2)
        entries.append({"name": name, "key": key, "path": path, "timestamp": 1619244060706})
        categories.append({
            "id": n + 1, "name": name, "desc": f"{desc} - {name}", "key": key,
            "created_at": "2020-05-15T10:48:09Z", "updated_at": "2020-05-15T10:48:12Z", "path": path,
        })
    with open(os.path.join(args.out, "categories.json"), "w", encoding="utf-8") as f:
        json.dump(categories, f, ensure_ascii=False, indent=2)
    version = {
        "protocol_version": "1.0.0",
        "bundle_version": f"synthetic-{args.seed}",
        "updated_at": 1787393066570,
        "categories": {"path": "./categories.json", "timestamp": 1597712000881},
        "sentences": entries,
    }
    with open(os.path.join(args.out, "version.json"), "w", encoding="utf-8") as f:
        json.dump(version, f, ensure_ascii=False, indent=2)
    print(f"{next_id - 1} synthetic sentences in {args.out}")


if __name__ == "__main__":
    main()
