import os

import pytest

from tfcvr.export.model_config import MODEL_CONFIG_FILE
from tfcvr.export.model_config import read_model_config
from tfcvr.export.model_config import update_model_config

EXISTING = """
model_config_list {
  config {
    name: "zeta"
    base_path: "/models/zeta"
    model_platform: "tensorflow"
    model_version_policy { all {} }
  }
  config {
    name: "alpha"
    base_path: "/elsewhere/alpha"
    model_platform: "tensorflow"
  }
}
"""


def _entries(path):
    config = read_model_config(path)
    return [(c.name, c.base_path, c.model_platform)
            for c in config.model_config_list.config]


def test_new_file_has_one_entry(tmp_path):
    path = update_model_config(str(tmp_path), "esmm")
    assert path == os.path.join(str(tmp_path), MODEL_CONFIG_FILE)
    assert _entries(path) == [("esmm", "/models/esmm", "tensorflow")]
    text = open(path).read()
    assert text.startswith("model_config_list {")
    assert 'name: "esmm"' in text and 'base_path: "/models/esmm"' in text
    assert 'model_platform: "tensorflow"' in text


def test_existing_entries_kept_sorted_and_idempotent(tmp_path):
    path = tmp_path / MODEL_CONFIG_FILE
    path.write_text(EXISTING)
    update_model_config(str(tmp_path), "esmm", base_path="/models/esmm")
    assert _entries(str(path)) == [
        ("alpha", "/elsewhere/alpha", "tensorflow"),
        ("esmm", "/models/esmm", "tensorflow"),
        ("zeta", "/models/zeta", "tensorflow"),
    ]
    # Fields tfcvr does not manage survive.
    zeta = read_model_config(str(path)).model_config_list.config[2]
    assert zeta.model_version_policy.HasField("all")
    first = path.read_text()
    update_model_config(str(tmp_path), "esmm", base_path="/models/esmm")
    assert path.read_text() == first
    update_model_config(str(tmp_path), "alpha", base_path="/models/alpha")
    assert _entries(str(path))[0] == ("alpha", "/models/alpha", "tensorflow")
    assert len(_entries(str(path))) == 3


def test_invalid_file_is_a_one_line_error(tmp_path):
    (tmp_path / MODEL_CONFIG_FILE).write_text("model_config_list { oops")
    with pytest.raises(ValueError, match="not a valid TF Serving model config"):
        update_model_config(str(tmp_path), "esmm")


@pytest.mark.parametrize("name", ["", "a/b", None])
def test_bad_names(tmp_path, name):
    with pytest.raises(ValueError, match="model name"):
        update_model_config(str(tmp_path), name)
