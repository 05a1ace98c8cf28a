"""The preprocessing job end to end on the simulator's output, per format:
row accounting, TFRecords that parse with the written schema, ground truth
carried through, and ESMM training a step on the result."""

import numpy as np
import pandas as pd
import pytest

from beam_jobs import preprocess
from tfcvr.simulation import simulate
from tfcvr.data.dataset_dir import DatasetDir
from tfcvr.features import keys
from tfcvr.training import train

ROWS = 1_500
SIMULATION = {"ctr": 0.2, "cvr": 0.2, "num_users": 150, "num_items": 200, "seed": 3}


@pytest.mark.parametrize("fmt", ["csv", "parquet", "aliccp"])
def test_simulator_output_to_a_trained_step(tmp_path, fmt):
    logs = tmp_path / "logs"
    simulate(str(logs), rows=ROWS, fmt=fmt, **SIMULATION)
    out = tmp_path / "data"
    summary = preprocess.run_job(
        ["--input", str(logs), "--format", fmt, "--out", str(out), "--quiet"]
    )

    written = summary["rows_written"]
    assert summary["accounting_ok"]
    assert summary["rows_read"] == ROWS == written["train"] + written["eval"]
    assert summary["rows_rejected_total"] == 0
    assert summary["rows_read_counter"] == ROWS

    data = DatasetDir(str(out))
    schema = data.schema
    assert schema.has_ground_truth
    batches = list(data.dataset(keys.EVAL_SPLIT, batch_size=4096, include_extra=True))
    features, labels = batches[0][:2]
    assert len(labels[keys.CLICK]) == written["eval"]
    truth = np.asarray(labels[keys.TRUE_CVR])
    assert np.all((truth > 0) & (truth < 1))
    if fmt == "aliccp":
        # The joined truth is the simulator's, row by row: the eval split is
        # the test files, in sample-id order inside each shard.
        expected = pd.read_csv(logs / "ground_truth_test.csv")[keys.TRUE_CVR]
        assert sorted(np.round(truth, 5)) == pytest.approx(
            sorted(np.round(expected.to_numpy(np.float32), 5))
        )

    # Eager and without the validation pass: the claim is that each
    # format's output trains (tf.data reads it the same either way); on 3
    # batches tracing the train and test steps was a third of the test.
    _, info = train(str(out), model="esmm", epochs=1, batch_size=512, verbose=0,
                    params={"embedding_dim": 4}, validate=False, run_eagerly=True)
    losses = info["history"]["loss"]
    assert len(losses) == 1 and np.isfinite(losses[0]) and losses[0] > 0
