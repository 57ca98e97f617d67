"""`main.py ARGS` run in the test's own process: a refusal or a quick command needs no new interpreter (the
tests of signals and killed processes start real ones)."""

from __future__ import annotations

import contextlib
import io


def run_main(*args) -> tuple[int, str]:
    """(exit code, what it wrote on stderr); argparse's refusals (SystemExit) give their code too."""
    from main import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code
    return code, err.getvalue()
