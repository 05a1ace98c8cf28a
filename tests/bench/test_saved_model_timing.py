from tfcvr.bench.saved_model_timing import percentiles
from tfcvr.bench.saved_model_timing import time_saved_model
from tfcvr.export import export_saved_model
from tfcvr.export.sample_rows import synthetic_rows


def test_time_saved_model_reports_every_measurement(trained, tmp_path):
    _, model_dir, model = trained
    path = export_saved_model(model, str(tmp_path), name="esmm",
                              vocab_dir=model_dir, warmup_rows=0)
    rows = synthetic_rows(model.schema, model_dir, 4, keep_present=("item",))
    results = time_saved_model(path, model.schema, rows, iterations=5,
                               batch_size=16, throughput_seconds=0.05)
    assert set(results) == {"serving_default_batch1",
                            "predict_examples_batch1",
                            "serving_default_batch16"}
    one = results["serving_default_batch1"]
    assert one["calls"] == 5 and 0 < one["p50_ms"] <= one["p99_ms"]
    assert results["serving_default_batch16"]["rows_per_s"] > 0


def test_percentiles():
    stats = percentiles([0.001] * 99 + [0.1])
    assert stats["p50_ms"] == 1.0
    assert stats["p99_ms"] > 1.0
