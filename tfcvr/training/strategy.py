import json
import os

import keras
import tensorflow as tf

from tfcvr.training.multi_worker_strategy import MultiWorkerStrategy

STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "data_parallel")


def get_strategy(name="auto"):
    """A `tf.distribute` strategy by name (TensorFlow backend).

    `auto`: `MirroredStrategy` over the host's GPUs when there are several,
    else the default strategy. `mirrored`: `MirroredStrategy` (GPUs of one
    host, or the CPU). `multi_worker`: `MultiWorkerMirroredStrategy` from
    `TF_CONFIG`. `data_parallel` is the JAX backend's
    `keras.distribution.DataParallel`; it is set globally and the default
    strategy is returned.
    """
    if name not in STRATEGIES:
        raise ValueError(
            f"Unknown strategy. Expected one of {list(STRATEGIES)}. "
            f"Received: strategy={name!r}"
        )
    backend = keras.backend.backend()
    if name == "data_parallel":
        if backend != "jax":
            raise ValueError(
                "strategy='data_parallel' needs KERAS_BACKEND=jax; on "
                "TensorFlow use 'mirrored' or 'multi_worker'."
            )
        keras.distribution.set_distribution(keras.distribution.DataParallel())
        return tf.distribute.get_strategy()
    if backend != "tensorflow" and name != "default" and name != "auto":
        raise ValueError(
            f"strategy={name!r} needs the TensorFlow backend. Received "
            f"backend: {backend}"
        )
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("strategy='multi_worker' needs TF_CONFIG set.")
        json.loads(os.environ["TF_CONFIG"])
        return MultiWorkerStrategy()
    if name == "auto" and backend == "tensorflow":
        if len(tf.config.list_physical_devices("GPU")) > 1:
            return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()
