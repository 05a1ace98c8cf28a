import json

import apache_beam as beam
from apache_beam.testing.util import assert_that
from apache_beam.testing.util import equal_to

from beam_jobs.example_logs import impression_spec
from beam_jobs.transforms.metadata import WriteMetadataFn
from beam_jobs.transforms.metadata import build_summary
from beam_jobs.transforms.vocabularies import WriteVocabularyFn
from beam_jobs.transforms.vocabularies import write_vocabulary
from tfcvr.features import Schema
from tfcvr.features import vocab_fingerprint as vf
from tfcvr.features.input_spec import InputSpec


def test_build_summary_accounting():
    ok = build_summary(10, {"train": 6, "eval": 2}, {"bad_label": 2})
    assert ok["accounting_ok"] and ok["rows_rejected_total"] == 2
    assert ok["rows_written"] == {"train": 6, "eval": 2}
    bad = build_summary(10, {"train": 6}, {"bad_label": 2})
    assert not bad["accounting_ok"]
    assert bad["rows_written"] == {"train": 6, "eval": 0}


def test_vocabulary_files(tmp_path, make_pipeline):
    with make_pipeline() as p:
        sizes = (
            p
            | beam.Create([("city", [("oslo", 3), ("lima", 1)])])
            | beam.ParDo(WriteVocabularyFn(str(tmp_path)))
        )
        assert_that(sizes, equal_to([("city", 2)]))
    assert (tmp_path / "vocab" / "city.txt").read_text() == "oslo\nlima\n"


def test_metadata_writes_schema_summary_and_empty_vocabularies(
    tmp_path, make_pipeline
):
    spec = InputSpec.from_dict(impression_spec())
    stats = {"price": {"count": 2, "mean": 1.0, "std": 0.5, "min": 0.5, "max": 1.5}}
    # Written by WriteVocabularyFn in the job; the schema's fingerprint
    # covers their content.
    write_vocabulary(str(tmp_path), "item", ["4", "1", "9", "2"])
    write_vocabulary(str(tmp_path), "user_id", ["7", "3"])
    with make_pipeline() as p:
        side = {
            "vocab_sizes": [("item", 4), ("user_id", 2)],
            "stats": list(stats.items()),
            "written": [("train", 8), ("eval", 1)],
            "rejected": [("bad_label", 1)],
        }
        views = {
            name: beam.pvalue.AsDict(p | f"Side{name}" >> beam.Create(values))
            for name, values in side.items()
        }
        summary = p | beam.Create([None]) | beam.ParDo(
            WriteMetadataFn(spec, str(tmp_path), {"format": "csv"}),
            rows_in=beam.pvalue.AsSingleton(p | "RowsIn" >> beam.Create([10])),
            time_cut=beam.pvalue.AsSingleton(p | "Cut" >> beam.Create([5.0])),
            **views,
        )
        assert_that(
            summary | beam.Map(lambda s: (s["accounting_ok"], s["rows_read"])),
            equal_to([(True, 10)]),
        )
    schema = Schema.load(str(tmp_path))
    assert schema["item_id"].vocab_size == 4 and schema["city"].vocab_size == 0
    assert schema["price"].mean == 1.0 and schema["price"].std == 0.5
    assert schema.metadata["rows"] == {"train": 8, "eval": 1}
    assert schema.metadata["time_cut"] == 5.0
    assert (tmp_path / "vocab" / "city.txt").read_text() == ""
    assert (tmp_path / "vocab" / "tags.txt").exists()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["rows_rejected"] == {"bad_label": 1}
    assert summary["vocab_sizes"] == {"city": 0, "item": 4, "tags": 0, "user_id": 2}
    fingerprint = vf.directory_fingerprint(str(tmp_path))
    assert schema.metadata[vf.METADATA_KEY] == fingerprint
    assert summary[vf.METADATA_KEY] == fingerprint
    assert "oov" not in summary  # counted only with --vocab-from
