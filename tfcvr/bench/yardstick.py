"""The yardstick of `tfcvr bench train --against yardstick`: a bare
functional Keras ESMM, the least a hand-written model of the benchmark's
shape does.

One shared embedding table with per-field row offsets (one gather per
batch), two towers, `pCTCVR = pCTR * pCVR`, Keras' compiled binary
cross-entropy on `ctr` and `ctcvr`, and no training-time metrics. It
imports nothing that imports TensorFlow, so it runs under JAX as well.
"""

import keras
import numpy as np
from keras import ops

from tfcvr.features import keys

INPUT_KINDS = ("matrix", "dict")


def yardstick_esmm(input_dims, field_names=None, embedding_dim=16,
                   hidden_units=(256, 128), inputs="matrix"):
    """A compiled-ready functional Keras ESMM.

    Args:
        input_dims: list of int. Rows of each field's vocabulary, in field
            order; field f's index x reads row `offset_f + x` of the table.
        field_names: list of str or None. Input names when `inputs="dict"`.
        embedding_dim: int. Defaults to 16.
        hidden_units: list of int. Each tower's widths. Defaults to
            `[256, 128]`.
        inputs: str. `"matrix"`: one `(batch, num_fields)` int32 input;
            `"dict"`: one `(batch,)` int32 input per field, stacked inside
            the model (what a model fed `tfcvr.data` dicts does).

    Outputs: dict with `ctr` and `ctcvr`, each `(batch, 1)` float32.
    """
    if inputs not in INPUT_KINDS:
        raise ValueError(
            f"inputs must be one of {list(INPUT_KINDS)}. Received: "
            f"inputs={inputs!r}"
        )
    input_dims = [int(d) for d in input_dims]
    offsets = np.cumsum([0, *input_dims[:-1]]).astype("int32")
    if inputs == "matrix":
        model_inputs = keras.Input((len(input_dims),), dtype="int32",
                                   name="ids")
        ids = model_inputs
    else:
        names = list(field_names or [f"f{i}" for i in range(len(input_dims))])
        model_inputs = {
            name: keras.Input((), dtype="int32", name=name) for name in names
        }
        ids = ops.stack([model_inputs[name] for name in names], axis=1)
    rows = ops.add(ids, offsets)
    embedded = keras.layers.Embedding(sum(input_dims), embedding_dim,
                                      name="table")(rows)
    x = keras.layers.Flatten()(embedded)
    probs = {}
    for task in (keys.CTR, keys.CVR):
        h = x
        for i, units in enumerate(hidden_units):
            h = keras.layers.Dense(units, activation="relu",
                                   name=f"{task}_dense_{i}")(h)
        logit = keras.layers.Dense(1, dtype="float32", name=f"{task}_logit")(h)
        probs[task] = keras.layers.Activation(
            "sigmoid", dtype="float32", name=task)(logit)
    ctcvr = keras.layers.Multiply(dtype="float32", name=keys.CTCVR)(
        [probs[keys.CTR], probs[keys.CVR]]
    )
    return keras.Model(model_inputs, {keys.CTR: probs[keys.CTR],
                                      keys.CTCVR: ctcvr}, name="yardstick")


def compile_yardstick(model, learning_rate=1e-3, steps_per_execution=1):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss={keys.CTR: "binary_crossentropy",
              keys.CTCVR: "binary_crossentropy"},
        steps_per_execution=steps_per_execution,
    )
    return model


def yardstick_arrays(features, labels, field_names, inputs="matrix"):
    """`(x, y)` numpy for the yardstick from tfcvr's encoded dicts."""
    if inputs == "matrix":
        x = np.stack([np.asarray(features[n], "int32") for n in field_names],
                     axis=1)
    else:
        x = {n: np.asarray(features[n], "int32") for n in field_names}
    click = np.asarray(labels[keys.CLICK], "float32")
    conversion = np.asarray(labels[keys.CONVERSION], "float32")
    return x, {keys.CTR: click, keys.CTCVR: click * conversion}
