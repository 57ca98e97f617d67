"""Bench sections: each module has measure(quick, report) -> dict (see commands/bench.py)."""
