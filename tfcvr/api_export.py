import keras


def tfcvr_export(path):
    """Registers a Keras object for `.keras` saving under package `tfcvr`.

    `path` is the public import path (e.g. `"tfcvr.models.ESMM"`); the
    class's serialized name is its class name within package `tfcvr`.
    """

    def decorator(cls):
        cls._tfcvr_public_path = path
        return keras.saving.register_keras_serializable(package="tfcvr")(cls)

    return decorator
