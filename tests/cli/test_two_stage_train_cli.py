"""`tfcvr train --model cstwa`: both stages in one command, the reuse of a
trained CTR model, and the trained model's graphs through export, `--check`
and the REST server."""

import contextlib
import io
import json
import os
import shutil
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfcvr.cli.main import main
from tfcvr.export.check_saved_model import keras_reference
from tfcvr.export.sample_rows import synthetic_rows
from tfcvr.features import keys
from tfcvr.layers.graph import TopKNeighbourGraph
from tfcvr.serving import TFServingClient
from tfcvr.serving.model_repository import ModelRepository
from tfcvr.serving.rest_server import RestServer
from tfcvr.testing.tiny_model import write_tiny_dataset_dir
from tfcvr.training.model_dir import load_model_dir
from tfcvr.training.pretraining import STAGE_DIR

TINY = ["--param", "embedding_dim=4", "--param",
        "backbone_config.hidden_units=[8]", "--param",
        "graph_num_neighbours=4", "--batch-size", "64", "--no-validation"]


def _train(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["train", *argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def two_stage(tmp_path_factory):
    root = tmp_path_factory.mktemp("two_stage")
    data = write_tiny_dataset_dir(os.path.join(root, "data"))
    model_dir = os.path.join(root, "cstwa")
    code, out, err = _train("--data", data, "--model", "cstwa",
                            "--model-dir", model_dir, *TINY)
    assert code == 0, err[-3000:]
    return root, data, model_dir, out


def _graphs(model):
    return {name: (p.neighbour_indices.numpy(), p.neighbour_weights.numpy())
            for name, p in model.propagations.items()}


def test_both_stages_run_and_the_graph_comes_from_the_ctr_model(two_stage):
    _, _, model_dir, out = two_stage
    first = out.index("stage 1/2: training the ctr model (esmm")
    assert first < out.index("stage 2/2: training cstwa")
    stage_dir = os.path.join(model_dir, STAGE_DIR)
    ctr_model, _ = load_model_dir(stage_dir)
    assert ctr_model.ctcvr_weight == 0.0  # a plain CTR model
    model, _ = load_model_dir(model_dir)
    graphs = _graphs(model)
    assert set(graphs) == {"user", "item"}
    for name, (indices, weights) in graphs.items():
        spec = model.schema[name]
        table = keras.ops.convert_to_numpy(
            ctr_model.embedding.table(spec.embedding_group or name))
        mask = np.arange(spec.input_dim) >= 1 + spec.num_oov
        expected = TopKNeighbourGraph(4)(table, mask)
        np.testing.assert_array_equal(indices, expected[0].numpy())
        np.testing.assert_allclose(weights, expected[1].numpy(), atol=1e-7)
        assert weights[mask].sum() > 0
    with open(os.path.join(model_dir, "history.json")) as f:
        record = json.load(f)["pretraining"]
    assert record["model"] == "esmm" and record["tables"] == ["user", "item"]
    assert record["seconds"] > 0


def test_ctr_model_dir_is_reused(two_stage, tmp_path):
    _, data, model_dir, _ = two_stage
    reused = str(tmp_path / "reused")
    code, out, err = _train(
        "--data", data, "--model", "cstwa", "--model-dir", reused, *TINY,
        "--param", f"ctr_model_dir={os.path.join(model_dir, STAGE_DIR)}")
    assert code == 0, err[-3000:]
    assert "stage 1/2: reusing the ctr model" in out
    assert "stage 1/2: training" not in out
    assert not os.path.exists(os.path.join(reused, STAGE_DIR))
    first = _graphs(load_model_dir(model_dir)[0])
    again = _graphs(load_model_dir(reused)[0])
    for name in first:
        np.testing.assert_array_equal(first[name][0], again[name][0])
    with open(os.path.join(reused, "train_config.json")) as f:
        assert "ctr_model_dir" in json.load(f)["params"]


def test_a_ctr_model_of_another_vocabulary_is_refused(two_stage, tmp_path):
    _, data, model_dir, _ = two_stage
    other = str(tmp_path / "other_ctr")
    shutil.copytree(os.path.join(model_dir, STAGE_DIR), other)
    path = os.path.join(other, keys.VOCAB_DIR, "item.txt")
    with open(path) as f:
        tokens = f.read().splitlines()
    with open(path, "w") as f:
        f.write("\n".join(reversed(tokens)) + "\n")
    code, out, err = _train("--data", data, "--model", "cstwa", *TINY,
                            "--model-dir", str(tmp_path / "refused"),
                            "--param", f"ctr_model_dir={other}")
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert len(err.strip().splitlines()) == 1, err
    assert other in line and data in line and "vocabulary of `item`" in line
    assert "stage 2/2" not in out


# Export, check and a REST server in one (about 25 s): `make test-large`.
@pytest.mark.large
def test_export_check_and_serve_carry_the_graph(two_stage, capsys):
    root, _, model_dir, _ = two_stage
    out = os.path.join(root, "saved_models", "cstwa")
    code = main(["export", "--model-dir", model_dir, "--out", out, "--check",
                 "--check-rows", "16"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "Check passed" in printed
    model, _ = load_model_dir(model_dir)
    graphs = _graphs(model)
    # The SavedModel holds the graphs itself (no CTR model beside it).
    saved = [v.numpy() for v in tf.saved_model.load(
        os.path.join(out, "1")).model_variables]
    for name, (indices, weights) in graphs.items():
        for array in (indices, weights):
            assert any(v.shape == array.shape and np.array_equal(v, array)
                       for v in saved), f"the {name} graph is not saved"

    repository = ModelRepository(os.path.dirname(out))
    server = RestServer(repository, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = TFServingClient(server.url)
        rows = synthetic_rows(model.schema, model_dir, 8, seed=2,
                              keep_present=("item",))
        expected = keras_reference(model, rows, model_dir)
        predictions = client.predict("cstwa", instances=rows)
        for name in keys.SERVING_OUTPUTS:
            np.testing.assert_allclose([p[name] for p in predictions],
                                       expected[name], atol=1e-5)
    finally:
        server.stop()
        server.server_close()
        thread.join(timeout=10)
