"""`read_local()`: the readers' rows and dead letters without a pipeline."""

import json

import pytest
from apache_beam.testing.util import assert_that
from apache_beam.testing.util import equal_to

from beam_jobs.example_logs import impression_frame
from beam_jobs.example_logs import impression_spec
from beam_jobs.readers import dead_letter as dl
from beam_jobs.readers import get_reader_class
from beam_jobs.readers.row_converter import KEY_FIELD
from tfcvr.features import keys


def _write(tmp_path, fmt):
    frame = impression_frame(rows=40, seed=2)
    path = tmp_path / f"log.{fmt}"
    if fmt == "parquet":
        frame.loc[3, keys.CLICK] = 2  # bad label
        frame.to_parquet(path)
        return str(path), [dl.BAD_LABEL]
    if fmt == "csv":
        frame.to_csv(path, index=False)
        extra = b"1,2,3\n\n" + b"9,\xff" + b",0" * 12 + b"\n"
        reasons = [dl.WRONG_FIELD_COUNT, dl.NON_UTF8]
    else:
        frame.to_json(path, orient="records", lines=True)
        extra = b'{"row_id": 99, "click": 1, "conversion": 0, "price": "x"}\n'
        extra += b"[1, 2]\n"
        reasons = [dl.BAD_NUMERIC, dl.BAD_JSON]
    with open(path, "ab") as f:
        f.write(extra)
    return str(path), reasons


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_read_local_gives_what_the_pipeline_gives(tmp_path, fmt, make_pipeline):
    path, reasons = _write(tmp_path, fmt)
    reader = get_reader_class(fmt)(path, spec=impression_spec())
    local = list(reader.read_local())
    rows = [row for row, _ in local if row is not None]
    dead = [d for _, d in local if d is not None]
    assert sorted(d["reason"] for d in dead) == sorted(reasons)
    assert len(rows) + len(dead) == 40 + len(reasons) - (fmt == "parquet")
    # Input order is kept: the row ids of the good rows ascend.
    ids = [int(r[KEY_FIELD]) for r in rows]
    assert ids == sorted(ids)
    with make_pipeline() as p:
        out = p | get_reader_class(fmt)(path, spec=impression_spec())
        assert_that(out[dl.ROWS], equal_to(rows), label="rows")
        assert_that(out[dl.REJECTED], equal_to(dead), label="rejected")


def test_features_only_scores_a_log_without_labels(tmp_path):
    frame = impression_frame(rows=10, seed=3)
    keep = ["row_id", *impression_spec()["columns"]]
    frame[keep].to_json(tmp_path / "log.jsonl", orient="records", lines=True)
    reader = get_reader_class("jsonl")(
        str(tmp_path / "log.jsonl"), spec=impression_spec(), features_only=True
    )
    rows = [row for row, _ in reader.read_local()]
    assert len(rows) == 10 and all(keys.CLICK not in r for r in rows)
    assert [r[KEY_FIELD] for r in rows] == [str(i) for i in range(10)]
    with pytest.raises(ValueError, match="click"):
        get_reader_class("jsonl")(
            str(tmp_path / "log.jsonl"), spec=impression_spec()
        )
    json.dumps(rows)  # plain python values
