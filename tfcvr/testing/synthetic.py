"""Encoded synthetic batches straight from a schema, for model tests and
benchmarks that should not depend on Beam or TFRecords."""

import numpy as np

from tfcvr.features import FeatureSpec
from tfcvr.features import Schema
from tfcvr.features import keys

# Constructor kwargs of every registered backbone at test size.
TINY_BACKBONES = {
    "towers": {"hidden_units": [8]},
    "shared_bottom": {"bottom_units": [8], "tower_units": [4]},
    "mmoe": {"num_experts": 3, "expert_units": [8], "tower_units": [4]},
    "ple": {"num_levels": 2, "num_shared_experts": 2, "num_task_experts": 1,
            "expert_units": [8], "tower_units": [4]},
    "dcn_v2": {"num_cross_layers": 2, "projection_dim": 4, "deep_units": [8],
               "tower_units": [4]},
}


def tiny_schema(num_categorical=3, vocab_size=10, multi=True, numeric=True):
    """A small schema with every feature kind and user/item ids."""
    features = [
        FeatureSpec("user", keys.CATEGORICAL_INT, vocab_size=vocab_size),
        FeatureSpec("item", keys.CATEGORICAL_INT, vocab_size=vocab_size,
                    embedding_group="item"),
    ]
    for i in range(max(num_categorical - 2, 0)):
        features.append(
            FeatureSpec(f"cat_{i}", keys.CATEGORICAL_STRING,
                        vocab_size=vocab_size, value_dtype="string")
        )
    if multi:
        features.append(
            FeatureSpec("history", keys.MULTI_CATEGORICAL,
                        vocab_size=vocab_size, max_len=4,
                        embedding_group="item", weighted=True)
        )
    if numeric:
        features.append(FeatureSpec("price", keys.NUMERIC, mean=0.0, std=1.0))
    return Schema(
        features=features,
        user_id="user",
        item_id="item",
        extra_columns=keys.GROUND_TRUTH_KEYS,
    )


def synthetic_batch(schema, batch_size=32, seed=0, ctr=0.3, cvr=0.3,
                    signal=True):
    """`(features, labels)` numpy dicts of already-encoded inputs.

    With `signal`, click and conversion depend on the first categorical
    feature so a model can learn something in a few steps; labels follow
    the entire-space rule conversion = click * conversion_if_clicked.
    """
    rng = np.random.default_rng(seed)
    features = {}
    for spec in schema.features:
        if spec.is_multi_valued:
            ids = rng.integers(1, spec.input_dim, (batch_size, spec.max_len))
            lengths = rng.integers(0, spec.max_len + 1, batch_size)
            ids[np.arange(spec.max_len)[None, :] >= lengths[:, None]] = 0
            features[spec.name] = ids.astype("int32")
            if spec.weighted:
                features[spec.name + keys.WEIGHT_SUFFIX] = (
                    (ids > 0) * rng.uniform(0.5, 1.5, ids.shape)
                ).astype("float32")
        elif spec.is_categorical:
            features[spec.name] = rng.integers(
                1, spec.input_dim, batch_size
            ).astype("int32")
        else:
            features[spec.name] = rng.normal(size=batch_size).astype("float32")
    first = schema.categorical_features[0]
    score = (
        (features[first.name] % 2).astype("float64") - 0.5
        if signal
        else np.zeros(batch_size)
    )
    true_ctr = np.clip(ctr + 0.2 * score, 0.01, 0.99)
    true_cvr = np.clip(cvr + 0.4 * score, 0.01, 0.99)
    click = rng.random(batch_size) < true_ctr
    conversion_if_clicked = rng.random(batch_size) < true_cvr
    labels = {
        keys.CLICK: click.astype("float32"),
        keys.CONVERSION: (click & conversion_if_clicked).astype("float32"),
        keys.TRUE_CTR: true_ctr.astype("float32"),
        keys.TRUE_CVR: true_cvr.astype("float32"),
        keys.CONVERSION_IF_CLICKED: conversion_if_clicked.astype("float32"),
    }
    return features, labels
