"""The wheel holds everything the app needs (docs/design.md section 8): built from the checkout, installed
into a fresh virtual environment, `melody-memory` runs `corpus` and `generate --run pretrained` from a
folder that is not the checkout, and writes its cache to the user's cache folder, not beside the code.

Kept fast: the virtual environment gets no dependencies of its own (a .pth line lends it this
environment's site-packages for torch, numpy, mido ...; a plain path line, so the checkout's editable
install in there is not activated), and the wheel is installed with --no-deps --no-index.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from tests.built_once import built_once

ROOT = Path(__file__).resolve().parent.parent
# One worker builds and installs the wheel for all of them: the module's fixture is built once per run and
# shared (tests/built_once.py); the xdist_group mark alone no longer holds (pytest-xdist issue 1386).
pytestmark = pytest.mark.xdist_group("wheel")
# Only what `git clone` gives: the build must not depend on (or see) a developer's local files.
NOT_SHIPPED = (".git", ".venv", ".cache", "build", "runs", "reports", "*.egg-info", "__pycache__", ".pytest_cache")


def run(cmd, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{cmd}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    tmp = built_once(tmp_path_factory, "wheel", build_and_install)
    env_dir = tmp / "venv"
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    script = env_dir / ("Scripts/melody-memory.exe" if os.name == "nt" else "bin/melody-memory")
    (wheel,) = (tmp / "dist").glob("melody_memory-*.whl")
    made = json.loads((tmp / "installed.json").read_text())
    env = {k: v for k, v in os.environ.items() if k not in ("MELODY_MEMORY_CACHE", "PYTHONPATH")}
    env["XDG_CACHE_HOME"] = str(tmp / "xdg-cache")
    return {"wheel": wheel, "python": python, "site": Path(made["site"]), "script": script, "cwd": tmp / "elsewhere",
            "env": env, "tmp": tmp, "files": {Path(p) for p in made["files"]}}


def build_and_install(tmp: Path) -> None:
    """The wheel built from a copy of the checkout and installed into a fresh virtual environment; where it went
    and the installation's files as installed (installed.json)."""
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SHIPPED))
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", tmp / "dist", source])
    (wheel,) = (tmp / "dist").glob("melody_memory-*.whl")

    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "-q", wheel])
    (tmp / "installed.json").write_text(json.dumps({"site": str(site),
                                                      "files": sorted(str(p) for p in installed_files(site))}))
    (tmp / "elsewhere").mkdir()


def installed_files(site: Path) -> set[Path]:
    """Every file of the installation but Python's bytecode caches."""
    return {p for p in site.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_the_wheel_holds_the_code_the_corpus_and_the_models(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    for needed in ("main.py", "engine/data/corpus.py", "engine/core/resources.py", "gui/main_window.py", "commands/corpus.py",
                   "midi_data/manifest.csv", "midi_data/SOURCES.md", "midi_data/tokenized.npz", "midi_data/tokenized.json",
                   "midi_data/airdsAirs/airdsAirs-0004.mid", "pretrained/memory-report.json",
                   "pretrained/lstm/model.safetensors", "pretrained/lstm/config.json"):
        assert needed in names, needed
    shipped_tunes = {n for n in names if n.startswith("midi_data/") and n.endswith(".mid")}
    assert len(shipped_tunes) == len(list((ROOT / "midi_data").glob("*/*.mid")))
    assert not any(n.startswith(("tests/", "scripts/", "docs/")) for n in names)


def test_the_installed_app_runs_from_any_folder(installed):
    where = run([installed["python"], "-c", "import engine, midi_data, pretrained, commands; "
                 "print(engine.__file__); print(midi_data.__file__); print(pretrained.__file__)"],
                cwd=installed["cwd"], env=installed["env"]).stdout.split()
    assert all(Path(p).is_relative_to(installed["site"]) for p in where), where  # not the checkout

    corpus = run([installed["script"], "corpus", "--json"], cwd=installed["cwd"], env=installed["env"])
    doc = json.loads(corpus.stdout)
    assert doc["melodies"] > 3500 and doc["cache"] == "shipped"  # the first launch parses nothing
    assert doc["sources"] == [str(installed["site"] / "midi_data")]
    cache = installed["tmp"] / "xdg-cache" / "melody-memory" / "corpus"
    assert sorted(p.suffix for p in cache.iterdir()) == [".json", ".npz"]  # the user's cache folder
    again = json.loads(run([installed["script"], "corpus", "--json"], cwd=installed["cwd"], env=installed["env"]).stdout)
    assert again["cache"] == "hit" and again["fingerprint"] == doc["fingerprint"]

    out = installed["cwd"] / "tune.mid"
    run([installed["script"], "generate", "--run", "pretrained", "--model", "lstm", "--bars", "4", "--out", out],
        cwd=installed["cwd"], env=installed["env"])
    assert out.stat().st_size > 100
    assert installed_files(installed["site"]) == installed["files"], "the app wrote into its own installation"


def test_data_locations(monkeypatch, tmp_path):
    from engine.core import resources

    assert resources.is_checkout()
    assert resources.bundled_corpus_dir() == ROOT / "midi_data" and resources.pretrained_dir() == ROOT / "pretrained"
    assert resources.shipped_cache_paths() == (ROOT / "midi_data" / "tokenized.npz", ROOT / "midi_data" / "tokenized.json")
    for variable in ("MELODY_MEMORY_CACHE", "MELODY_MEMORY_DATA", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(variable, raising=False)
    assert resources.user_cache_dir() == ROOT / ".cache"
    monkeypatch.setenv("MELODY_MEMORY_CACHE", str(tmp_path / "c"))
    assert resources.user_cache_dir() == tmp_path / "c"
    # installed (no checkout around the code): the user's own folders, never the package's
    monkeypatch.setattr(resources, "is_checkout", lambda: False)
    monkeypatch.delenv("MELODY_MEMORY_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert resources.user_cache_dir() == tmp_path / "home" / ".cache" / "melody-memory"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xc"))
    assert resources.user_cache_dir() == tmp_path / "xc" / "melody-memory"
