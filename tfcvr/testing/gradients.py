"""Gradients of a scalar function on the current Keras backend's own
machinery, so stop-gradient checks run under TensorFlow and JAX alike."""

import keras
import numpy as np


def backend_gradients(fn, *arrays):
    """`[d fn / d a for a in arrays]` as float64 numpy arrays.

    Args:
        fn: callable. Takes one backend tensor per array, returns a scalar
            built with `keras.ops`.
        *arrays: numpy arrays, the points at which to differentiate.

    An argument `fn` does not depend on (e.g. one that only reaches it
    through `stop_gradient`) gets an all-zero gradient on every backend.
    """
    return backend_value_and_gradients(fn, *arrays)[1]


def backend_value_and_gradients(fn, *arrays):
    """`(fn(*arrays), backend_gradients(fn, *arrays))`, the value as a
    float64 numpy scalar, from one evaluation of `fn`."""
    backend = keras.backend.backend()
    values = [np.asarray(a, "float32") for a in arrays]
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(v) for v in values]
        with tf.GradientTape() as tape:
            for tensor in tensors:
                tape.watch(tensor)
            result = fn(*tensors)
        grads = tape.gradient(
            result, tensors,
            unconnected_gradients=tf.UnconnectedGradients.ZERO,
        )
        return (np.asarray(result, "float64"),
                [np.asarray(g, "float64") for g in grads])
    if backend == "jax":
        import jax

        result, grads = jax.value_and_grad(
            fn, argnums=tuple(range(len(values))))(*values)
        return (np.asarray(result, "float64"),
                [np.asarray(g, "float64") for g in grads])
    raise ValueError(
        f"backend_gradients supports the tensorflow and jax backends. Received: "
        f"backend={backend!r}"
    )
