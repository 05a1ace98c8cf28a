import keras


def make_optimizer(learning_rate=1e-3, weight_decay=0.0):
    """Adam, or AdamW when `weight_decay > 0`.

    AdamW decays every trainable variable by `lr * weight_decay * w` per
    step, apart from the Adam update (Loshchilov & Hutter, "Decoupled
    Weight Decay Regularization", ICLR 2019), so the decay does not shrink
    with the gradient scale as an L2 term under Adam does.

    Args:
        learning_rate: float > 0.
        weight_decay: float >= 0. Decoupled decay coefficient.

    Returns:
        A `keras.optimizers.Optimizer`.
    """
    check_optimizer_settings(learning_rate, weight_decay)
    if weight_decay > 0:
        return keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
    return keras.optimizers.Adam(learning_rate)


def check_optimizer_settings(learning_rate, weight_decay):
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
