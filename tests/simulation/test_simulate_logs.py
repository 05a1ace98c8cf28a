import json
import math
import os

import numpy as np
import pandas as pd
import pytest

from tfcvr.simulation import aliccp_writer as ali
from tfcvr.simulation import simulator as sim
from tfcvr.simulation import simulate
from tfcvr.simulation.simulation_config import SimulationConfig
from tfcvr.features import keys

SMALL = SimulationConfig(num_users=800, num_items=1200, calibration_rows=10_000)


def run(out_dir, rows=3000, **kwargs):
    kwargs.setdefault("config", SMALL)
    return simulate(str(out_dir), rows=rows, **kwargs)


def read_bytes(paths):
    return [open(p, "rb").read() for p in paths]


def test_csv_output_and_spec(tmp_path):
    result = run(tmp_path / "csv", rows=3000, seed=5)
    assert len(result["files"]) == 1
    frame = pd.read_csv(result["files"][0], keep_default_na=False)
    assert list(frame.columns) == list(sim.LOG_COLUMNS)
    assert len(frame) == 3000 == result["rows"]
    assert frame[keys.ROW_ID].tolist() == list(range(1, 3001))
    assert (frame.loc[frame[keys.CLICK] == 0, keys.CONVERSION] == 0).all()
    assert result["clicks"] == frame[keys.CLICK].sum()
    assert result["conversions"] == frame[keys.CONVERSION].sum()
    assert result["realised_ctr"] == pytest.approx(frame[keys.CLICK].mean())
    assert result["realised_cvr_all"] == pytest.approx(
        frame[keys.CONVERSION_IF_CLICKED].mean()
    )

    with open(result["spec"]) as f:
        spec = json.load(f)
    described = set(spec["columns"]) | set(spec["labels"].values())
    described |= set(spec["extra_columns"]) | {spec["timestamp"]}
    assert described == set(frame.columns)
    assert spec["row_key"] == keys.ROW_ID
    separator = spec["columns"][sim.HIST_CATEGORIES]["separator"]
    lists = frame[sim.HIST_CATEGORIES].astype(str).str.split(separator, regex=False)
    assert all(v.isdigit() for values in lists for v in values if v)

    with open(result["simulation"]) as f:
        record = json.load(f)
    assert record["config"]["seed"] == 5
    assert record["rows"] == 3000
    assert record["files"] == [os.path.basename(result["files"][0])]


def test_spec_loads_as_input_spec(tmp_path):
    input_spec = pytest.importorskip("tfcvr.features.input_spec")
    result = run(tmp_path, rows=200)
    spec = input_spec.InputSpec.load(result["spec"])
    assert spec.to_dict()["row_key"] == keys.ROW_ID


def test_parquet_matches_csv(tmp_path):
    csv = run(tmp_path / "csv", rows=2500)
    parquet = run(tmp_path / "parquet", rows=2500, fmt="parquet")
    a = pd.read_csv(csv["files"][0], keep_default_na=False)
    b = pd.read_parquet(parquet["files"][0])
    assert list(b.columns) == list(sim.LOG_COLUMNS)
    for column in sim.LOG_COLUMNS:
        if column in sim.FLOAT_COLUMNS:
            np.testing.assert_allclose(a[column], b[column], rtol=1e-6)
        else:
            assert a[column].astype(str).tolist() == b[column].astype(str).tolist()
    assert open(csv["spec"]).read() == open(parquet["spec"]).read()


def test_shards_split_the_same_rows(tmp_path):
    one = run(tmp_path / "one", rows=5000)
    three = run(tmp_path / "three", rows=5000, shards=3)
    assert [os.path.basename(p) for p in three["files"]] == [
        f"impressions-0000{i}-of-00003.csv" for i in range(3)
    ]
    assert three["rows_per_file"] == [1666, 1667, 1667]
    parts = [pd.read_csv(p, keep_default_na=False) for p in three["files"]]
    assert [len(p) for p in parts] == three["rows_per_file"]
    whole = pd.read_csv(one["files"][0], keep_default_na=False)
    pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)


def test_same_seed_same_bytes(tmp_path):
    for fmt in ("csv", "parquet", "aliccp"):
        a = run(tmp_path / f"{fmt}a", rows=2000, fmt=fmt, seed=1)
        b = run(tmp_path / f"{fmt}b", rows=2000, fmt=fmt, seed=1)
        c = run(tmp_path / f"{fmt}c", rows=2000, fmt=fmt, seed=2)
        assert read_bytes(a["files"]) == read_bytes(b["files"])
        assert read_bytes([a["simulation"]]) == read_bytes([b["simulation"]])
        assert read_bytes(a["files"]) != read_bytes(c["files"])


def test_realised_rates_reported(tmp_path):
    result = run(tmp_path, rows=30_000, ctr=0.05, cvr=0.05, selection_bias=0.5)
    assert result["realised_ctr"] == pytest.approx(0.05, rel=0.15)
    assert result["realised_cvr_clicked"] == pytest.approx(0.05, rel=0.35)
    assert result["realised_ctcvr"] == pytest.approx(
        result["realised_ctr"] * result["realised_cvr_clicked"]
    )


def _entries(feature_list):
    out = []
    for entry in feature_list.split(ali.ENTRY_SEPARATOR):
        field, rest = entry.split(ali.FIELD_SEPARATOR)
        feature, value = rest.split(ali.VALUE_SEPARATOR)
        out.append((field, int(feature), float(value)))
    return out


def _read_lines(path):
    with open(path, newline="") as f:
        return f.read().split("\n")[:-1]


