"""`tfcvr evaluate` on held-out data: the vocabulary trap, raw logs, MAR."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from beam_jobs import preprocess
from tfcvr.cli.main import main
from tfcvr.data import DatasetDir
from tfcvr.export.sample_rows import dataset_rows
from tfcvr.evaluation import metric_names as m
from tfcvr.features import keys


def _metrics(path):
    with open(path) as f:
        return json.load(f)


def _scalars(metrics):
    return {k: v for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)}


def test_a_dataset_with_its_own_vocabulary_is_refused(held_out, capsys):
    code = main(["evaluate", "--data", held_out.own, "--model-dir",
                 held_out.model_dir])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("tfcvr evaluate: error: ")
    assert held_out.own in err[-1] and held_out.model_dir in err[-1]
    assert "item_id (vocab_size, vocabulary)" in err[-1]


def test_vocab_from_dataset_raw_log_and_predict_give_the_same_scores(
    held_out, held_out_export, serving_default, tmp_path, capsys
):
    held = str(tmp_path / "held")
    summary = preprocess.run_job([
        "--input", held_out.test_log, "--format", "csv", "--out", held,
        "--vocab-from", held_out.model_dir, "--split", "eval", "--quiet",
    ])
    assert summary["rows_rejected"] == {
        "bad_categorical": 1, "bad_label": 1, "bad_numeric": 1,
        "wrong_field_count": 1,
    }
    assert summary["oov"]["hist"]["oov"] > 0

    assert main(["evaluate", "--data", held, "--model-dir", held_out.model_dir,
                 "--json", str(tmp_path / "data.json")]) == 0
    assert main(["evaluate", "--input", held_out.test_log, "--format", "csv",
                 "--model-dir", held_out.model_dir,
                 "--json", str(tmp_path / "log.json")]) == 0
    printed = capsys.readouterr().out
    rows_in = len(held_out.frame) + len(held_out.bad) + 1
    assert f"{rows_in:,} rows in, {rows_in - 4:,} evaluated, 4 rejected" in printed
    from_data = _scalars(_metrics(tmp_path / "data.json"))
    from_log = _scalars(_metrics(tmp_path / "log.json"))
    assert from_data.keys() == from_log.keys()
    assert m.CVR_AUC_TRUE in from_data  # ground truth travelled both ways
    for name, value in from_data.items():
        if name != m.NUM_BATCHES:
            assert from_log[name] == pytest.approx(value, abs=1e-6, nan_ok=True), name

    # Per row: the model on the --vocab-from dataset == `tfcvr predict` ==
    # the SavedModel's serving_default on the dataset's raw rows.
    assert main(["predict", "--model-dir", held_out.model_dir, "--input",
                 held_out.test_log, "--format", "csv",
                 "--out", str(tmp_path / "p.csv")]) == 0
    predicted = pd.read_csv(tmp_path / "p.csv").set_index(keys.ROW_ID)
    scores = {}
    for features, labels in DatasetDir(held).dataset(
        keys.EVAL_SPLIT, 64, include_extra=True
    ):
        outputs = held_out.model.predict_on_batch(features)
        for i, row_id in enumerate(labels[keys.ROW_ID].numpy().astype(int)):
            scores[row_id] = {k: float(outputs[k][i, 0]) for k in keys.SERVING_OUTPUTS}
    assert len(scores) == rows_in - 4
    for row_id, outputs in scores.items():
        for name, value in outputs.items():
            assert predicted.loc[row_id, name] == pytest.approx(value, abs=1e-6)
    rows = dataset_rows(held, held_out.model.schema, num_rows=len(scores))
    served = [i for i, r in enumerate(rows) if r["item_id"] is not None]
    reference = serving_default(
        held_out_export, [rows[i] for i in served], held_out.model.schema
    )
    in_order = list(scores.values())  # the split's order, as dataset_rows
    for name in keys.SERVING_OUTPUTS:
        np.testing.assert_allclose(
            [in_order[i][name] for i in served], reference[name], atol=1e-6,
            rtol=0,
        )


def test_a_randomised_test_log_is_scored_under_the_mar_protocol(
    held_out, tmp_path, capsys
):
    # Every impression's outcome observed: click = 1, conversion = outcome.
    mar = held_out.frame.copy()
    mar[keys.CLICK] = 1
    mar[keys.CONVERSION] = mar[keys.CONVERSION_IF_CLICKED]
    mar.to_csv(tmp_path / "mar.csv", index=False)
    code = main(["evaluate", "--input", str(tmp_path / "mar.csv"), "--format",
                 "csv", "--model-dir", held_out.model_dir,
                 "--json", str(tmp_path / "mar.json")])
    printed = capsys.readouterr().out
    assert code == 0
    assert "randomised test (MAR), every row has click = 1" in printed
    header = next(l for l in printed.splitlines() if l.startswith("| model"))
    assert m.CVR_AUC_MAR in header and m.CVR_AUC_CLICKED not in header
    metrics = _metrics(tmp_path / "mar.json")
    assert metrics[m.PROTOCOL] == m.PROTOCOL_MAR
    assert m.CVR_AUC_CLICKED not in metrics and m.CVR_AUC_EXPOSURE not in metrics

    assert main(["predict", "--model-dir", held_out.model_dir, "--input",
                 str(tmp_path / "mar.csv"), "--format", "csv",
                 "--out", str(tmp_path / "p.csv")]) == 0
    cvr = pd.read_csv(tmp_path / "p.csv").set_index(keys.ROW_ID)[keys.CVR]
    outcome = mar.set_index(keys.ROW_ID)[keys.CONVERSION]
    expected = roc_auc_score(outcome, cvr.loc[outcome.index])
    assert metrics[m.CVR_AUC_MAR] == pytest.approx(expected, abs=1e-9)
    # On simulated rows, the MAR AUC is the AUC against the true outcome.
    assert metrics[m.CVR_AUC_MAR] == pytest.approx(metrics[m.CVR_AUC_TRUE], abs=1e-12)

    assert main(["evaluate", "--input", str(tmp_path / "mar.csv"), "--format",
                 "csv", "--model-dir", held_out.model_dir, "--protocol",
                 "observational", "--json", str(tmp_path / "obs.json")]) == 0
    observational = _metrics(tmp_path / "obs.json")
    assert observational[m.PROTOCOL] == m.PROTOCOL_OBSERVATIONAL
    assert m.CVR_AUC_MAR not in observational
    assert isinstance(observational[m.CVR_AUC_CLICKED], float)
    # One click class: undefined, and said so (null in strict JSON).
    assert observational[m.CTR_AUC] is None
    assert m.CTR_AUC in observational[m.UNDEFINED_METRICS]


@pytest.mark.parametrize("argv, message", [
    (["--input", "{log}"], "--input needs --format"),
    (["--data", "{data}", "--format", "csv"], "--format goes with --input"),
])
def test_flag_errors_are_one_line(held_out, capsys, argv, message):
    argv = [a.format(log=held_out.test_log, data=held_out.data) for a in argv]
    code = main(["evaluate", "--model-dir", held_out.model_dir, *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and message in err[-1]
