"""Writes BYTES bytes (at least) of English-like text to PATH: lines of 5 to 15 words drawn
from a Zipf-like vocabulary of 20,000 random words, the same for the same SEED.
Used by scripts/wordcount-check.sh and bench/mapreduce.sh.

    python3 scripts/gen-text.py PATH BYTES [SEED]
"""
import random
import sys

path, target = sys.argv[1], int(sys.argv[2])
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 42)
vocab = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(1, 12))) for _ in range(20000)]
weights = [1.0 / (i + 1) for i in range(len(vocab))]
with open(path, "w") as f:
    n = 0
    while n < target:
        words = rng.choices(vocab, weights, k=20000)
        lines = []
        i = 0
        while i < len(words):
            k = rng.randint(5, 15)
            lines.append(" ".join(words[i:i + k]))
            i += k
        s = "\n".join(lines) + "\n"
        f.write(s)
        n += len(s)
