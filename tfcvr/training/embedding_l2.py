import keras

from tfcvr.layers.embedding.feature_embedding import FeatureEmbedding


def embedding_tables(model):
    """Every embedding table variable of `model`: its `keras.layers.Embedding`
    layers (per-table field embeddings, CSTWA's CVR-specific ones) and the
    one fused variable of a `FeatureEmbedding` with `table_layout="fused"`
    (all its tables stacked, so the same penalty)."""
    tables = []
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Embedding):
            tables.append(layer.embeddings)
        elif isinstance(layer, FeatureEmbedding) and getattr(layer, "table_layout", None) == "fused":
            if getattr(layer, "embeddings", None) is not None:
                tables.append(layer.embeddings)
    return tables


def apply_embedding_l2(model, l2):
    """Adds `l2 * sum(W ** 2)` over every embedding table `W` of a built
    `model` to its regularisation losses (`model.losses`, which
    `CVRModel.total_loss` adds to the objective).

    The penalty is on the whole tables, as `keras.layers.Embedding`'s
    `embeddings_regularizer` and the DeepCTR-style code of the ESCM²/DCMT
    papers apply it; it is a training setting, not part of the model's
    config (`train_config.json` records it).

    Args:
        model: a built `keras.Model`.
        l2: float >= 0. 0 leaves the model unchanged.

    Returns:
        The number of tables regularised.
    """
    if not isinstance(l2, (int, float)) or l2 < 0:
        raise ValueError(f"embedding_l2 must be >= 0. Received: embedding_l2={l2!r}")
    if not l2:
        return 0
    tables = embedding_tables(model)
    if not tables:
        raise ValueError(
            f"embedding_l2 needs embedding tables; {type(model).__name__} has "
            f"none. Received: embedding_l2={l2}"
        )
    for table in tables:
        table.regularizer = keras.regularizers.L2(l2)
    return len(tables)
