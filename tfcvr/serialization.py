"""The one registration of tfcvr's Keras objects for `.keras` saving."""

import keras

# Serialized names are `tfcvr>ClassName`: saved files depend on both parts.
PACKAGE = "tfcvr"


def register_serializable(cls):
    """Class decorator: registers a layer or loss for `.keras` saving as
    `tfcvr>ClassName`. Estimators and backbones get it from
    `register_estimator` and `register_backbone`."""
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)
