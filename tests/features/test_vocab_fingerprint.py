import os
import shutil

import pytest

from tfcvr.features import FeatureSpec
from tfcvr.features import Schema
from tfcvr.features import keys
from tfcvr.features import vocab_fingerprint as vf


def _write_dir(path, city=("paris", "lyon"), price_mean=3.0, order=1,
               metadata=None):
    """A dataset-like directory: schema.json and vocab/ only."""
    os.makedirs(os.path.join(path, keys.VOCAB_DIR), exist_ok=True)
    with open(os.path.join(path, keys.VOCAB_DIR, "city.txt"), "w") as f:
        f.write("".join(t + "\n" for t in city))
    with open(os.path.join(path, keys.VOCAB_DIR, "item.txt"), "w") as f:
        f.write("7\n3\n")
    features = [
        FeatureSpec("city", keys.CATEGORICAL_STRING, vocab_size=len(city),
                    vocab_file="vocab/city.txt"),
        FeatureSpec("item", keys.CATEGORICAL_INT, vocab_size=2,
                    vocab_file="vocab/item.txt", embedding_group="item"),
        FeatureSpec("device", keys.CATEGORICAL_STRING, hash_buckets=8),
        FeatureSpec("price", keys.NUMERIC, mean=price_mean, std=2.0),
    ][::order]
    Schema(features=features, item_id="item",
           metadata=metadata or {}).save(path)
    return str(path)


def test_fingerprint_depends_on_the_encoding_only(tmp_path):
    base = _write_dir(tmp_path / "a")
    same = _write_dir(tmp_path / "b", order=-1, metadata={"rows": 5})
    assert vf.directory_fingerprint(base) == vf.directory_fingerprint(same)
    assert vf.check_same_vocabulary(base, same) == vf.directory_fingerprint(base)
    for changed in (
        _write_dir(tmp_path / "c", city=("lyon", "paris")),  # token order
        _write_dir(tmp_path / "d", price_mean=3.5),
    ):
        assert vf.directory_fingerprint(changed) != vf.directory_fingerprint(base)


def test_check_names_both_directories_and_what_differs(tmp_path):
    model = _write_dir(tmp_path / "model")
    data = _write_dir(tmp_path / "data", city=("paris", "nice", "lyon"),
                      price_mean=1.0)
    with pytest.raises(ValueError) as info:
        vf.check_same_vocabulary(model, data)
    message = str(info.value)
    assert "\n" not in message
    assert model in message and data in message
    differs = message.split("differs: ")[1].split("). Preprocess")[0]
    assert differs == "city (vocab_size, vocabulary); price (mean)"
    assert "--vocab-from" in message


def test_a_hand_edited_vocabulary_is_caught_despite_a_record(tmp_path):
    model = _write_dir(tmp_path / "model")
    data = str(tmp_path / "data")
    shutil.copytree(model, data)
    schema = Schema.load(data)
    recorded = vf.directory_fingerprint(data)
    schema.replace(metadata={vf.METADATA_KEY: recorded}).save(data)
    assert vf.recorded_fingerprint(data) == recorded
    assert vf.recorded_fingerprint(model) is None  # written before records
    with open(os.path.join(data, "vocab", "item.txt"), "w") as f:
        f.write("3\n7\n")  # same size, other order: other indices
    with pytest.raises(ValueError, match=r"item \(vocabulary\)"):
        vf.check_same_vocabulary(model, data)


def test_missing_features_and_vocabulary_files(tmp_path):
    model = _write_dir(tmp_path / "model")
    data = str(tmp_path / "data")
    shutil.copytree(model, data)
    schema = Schema.load(data)
    schema.replace(features=schema.features[:3]).save(data)
    with pytest.raises(ValueError, match=rf"price \(only in {model}\)"):
        vf.check_same_vocabulary(model, data)
    os.remove(os.path.join(data, "vocab", "city.txt"))
    with pytest.raises(ValueError, match="Vocabulary file not found"):
        vf.directory_fingerprint(data)
