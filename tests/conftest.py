import os

import pytest

from tfcvr.testing.tiny_model import train_tiny_model
from tfcvr.testing.tiny_model import write_tiny_dataset_dir


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """(data_dir, model_dir, model): a tiny ESMM fitted for one epoch.

    Shared by every test that needs a trained model directory (export,
    serving, bench); they must not modify it.
    """
    root = tmp_path_factory.mktemp("trained")
    data_dir = write_tiny_dataset_dir(os.path.join(root, "data"))
    model_dir = os.path.join(root, "model")
    model = train_tiny_model(data_dir, model_dir, estimator="esmm")
    return data_dir, model_dir, model
