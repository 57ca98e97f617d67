"""Stage 10, bench: the figures of `python main.py bench`; each module has measure(quick, report) -> dict (see commands/bench.py)."""
