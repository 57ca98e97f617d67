"""Rebuild the tokenized bundled corpus that ships in midi_data/ (tokenized.npz + tokenized.json).

Usage: python scripts/build_corpus_cache.py [--workers N]   (or `make corpus-cache`)

Run it after changing midi_data/ or the code that turns MIDI files into tokens (engine/music/midi_io.py,
corpus.py, melody.py, tokens.py, cache.py): tests/test_corpus.py fails while the shipped form differs
from what a fresh parse gives. The app uses it for the first load of the bundled corpus, so that a new
install is ready in a second or two instead of parsing 4,000 files.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the checkout's engine, not an installed one

from engine.data.corpus import rebuild_shipped_cache, shipped_cache


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="parsing processes (default: all cores)")
    args = ap.parse_args(argv)
    corpus = rebuild_shipped_cache(workers=max(1, args.workers))
    store = shipped_cache()
    s = corpus.summary()
    print(f"wrote {store.npz_path} and {store.json_path}: {s['melodies']} melodies from {s['files']} files, "
          f"splits {s['splits']}, {s['duplicates']} duplicates, {len(s['skipped'])} skipped, "
          f"fingerprint {s['fingerprint']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
