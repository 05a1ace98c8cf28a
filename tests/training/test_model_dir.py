import io
import os
import shutil
import zipfile

import pytest

from tfcvr.training.model_dir import MODEL_FILE
from tfcvr.training.model_dir import load_model_dir


def _rewrite_archive(path, change):
    """The .keras zip at `path` with `change(name, data)` applied to every
    member (None drops the member)."""
    with zipfile.ZipFile(path) as archive:
        members = [(n, archive.read(n)) for n in archive.namelist()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            data = change(name, data)
            if data is not None:
                archive.writestr(name, data)
    with open(path, "wb") as f:
        f.write(buffer.getvalue())


def _truncate(path):
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


def _random(path):
    with open(path, "wb") as f:
        f.write(os.urandom(4096))


def _empty(path):
    open(path, "wb").close()


def _no_config(path):
    _rewrite_archive(path, lambda n, d: None if n == "config.json" else d)


def _bad_config(path):
    _rewrite_archive(path, lambda n, d: b"{not json" if n == "config.json"
                     else d)


def _truncated_weights(path):
    _rewrite_archive(path, lambda n, d: d[:100] if n.endswith(".h5") else d)


@pytest.mark.parametrize("damage", [_truncate, _random, _empty, _no_config,
                                    _bad_config, _truncated_weights])
def test_a_corrupt_model_file_is_named_corrupt(trained, tmp_path, damage):
    _, model_dir, _ = trained
    copy = str(tmp_path / "model")
    shutil.copytree(model_dir, copy)
    path = os.path.join(copy, MODEL_FILE)
    damage(path)
    with pytest.raises(ValueError) as info:
        load_model_dir(copy)
    message = str(info.value)
    assert message.startswith(f"{path} is corrupt")
    assert "File not found" not in message
    assert "\n" not in message


def test_the_intact_model_file_loads(trained):
    _, model_dir, model = trained
    loaded, vocab_dir = load_model_dir(model_dir)
    assert vocab_dir == model_dir
    assert loaded.get_config() == model.get_config()


def test_missing_model_directory_or_file(trained, tmp_path):
    with pytest.raises(ValueError, match="Model directory not found"):
        load_model_dir(str(tmp_path / "nope"))
    os.makedirs(tmp_path / "empty")
    with pytest.raises(ValueError, match=f"has no {MODEL_FILE}"):
        load_model_dir(str(tmp_path / "empty"))
