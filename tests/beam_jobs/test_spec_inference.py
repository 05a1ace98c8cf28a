import numpy as np
import pandas as pd
import pytest

from beam_jobs import preprocess
from beam_jobs.example_logs import impression_frame
from beam_jobs.spec_inference import infer_spec
from tfcvr.features import keys


def test_infers_every_kind_from_example_logs(tmp_path):
    impression_frame(rows=400).to_csv(tmp_path / "log.csv", index=False)
    spec, notes = infer_spec(str(tmp_path / "log.csv"))
    assert spec.labels == {keys.CLICK: "click", keys.CONVERSION: "conversion"}
    assert spec.extra_columns == (
        keys.ROW_ID, keys.TRUE_CTR, keys.TRUE_CVR, keys.CONVERSION_IF_CLICKED
    )
    assert spec.row_key == keys.ROW_ID and spec.timestamp == keys.TIMESTAMP
    assert (spec.user_id, spec.item_id) == ("user_id", "item_id")
    columns = spec.columns
    assert columns["user_id"]["kind"] == keys.CATEGORICAL_INT
    assert columns["city"]["kind"] == keys.CATEGORICAL_STRING
    assert columns["hist"] == {
        "kind": keys.MULTI_CATEGORICAL, "value_dtype": "int64", "max_len": 6,
        "separator": "|",
    }
    assert columns["tags"]["separator"] == ";"
    assert columns["tags"]["value_dtype"] == "string"
    assert columns["price"] == {"kind": keys.NUMERIC, "log": True}
    assert columns["age"] == {"kind": keys.NUMERIC}  # not skewed
    assert notes == []


def test_inferred_spec_preprocesses_its_file(tmp_path):
    impression_frame(rows=200).to_csv(tmp_path / "log.csv", index=False)
    spec, _ = infer_spec(str(tmp_path / "log.csv"))
    spec.save(str(tmp_path / "spec.json"))
    summary = preprocess.run_job([
        "--input", str(tmp_path / "log.csv"), "--format", "csv",
        "--out", str(tmp_path / "out"), "--quiet",
    ])
    assert summary["rows_rejected_total"] == 0
    assert sum(summary["rows_written"].values()) == 200


def test_jsonl_lists_float_ids_and_iso_times(tmp_path):
    rng = np.random.default_rng(0)
    n = 100
    frame = pd.DataFrame({
        "uid": rng.integers(0, 30, n).astype(float),
        "ad_id": rng.integers(0, 50, n),
        "labels_list": [[int(v) for v in rng.integers(0, 9, 3)] for _ in range(n)],
        "event_time": pd.date_range("2024-01-01", periods=n, freq="h").astype(str),
        "is_click": rng.integers(0, 2, n),
        "purchase": 0,
        "shares": rng.integers(0, 5, n),
    })
    frame.loc[3, "uid"] = np.nan
    frame.to_json(tmp_path / "log.jsonl", orient="records", lines=True)
    spec, _ = infer_spec(str(tmp_path / "log.jsonl"))
    assert spec.labels == {keys.CLICK: "is_click", keys.CONVERSION: "purchase"}
    assert spec.columns["uid"] == {"kind": keys.CATEGORICAL_INT}
    assert spec.columns["labels_list"]["kind"] == keys.MULTI_CATEGORICAL
    assert "separator" not in spec.columns["labels_list"]
    assert spec.timestamp == "event_time"
    assert (spec.user_id, spec.item_id) == ("uid", "ad_id")
    assert spec.columns["shares"] == {"kind": keys.CATEGORICAL_INT}


def test_comma_separated_strings_and_missing_labels(tmp_path):
    frame = pd.DataFrame({
        "genres": ["a,b", "b,c,d", "a", "c,d"] * 10,
        "click": [0, 1] * 20,
        "conversion": [0, 0, 0, 1] * 10,
    })
    frame.to_csv(tmp_path / "log.csv", index=False)
    spec, notes = infer_spec(str(tmp_path / "log.csv"))
    assert spec.columns["genres"]["separator"] == ","
    assert any("user id" in n for n in notes)
    frame.drop(columns=["conversion"]).to_csv(tmp_path / "nolabel.csv", index=False)
    with pytest.raises(ValueError, match="conversion label"):
        infer_spec(str(tmp_path / "nolabel.csv"))


def test_label_named_column_that_is_not_binary(tmp_path):
    pd.DataFrame({
        "click": [0, 1, 2, 0], "conversion": [0, 0, 0, 0], "x": [1, 2, 3, 4]
    }).to_csv(tmp_path / "log.csv", index=False)
    with pytest.raises(ValueError, match="click label"):
        infer_spec(str(tmp_path / "log.csv"))
