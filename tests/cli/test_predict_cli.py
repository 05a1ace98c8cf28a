import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from beam_jobs.readers import dead_letter as dl
from tfcvr.cli.main import main
from tfcvr.export.raw_log import open_log
from tfcvr.features import keys
from tfcvr.features.input_spec import SPEC_FILE
from tfcvr.features.input_spec import InputSpec

OUTPUTS = list(keys.SERVING_OUTPUTS)
# Rejected by the readers whatever the labels: bad values, bad lines.
FEATURE_DEAD_LETTERS = {dl.BAD_NUMERIC: 1, dl.BAD_CATEGORICAL: 1,
                        dl.WRONG_FIELD_COUNT: 1}


def _good_rows(held_out):
    spec = InputSpec.load(os.path.join(held_out.model_dir, SPEC_FILE))
    reader = open_log(held_out.test_log, "csv", spec)
    return [row for row, _ in reader.read_local() if row is not None]


def test_one_prediction_per_good_row_equal_to_serving_default(
    held_out, held_out_export, serving_default, tmp_path, capsys
):
    out = str(tmp_path / "scores.csv")
    code = main(["predict", "--model-dir", held_out.model_dir, "--input",
                 held_out.test_log, "--format", "csv", "--out", out,
                 "--batch-size", "32"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    rows_in = len(held_out.frame) + len(held_out.bad) + 1
    good = rows_in - sum(FEATURE_DEAD_LETTERS.values())
    assert (f"{rows_in:,} rows in, {good:,} predicted, 3 rejected "
            f"(bad_categorical 1, bad_numeric 1, wrong_field_count 1)") in printed
    scores = pd.read_csv(out)
    assert list(scores.columns) == [keys.ROW_ID] + OUTPUTS
    # Labels are not needed to score: the click=2 row is predicted; the
    # row without an item id takes the training default.
    expected_ids = list(range(len(held_out.frame))) + [10_002, 10_003]
    assert scores[keys.ROW_ID].tolist() == expected_ids
    rejected = [json.loads(line) for line in open(tmp_path / "scores.rejected.jsonl")]
    assert {r["reason"]: 1 for r in rejected} == FEATURE_DEAD_LETTERS
    assert sorted(r["raw"].split(",")[0] for r in rejected[:2]) == ["10000", "10001"]

    rows = _good_rows(held_out)
    assert [int(r["__key__"]) for r in rows] == expected_ids
    # The SavedModel requires the item id (its serving contract).
    served = [i for i, r in enumerate(rows) if r["item_id"] is not None]
    reference = serving_default(
        held_out_export, [rows[i] for i in served], held_out.model.schema
    )
    for name in OUTPUTS:
        np.testing.assert_allclose(
            scores[name].to_numpy()[served], reference[name], atol=1e-6, rtol=0
        )
    assert np.ptp(scores[keys.CVR]) > 1e-3  # not a constant: the check can fail


def test_saved_model_source_keeps_its_serving_contract(
    held_out, held_out_export, serving_default, tmp_path, capsys
):
    out = str(tmp_path / "scores.parquet")
    model_base = os.path.dirname(held_out_export)  # the latest version is used
    code = main(["predict", "--saved-model", model_base, "--input",
                 held_out.test_log, "--format", "csv", "--out", out,
                 "--id-column", "user_id", "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "4 rejected" in printed and "missing_required_feature 1" in printed
    scores = pd.read_parquet(out)
    assert list(scores.columns) == ["user_id"] + OUTPUTS
    assert all(isinstance(v, str) for v in scores["user_id"])  # passed as text
    assert all(scores[n].dtype == np.float32 for n in OUTPUTS)
    rows = [r for r in _good_rows(held_out) if r["item_id"] is not None]
    assert len(scores) == len(rows)
    assert scores["user_id"].tolist() == [str(r["user_id"]) for r in rows]
    reference = serving_default(held_out_export, rows, held_out.model.schema)
    for name in OUTPUTS:
        np.testing.assert_allclose(scores[name], reference[name], atol=1e-6, rtol=0)


def test_auxiliary_heads_on_request_as_jsonl(held_out, tmp_path, capsys):
    out = tmp_path / "aux.jsonl"
    code = main(["predict", "--model-dir", held_out.model_dir, "--input",
                 held_out.test_log, "--format", "csv", "--out", str(out),
                 "--include-auxiliary", "--rejected", str(tmp_path / "bad.jsonl")])
    assert code == 0, capsys.readouterr()
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert set(lines[0]) >= {keys.ROW_ID, *OUTPUTS}
    assert len((tmp_path / "bad.jsonl").read_text().splitlines()) == 3


@pytest.mark.parametrize("change, message", [
    ("no_spec", "No input spec"),
    ("bad_out", "--out must end with"),
    ("other_spec", "user_id (kind, value_dtype)"),
    ("missing_column", "does not have: ['nope']"),
])
def test_user_errors_are_one_line(held_out, tmp_path, capsys, change, message):
    model_dir, out, extra = held_out.model_dir, str(tmp_path / "p.csv"), []
    if change == "no_spec":
        model_dir = str(tmp_path / "model")
        shutil.copytree(held_out.model_dir, model_dir)
        os.remove(os.path.join(model_dir, SPEC_FILE))
    elif change == "bad_out":
        out = str(tmp_path / "p.txt")
    elif change == "other_spec":
        spec = json.loads(open(os.path.join(model_dir, SPEC_FILE)).read())
        spec["columns"]["user_id"] = {"kind": "categorical_string"}
        (tmp_path / "spec.json").write_text(json.dumps(spec))
        extra = ["--spec", str(tmp_path / "spec.json")]
    else:
        extra = ["--id-column", "nope"]
    code = main(["predict", "--model-dir", model_dir, "--input",
                 held_out.test_log, "--format", "csv", "--out", out, *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err[-1].startswith("tfcvr predict: error: ") and message in err[-1]
