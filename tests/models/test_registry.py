import pytest

from tfcvr.models import build_estimator
from tfcvr.models.registry import estimator_arguments
from tfcvr.testing.synthetic import tiny_schema

# What get_config adds besides the constructor arguments (Keras's own).
KERAS_KEYS = {"name", "trainable", "dtype", "schema"}


@pytest.mark.parametrize("name", ["naive", "choruscvr", "ddpo"])
def test_estimator_arguments_are_what_get_config_lists(name):
    arguments = estimator_arguments(name)
    assert len(arguments) == len(set(arguments))
    assert "schema" not in arguments and "kwargs" not in arguments
    model = build_estimator(name, tiny_schema())
    assert set(model.get_config()) - KERAS_KEYS == set(arguments)


def test_estimator_arguments_of_cstwa_name_its_switches():
    arguments = estimator_arguments("cstwa")
    for name in ("use_structure_migrator", "use_click_perceptron", "use_curse_escaper",
                 "embedding_dim", "backbone_config"):
        assert name in arguments
    with pytest.raises(ValueError, match="Unknown model"):
        estimator_arguments("nope")