def test_aliccp_structure(tmp_path):
    rows = 4001
    result = run(tmp_path / "ali", rows=rows, fmt="aliccp", seed=7)
    reference = pd.read_csv(
        run(tmp_path / "csv", rows=rows, seed=7)["files"][0], keep_default_na=False
    )
    assert result["spec"] is None
    assert result["splits"] == {"train": 2001, "test": 2000}
    names = sorted(os.path.basename(p) for p in result["files"])
    assert names == sorted(
        pattern.format(split)
        for pattern in (ali.SKELETON_FILE, ali.COMMON_FILE, ali.GROUND_TRUTH_FILE)
        for split in ali.SPLITS
    )
    offsets = ali.feature_id_offsets(SMALL)
    user_fields = {f for f, _ in ali.USER_FIELDS + ali.BEHAVIOUR_FIELDS}
    item_fields = {f for f, _ in ali.ITEM_FIELDS + ali.COMBINATION_FIELDS}
    field_of_feature = {}
    sample_ids = []
    for split in ali.SPLITS:
        common = {}
        for line in _read_lines(tmp_path / "ali" / ali.COMMON_FILE.format(split)):
            index, count, feature_list = line.split(",")
            assert len(index) == 16 and index not in common
            entries = _entries(feature_list)
            assert int(count) == len(entries)
            assert {f for f, _, _ in entries} <= user_fields
            assert [f for f, _, _ in entries][: len(ali.USER_FIELDS)] == [
                f for f, _ in ali.USER_FIELDS
            ]
            common[index] = entries
            for field, feature, _ in entries:
                assert field_of_feature.setdefault(feature, field) == field
        used = set()
        skeleton = _read_lines(tmp_path / "ali" / ali.SKELETON_FILE.format(split))
        truth = pd.read_csv(tmp_path / "ali" / ali.GROUND_TRUTH_FILE.format(split))
        assert list(truth.columns) == [ali.SAMPLE_ID, *sim.GROUND_TRUTH_COLUMNS]
        assert truth[ali.SAMPLE_ID].tolist() == [int(l.split(",")[0]) for l in skeleton]
        for line in skeleton:
            sample_id, click, conversion, index, count, feature_list = line.split(",")
            sample_id = int(sample_id)
            sample_ids.append(sample_id)
            assert index in common
            used.add(index)
            entries = _entries(feature_list)
            assert int(count) == len(entries)
            fields = [f for f, _, _ in entries]
            assert fields[: len(ali.ITEM_FIELDS)] == [f for f, _ in ali.ITEM_FIELDS]
            assert set(fields) <= item_fields
            for field, feature, _ in entries:
                assert field_of_feature.setdefault(feature, field) == field
            row = reference.iloc[sample_id - 1]
            assert (int(click), int(conversion)) == (row[keys.CLICK], row[keys.CONVERSION])
            by_field = {f: (feature, value) for f, feature, value in entries}
            assert by_field["205"][0] == offsets["205"] + row[sim.ITEM_ID]
            assert by_field["301"][0] == offsets["301"] + row[sim.SCENARIO]
            if row[sim.CATEGORY_AFFINITY] > 0:
                assert by_field["508"][1] == pytest.approx(
                    math.log1p(row[sim.CATEGORY_AFFINITY]), abs=1e-4
                )
            else:
                assert "508" not in by_field
            user_entry = common[index][0]
            assert user_entry[:2] == ("101", offsets["101"] + row[sim.USER_ID])
        # Common rows exist only for sessions the split shows.
        assert used == set(common)
        np.testing.assert_allclose(
            truth[keys.TRUE_CTR],
            reference.set_index(keys.ROW_ID).loc[truth[ali.SAMPLE_ID], keys.TRUE_CTR],
            rtol=1e-6,
        )
    # The first half in time is train, the second half test, nothing lost.
    assert sample_ids == list(range(1, rows + 1))
    # Feature ids are global: multi-valued behaviour fields present.
    assert {"109_14", "110_14", "127_14", "150_14"} <= set(field_of_feature.values())


def test_aliccp_common_rows_are_not_in_skeleton_order(tmp_path):
    result = run(tmp_path, rows=3000, fmt="aliccp")
    skeleton = _read_lines(tmp_path / ali.SKELETON_FILE.format("train"))
    first_seen = list(dict.fromkeys(line.split(",")[3] for line in skeleton))
    common = [line.split(",")[0] for line in _read_lines(tmp_path / ali.COMMON_FILE.format("train"))]
    assert sorted(common) == sorted(first_seen)
    assert common != first_seen
    assert result["splits"]["train"] == len(skeleton)


def test_out_dir_must_be_empty_unless_overwrite(tmp_path):
    run(tmp_path, rows=500, shards=2)
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty"):
        run(tmp_path, rows=500)
    result = run(tmp_path, rows=500, overwrite=True)
    remaining = sorted(os.listdir(tmp_path))
    assert remaining == sorted(
        ["notes.txt", "spec.json", "simulation.json", os.path.basename(result["files"][0])]
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rows": 0}, "rows"),
        ({"rows": -3}, "rows"),
        ({"rows": 2.5}, "rows"),
        ({"fmt": "xml"}, "format"),
        ({"fmt": "aliccp", "shards": 2}, "shards"),
        ({"shards": 0}, "shards"),
        ({"rows": 3, "shards": 5}, "shards"),
        ({"ctr": 1.5}, "ctr"),
        ({"cvr": 0.0}, "cvr"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    kwargs = {"rows": 100, **kwargs}
    with pytest.raises(ValueError, match=message):
        simulate(str(tmp_path / "out"), config=SMALL, **kwargs)
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")
