import importlib

import pytest

from tfcvr.cli.bench import SUITES
from tfcvr.cli.bench import split_suite


def test_suite_is_the_first_argument_and_the_grid_by_default():
    assert split_suite(["train", "--rows", "8"]) == ("train", ["--rows", "8"])
    assert split_suite(["serve"]) == ("serve", [])
    assert split_suite(["--preset", "smoke"]) == ("grid", ["--preset", "smoke"])
    assert split_suite([]) == ("grid", [])
    with pytest.raises(ValueError, match="Unknown benchmark suite 'nope'"):
        split_suite(["nope", "--preset", "smoke"])


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_every_suite_is_a_command_module(suite):
    module = importlib.import_module(SUITES[suite])
    assert callable(module.add_arguments) and callable(module.run)
    assert module.__doc__.strip()
