"""Helpers for the lab's tests: poll with a deadline, and read arrays back out of Plotly
JSON (Plotly 7 sends numeric arrays as {"dtype", "bdata", "shape"} base64 blocks)."""
from __future__ import annotations

import base64
import json
import time

import numpy as np


def wait_for(cond, timeout: float = 60.0, what: str = "condition", every: float = 0.1):
    """Poll `cond` until it returns truthy (returned) or the deadline passes (AssertionError)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def arr(v) -> np.ndarray:
    """A Plotly JSON array (plain list or base64 block) as a numpy array."""
    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        shape = v.get("shape")
        if isinstance(shape, str):
            shape = [int(s) for s in shape.split(",")]
        return a.reshape(shape) if shape else a
    if isinstance(v, (list, tuple)) and v and isinstance(v[0], (dict, list, tuple)):
        return np.array([arr(x) for x in v])
    return np.asarray(v)


def traces(spec) -> dict:
    """Plotly figure JSON (str or dict) -> {trace name: trace dict}."""
    fig = json.loads(spec) if isinstance(spec, str) else spec
    return {t.get("name"): t for t in fig["data"]}
