"""Stand-ins for the first stage of two-stage estimators in tests."""

import numpy as np


def random_pretrained_tables(model, dim=4, seed=0):
    """`{feature: (rows, dim) float32}` random tables for every table a
    two-stage estimator wants (see `PretrainingStage`); empty otherwise."""
    wanted = getattr(model, "pretrained_tables_wanted", lambda: ())()
    rng = np.random.default_rng(seed)
    return {
        name: rng.normal(size=(model.schema[name].input_dim, dim)).astype(
            "float32"
        )
        for name in wanted
    }


def give_random_pretrained_tables(model, dim=4, seed=0):
    """Hands `random_pretrained_tables` to a two-stage estimator (a no-op
    for any other); returns the model."""
    tables = random_pretrained_tables(model, dim=dim, seed=seed)
    if tables:
        model.set_pretrained_tables(tables)
    return model
