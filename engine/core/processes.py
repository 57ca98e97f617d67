"""Helper processes that end with the process that started them.

A spawned helper (a corpus parser of the process pool) keeps running when its parent is killed with
kill -9: nothing tells it. A daemon thread that looks at the parent's pid once a second ends it instead.
"""

from __future__ import annotations

import os
import threading
import time


def exit_when_parent_dies(parent_pid: int, poll_s: float = 1.0) -> None:
    """Start watching: when this process's parent is no longer `parent_pid`, leave at once (os._exit:
    a parser holds nothing that needs saving)."""

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
