"""Canonical JSON and short hashes: a config's identity must not depend on
dict order, float spelling or tuple-vs-list."""

import hashlib
import json
import math


def normalize(value):
    """A JSON-ready copy: tuples become lists, -0.0 becomes 0.0."""
    if isinstance(value, dict):
        return {str(k): normalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"Configs must hold finite numbers. Received: {value!r}")
        # 1.0 and 1 name the same setting, so they must hash the same.
        return int(value) if value.is_integer() else value + 0.0
    raise ValueError(
        f"Configs hold only JSON values. Received: {type(value).__name__} "
        f"{value!r:.60}"
    )


def canonical_json(value):
    return json.dumps(normalize(value), sort_keys=True, separators=(",", ":"))


def short_hash(value, length=16):
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]
