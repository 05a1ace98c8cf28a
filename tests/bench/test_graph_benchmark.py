"""`tfcvr bench graph` and the two-stage path of `tfcvr bench train`, on
tiny sizes (their times are what the benchmarks report, never asserted)."""

import argparse
import json

from tfcvr.bench import train_benchmark
from tfcvr.cli.main import main


def test_graph_build_is_exact_and_reported(tmp_path, capsys):
    out = tmp_path / "graph.jsonl"
    code = main(["bench", "graph", "--nodes", "700", "--dim", "4",
                 "--neighbours", "5", "--verify", "100", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    assert result["nodes"] == 700 and result["neighbours"] == 5
    assert result["exact_rows"] == 1.0
    assert result["best_seconds"] >= 0 and result["peak_rss_mb"] > 0


def test_train_bench_runs_both_stages_of_a_two_stage_estimator(
        tmp_path, monkeypatch, capsys):
    # A small bench schema, so the first stage's graphs build at once.
    monkeypatch.setattr(train_benchmark, "VOCAB_SIZES", (300, 200, 10, 5))
    parser = argparse.ArgumentParser()
    train_benchmark.add_arguments(parser)
    out = tmp_path / "train.jsonl"
    args = parser.parse_args([
        "--source", "synthetic", "--model", "cstwa", "--rows", "1024",
        "--batch-size", "256", "--epochs", "1", "--out", str(out),
        "--param", "embedding_dim=4", "--param",
        "backbone_config.hidden_units=[8]"])
    assert train_benchmark.run(args) == 0
    printed = capsys.readouterr().out
    assert printed.index("stage 1/2") < printed.index("stage 2/2")
    result = json.loads(out.read_text())
    assert result["pretraining"]["model"] == "esmm"
    assert result["pretraining"]["tables"] == ["f0", "f1"]
    assert result["total_seconds"] >= result["wall_seconds"]
