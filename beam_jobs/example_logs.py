"""Small synthetic impression logs for tests, examples and throughput runs.

Not a simulator (see `tfcvr.simulation.simulate` for one with selection bias and
ground truth that means something): just rows of every column kind the
generic readers handle, with clicks and conversions that satisfy the
entire-space rule (a conversion implies a click).
"""

import numpy as np
import pandas as pd

from tfcvr.features import keys


def impression_frame(rows=300, seed=0, users=40, items=120, start=1_700_000_000):
    """A DataFrame of `rows` impressions.

    Columns: row_id, user_id, item_id (ints), city (string), hist (`|`
    separated item ids, 0..6 of them), tags (`;` separated `tag:weight`
    tokens), price (log-normal float), age (float with ~10% missing),
    timestamp (epoch seconds), click, conversion (0/1), true_ctr, true_cvr,
    conversion_if_clicked.
    """
    rng = np.random.default_rng(seed)
    n = rows
    true_ctr = rng.uniform(0.05, 0.6, n)
    true_cvr = rng.uniform(0.05, 0.5, n)
    click = (rng.random(n) < true_ctr).astype(np.int64)
    converts = (rng.random(n) < true_cvr).astype(np.int64)
    hist = [
        "|".join(str(v) for v in rng.integers(0, items, rng.integers(0, 7)))
        for _ in range(n)
    ]
    tags = [
        ";".join(
            f"t{t}:{w:.2f}"
            for t, w in zip(rng.integers(0, 5, k), rng.uniform(0.1, 2.0, k))
        )
        for k in rng.integers(0, 4, n)
    ]
    age = rng.integers(18, 70, n).astype(float)
    age[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame(
        {
            keys.ROW_ID: np.arange(n, dtype=np.int64),
            "user_id": rng.integers(0, users, n),
            "item_id": rng.zipf(1.5, n) % items,
            "city": rng.choice(["paris", "oslo", "lima", "pune", "kyiv"], n),
            "hist": hist,
            "tags": tags,
            "price": np.round(rng.lognormal(2.0, 1.0, n), 3),
            "age": age,
            keys.TIMESTAMP: start + np.sort(rng.integers(0, 86_400 * 30, n)),
            keys.CLICK: click,
            keys.CONVERSION: click * converts,
            keys.TRUE_CTR: np.round(true_ctr, 5),
            keys.TRUE_CVR: np.round(true_cvr, 5),
            keys.CONVERSION_IF_CLICKED: converts,
        }
    )


def impression_spec(timestamp=True, row_key=True, **vocab):
    """The input spec dict of `impression_frame` (vocab overrides allowed)."""
    spec = {
        "columns": {
            "user_id": {"kind": keys.CATEGORICAL_INT},
            "item_id": {"kind": keys.CATEGORICAL_INT, "embedding_group": "item"},
            "city": {"kind": keys.CATEGORICAL_STRING},
            "hist": {
                "kind": keys.MULTI_CATEGORICAL,
                "separator": "|",
                "max_len": 5,
                "embedding_group": "item",
            },
            "tags": {
                "kind": keys.MULTI_CATEGORICAL,
                "value_dtype": "string",
                "separator": ";",
                "max_len": 3,
                "weighted": True,
            },
            "price": {"kind": keys.NUMERIC, "log": True},
            "age": {"kind": keys.NUMERIC, "clip_max": 60.0},
        },
        "labels": {keys.CLICK: keys.CLICK, keys.CONVERSION: keys.CONVERSION},
        "user_id": "user_id",
        "item_id": "item_id",
        "extra_columns": [
            keys.ROW_ID,
            keys.TRUE_CTR,
            keys.TRUE_CVR,
            keys.CONVERSION_IF_CLICKED,
        ],
        "vocab": {"min_count": 1, "top_k": None, "num_oov": 1, **vocab},
    }
    if timestamp:
        spec["timestamp"] = keys.TIMESTAMP
    if row_key:
        spec["row_key"] = keys.ROW_ID
    return spec
