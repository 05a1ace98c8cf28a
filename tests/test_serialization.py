import keras

from tfcvr.serialization import register_serializable
from tfcvr.serialization import subclass_config
from tfcvr.testing import TestCase


class Base:
    def __init__(self, size=1):
        self.size = size


class Child(Base):
    def __init__(self, depth=2, *args, **kwargs):
        super().__init__(**kwargs)
        self.depth = depth


class GrandChild(Child):
    def __init__(self, width=3, depth=4, **kwargs):
        super().__init__(depth=depth, **kwargs)
        self.width = width


class Forgetful(Child):
    def __init__(self, colour="red", **kwargs):
        super().__init__(**kwargs)


class SerializationTest(TestCase):
    def test_subclass_config_reads_every_subclass_argument(self):
        self.assertEqual(subclass_config(GrandChild(width=5), Base),
                         {"depth": 4, "width": 5})
        self.assertEqual(subclass_config(Child(), Base, exclude=("depth",)),
                         {})
        self.assertEqual(subclass_config(Base(), Base), {})

    def test_an_unstored_argument_is_an_error(self):
        with self.assertRaisesRegex(TypeError, "`colour` as `self.colour`"):
            subclass_config(Forgetful(), Base)

    def test_registered_name_is_the_package_and_the_class(self):
        @register_serializable
        class Doubler(keras.layers.Layer):
            def call(self, x):
                return 2 * x

        self.assertEqual(keras.saving.get_registered_name(Doubler),
                         "tfcvr>Doubler")
        self.assertIs(keras.saving.get_registered_object("tfcvr>Doubler"),
                      Doubler)
