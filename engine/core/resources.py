"""Where the app's data lies, in a checkout and in an installed wheel: the one place that knows.

The bundled corpus (`midi_data/`) and the pretrained models (`pretrained/`) are top-level packages of
the project, found through the import system (importlib.resources), so they are found wherever pip put
them. Written data never goes into the package: the corpus cache lives in the checkout's .cache/ when
running from a checkout, else in the user's cache folder.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

APP_NAME = "melody-memory"
# engine/core/ is two levels below the project root of a checkout (or of site-packages, installed)
_ROOT = Path(__file__).resolve().parents[2]
SHIPPED_CACHE_NAME = "tokenized"  # midi_data/tokenized.npz + tokenized.json (engine.data.cache.ShippedCache)


def _package_dir(name: str) -> Path:
    """The folder of a top-level data package (`midi_data`, `pretrained`), through importlib.resources.

    Wheels install as plain folders, so the location is a real path. When the package is not importable
    (a checkout whose editable install predates it), the folder beside engine/ is the answer."""
    try:
        found = importlib.resources.files(name)
    except ModuleNotFoundError:
        return _ROOT / name
    if not isinstance(found, Path):  # a namespace package of that name elsewhere, not ours
        return _ROOT / name
    return found.resolve()


def bundled_corpus_dir() -> Path:
    """midi_data/: the bundled tunes, their manifest.csv and SOURCES.md."""
    return _package_dir("midi_data")


def pretrained_dir() -> Path:
    """pretrained/: the models that ship with the app (`--run pretrained`)."""
    return _package_dir("pretrained")


def shipped_cache_paths() -> tuple[Path, Path]:
    """(arrays .npz, records .json) of the tokenized bundled corpus that ships inside midi_data/."""
    folder = bundled_corpus_dir()
    return folder / f"{SHIPPED_CACHE_NAME}.npz", folder / f"{SHIPPED_CACHE_NAME}.json"


def is_checkout() -> bool:
    """True when the code runs from a source checkout (editable or not), False from an installed wheel."""
    return (_ROOT / "pyproject.toml").is_file() and (_ROOT / "engine").is_dir()


def user_cache_dir() -> Path:
    """Where caches are written: $MELODY_MEMORY_CACHE; else .cache/ in a checkout; else
    $XDG_CACHE_HOME/melody-memory (~/.cache/melody-memory; on Windows %LOCALAPPDATA%\\melody-memory\\cache)."""
    env = os.environ.get("MELODY_MEMORY_CACHE")
    if env:
        return Path(env).expanduser()
    if is_checkout():
        return _ROOT / ".cache"
    return _user_folder("XDG_CACHE_HOME", ".cache", "cache")



def _user_folder(xdg_variable: str, home_default: str, windows_sub: str) -> Path:
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / APP_NAME / windows_sub
    base = os.environ.get(xdg_variable)
    return (Path(base).expanduser() if base else Path.home() / home_default) / APP_NAME
