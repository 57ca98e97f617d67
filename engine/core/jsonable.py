"""The one conversion of results to JSON: numpy scalars and arrays to Python numbers and lists, paths to
strings, and NaN or infinity (an undefined mean, an empty bar) to null, so that every file and every
`--json` document is strict JSON that any reader accepts."""

from __future__ import annotations

import math
from pathlib import PurePath

import numpy as np


def json_ready(obj):
    if isinstance(obj, dict):
        return {str(k): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_ready(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, PurePath):
        return str(obj)
    return obj
