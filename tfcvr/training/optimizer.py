# `tfcvr train --optimizer`: the first is the default. This module imports
# Keras only in `make_optimizer`, so the CLI can list the choices.
OPTIMIZERS = ("adam", "lazy_adam", "keras_adam")


def make_optimizer(learning_rate=1e-3, weight_decay=0.0, optimizer="adam"):
    """The training optimizer, AdamW-style when `weight_decay > 0`.

    Decoupled weight decay shrinks every trainable variable by
    `lr * weight_decay * w` per step, apart from the Adam update
    (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR
    2019), so the decay does not shrink with the gradient scale as an L2
    term under Adam does.

    Args:
        learning_rate: float > 0.
        weight_decay: float >= 0. Decoupled decay coefficient.
        optimizer: str. `"adam"` (the default: `FusedAdam`, Keras' Adam
            in one fused kernel per variable), `"lazy_adam"` (`FusedAdam`
            with `lazy_tables=True`: embedding rows a batch does not read
            keep their weights and moments) or `"keras_adam"` (Keras' own
            Adam/AdamW: the same numbers as `"adam"`, op by op).

    Returns:
        A `keras.optimizers.Optimizer`.
    """
    import keras

    from tfcvr.models.fused_adam import FusedAdam

    check_optimizer_settings(learning_rate, weight_decay, optimizer)
    if optimizer == "keras_adam":
        if weight_decay > 0:
            return keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
        return keras.optimizers.Adam(learning_rate)
    return FusedAdam(learning_rate, weight_decay=weight_decay or None,
                     lazy_tables=optimizer == "lazy_adam")


def check_optimizer_settings(learning_rate, weight_decay, optimizer="adam"):
    """Raises a one-line ValueError for a setting `make_optimizer` refuses,
    without building an optimizer (which would start TensorFlow's context,
    too early for a multi-worker strategy)."""
    if not isinstance(learning_rate, (int, float)) or learning_rate <= 0:
        raise ValueError(
            f"learning_rate must be > 0. Received: learning_rate={learning_rate!r}"
        )
    if not isinstance(weight_decay, (int, float)) or weight_decay < 0:
        raise ValueError(
            f"weight_decay must be >= 0. Received: weight_decay={weight_decay!r}"
        )
    if optimizer not in OPTIMIZERS:
        raise ValueError(
            f"optimizer must be one of {list(OPTIMIZERS)}. Received: "
            f"optimizer={optimizer!r}"
        )
