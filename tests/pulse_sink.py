"""One PulseAudio null sink as the default output, shared by every test process that plays sound.

The default sink is the sound server's state, not a process's: when each pytest-xdist worker loaded a sink of
its own and made it the default, a player in one worker could open the other worker's sink (CI failed that way:
a player expected "MelodyMemoryTestSink" and played into "MelodyMemoryGuiSink"). So the workers share one sink,
counted under a run-wide lock: the first user starts the server if none runs and loads the sink; the last one
restores the previous default, unloads the sink, and stops the server only if a test started it.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.built_once import one_at_a_time

SINK = "melody_memory_test_sink"
DESCRIPTION = "MelodyMemoryTestSink"


def _pactl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=10)


def _server_up() -> bool:
    return _pactl("info").returncode == 0


def _start_server() -> str:
    """Start a user server (as root too: --system=false) and wait for it; '' when up, else why not."""
    run = subprocess.run(
        ["pulseaudio", "-D", "--exit-idle-time=-1", "--system=false"], capture_output=True, text=True, timeout=20
    )
    deadline = time.monotonic() + 10
    while not _server_up() and time.monotonic() < deadline:
        time.sleep(0.1)
    return "" if _server_up() else f"pulseaudio said {run.stderr.strip()[-300:]!r}"


@contextlib.contextmanager
def shared_null_sink(tmp_path_factory) -> Iterator[str]:
    """Yields the sink's description while it is the server's default output; skips the test with the reason
    where no server can run or load a null sink."""
    if shutil.which("pactl") is None or shutil.which("pulseaudio") is None:
        pytest.skip("PulseAudio is not installed: no null sink to play into")
    with one_at_a_time(tmp_path_factory, "pulse-sink") as root:
        state_file = root / "pulse-sink.json"
        state = json.loads(state_file.read_text()) if state_file.exists() else {"users": 0}
        if state["users"] == 0:
            started = False
            if not _server_up():
                why = _start_server()
                if why:
                    pytest.skip(f"no audio server can start here: {why}")
                started = True
            previous = _pactl("get-default-sink").stdout.strip()
            loaded = _pactl("load-module", "module-null-sink", f"sink_name={SINK}",
                            f"sink_properties=device.description={DESCRIPTION}")
            if loaded.returncode != 0:
                if started:
                    subprocess.run(["pulseaudio", "--kill"], capture_output=True, timeout=10)
                pytest.skip(f"PulseAudio runs but will not load a null sink: {loaded.stderr.strip()}")
            state = {"users": 0, "module": loaded.stdout.strip(), "previous": previous, "started": started}
        _pactl("set-default-sink", SINK)
        state["users"] += 1
        state_file.write_text(json.dumps(state))
    try:
        yield DESCRIPTION
    finally:
        with one_at_a_time(tmp_path_factory, "pulse-sink") as root:
            state = json.loads(state_file.read_text())
            state["users"] -= 1
            if state["users"] == 0:
                if state["previous"] and state["previous"] != SINK:
                    _pactl("set-default-sink", state["previous"])
                _pactl("unload-module", state["module"])
                if state["started"]:  # the server a test started, and only that one
                    subprocess.run(["pulseaudio", "--kill"], capture_output=True, timeout=10)
            state_file.write_text(json.dumps(state))
