"""One PulseAudio null sink as the default output, shared by every test process that plays sound.

The default sink is the sound server's state, not a process's: when each pytest-xdist worker loaded a sink of
its own and made it the default, a player in one worker could open the other worker's sink (CI failed that way:
a player expected "MelodyMemoryTestSink" and played into "MelodyMemoryGuiSink"). So the workers share one sink,
its users (process ids) listed in a state file under a run-wide lock: the first user starts the server if none
runs and loads the sink; the last one restores the previous default and unloads it. A server the tests started
is stopped only at the very end of the run (`stop_the_server_the_tests_started`, from the controlling process),
never while another worker's app may still be connected to it; a user that died is dropped from the list.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.built_once import one_at_a_time

SINK = "melody_memory_test_sink"
DESCRIPTION = "MelodyMemoryTestSink"
_LOCK = "pulse-sink"


def _pactl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=10)


def _server_up() -> bool:
    return _pactl("info").returncode == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(root: Path) -> dict:
    path = root / "pulse-sink.json"
    state = json.loads(path.read_text()) if path.exists() else {}
    state.setdefault("users", [])
    state["users"] = [pid for pid in state["users"] if _alive(pid)]
    return state


def _write(root: Path, state: dict) -> None:
    temporary = root / "pulse-sink.json.new"
    temporary.write_text(json.dumps(state))
    os.replace(temporary, root / "pulse-sink.json")  # a worker killed mid-write leaves the last whole state


def _start_server() -> str:
    """Start a user server (as root too: --system=false) and wait for it; '' when up, else why not."""
    if shutil.which("pulseaudio") is None:
        return "no audio server runs and pulseaudio is not installed"
    run = subprocess.run(
        ["pulseaudio", "-D", "--exit-idle-time=-1", "--system=false"], capture_output=True, text=True, timeout=20
    )
    deadline = time.monotonic() + 10
    while not _server_up() and time.monotonic() < deadline:
        time.sleep(0.1)
    if _server_up():
        return ""
    subprocess.run(["pulseaudio", "--kill"], capture_output=True, timeout=10)  # one that comes up late, too
    return f"no audio server can start here: pulseaudio said {run.stderr.strip()[-300:]!r}"


def _sink_loaded() -> bool:
    return any(line.split("\t")[1:2] == [SINK] for line in _pactl("list", "short", "sinks").stdout.splitlines())


@contextlib.contextmanager
def shared_null_sink(tmp_path_factory) -> Iterator[str]:
    """Yields the sink's description while it is the server's default output; skips the test with the reason
    where no server can run or load a null sink (and every later test of the run at once, with the same reason)."""
    if shutil.which("pactl") is None:
        pytest.skip("PulseAudio's client (pactl) is not installed: no null sink to play into")
    with one_at_a_time(tmp_path_factory, _LOCK) as root:
        state = _read(root)
        if state.get("cannot"):
            pytest.skip(state["cannot"])
        if not state["users"]:
            if not _server_up():
                why = _start_server()
                if why:
                    _write(root, {**state, "cannot": why})
                    pytest.skip(why)
                state["started"] = True
            if not _sink_loaded():  # (a user that died may have left it loaded: then it is used again)
                state["previous"] = _pactl("get-default-sink").stdout.strip()
                loaded = _pactl("load-module", "module-null-sink", f"sink_name={SINK}",
                                f"sink_properties=device.description={DESCRIPTION}")
                if loaded.returncode != 0:
                    why = f"PulseAudio runs but will not load a null sink: {loaded.stderr.strip()}"
                    _write(root, {**state, "cannot": why})
                    pytest.skip(why)
                state["module"] = loaded.stdout.strip()
        _pactl("set-default-sink", SINK)
        state["users"].append(os.getpid())
        _write(root, state)
    try:
        yield DESCRIPTION
    finally:
        with one_at_a_time(tmp_path_factory, _LOCK) as root:
            state = _read(root)
            state["users"] = [pid for pid in state["users"] if pid != os.getpid()]
            if not state["users"] and state.get("module"):
                if state.get("previous") and state["previous"] != SINK:
                    _pactl("set-default-sink", state["previous"])
                _pactl("unload-module", state.pop("module"))
            _write(root, state)


def stop_the_server_the_tests_started(tmp_path_factory) -> None:
    """At the end of the whole run, in the controlling process (after every worker has ended): unload a sink a
    dead worker left and stop the server if a test started it. Nothing when no test asked for the sink."""
    with one_at_a_time(tmp_path_factory, _LOCK) as root:
        if not (root / "pulse-sink.json").exists():
            return
        state = _read(root)
        if state["users"]:  # still in use (a run inside a run): theirs to end
            return
        if state.get("module"):
            _pactl("unload-module", state.pop("module"))
        if state.pop("started", False):
            subprocess.run(["pulseaudio", "--kill"], capture_output=True, timeout=10)
        _write(root, state)
