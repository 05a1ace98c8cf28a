"""`train(validation_data=DIR)`: validates on another dataset directory
only when it encodes features with the training vocabulary."""

import os
import shutil

import pytest

from tfcvr.features import keys
from tfcvr.testing.tiny_model import write_tiny_dataset_dir
from tfcvr.training import train

TINY = {"embedding_dim": 4, "backbone_config": {"hidden_units": [8]}}


def test_validation_data_must_share_the_vocabulary_and_is_used(tmp_path):
    data = write_tiny_dataset_dir(str(tmp_path / "data"))
    other = write_tiny_dataset_dir(str(tmp_path / "other"), seed=5)
    with pytest.raises(ValueError, match="does not encode features with the vocabulary"):
        train(data, model="esmm", params=TINY, batch_size=64, verbose=0,
              validation_data=other)
    # Same vocabulary, no eval split (as `preprocess --split train` writes):
    # its train split validates.
    same = str(tmp_path / "same")
    shutil.copytree(data, same)
    shutil.rmtree(os.path.join(same, keys.EVAL_SPLIT))
    _, info = train(data, model="esmm", params=TINY, batch_size=64, verbose=0,
                    validation_data=same)
    assert "val_ctcvr_auc" in info["history"]
