import json
import os
import subprocess
import sys

import numpy as np
import pytest

import tfcvr
from tfcvr.bench import train_benchmark
from tfcvr.features import keys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(tfcvr.__file__)))


# A JAX process of its own on two host devices (about 20 s): `make test-large`.
@pytest.mark.large
def test_synthetic_source_runs_under_jax_without_tensorflow(tmp_path):
    pytest.importorskip("jax")
    out = tmp_path / "train.jsonl"
    # As on the GPU machines: JAX and no TensorFlow (an import of it fails),
    # and two devices, which the batches are split over (DataParallel).
    code = f"""
import sys
sys.modules["tensorflow"] = None
from tfcvr.cli.main import main
sys.exit(main(["bench", "train", "--source", "synthetic", "--model", "esmm",
               "--rows", "1024", "--batch-size", "256", "--epochs", "1",
               "--out", {str(out)!r}]))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
        env=dict(os.environ, PYTHONPATH=REPO_ROOT, KERAS_BACKEND="jax",
                 XLA_FLAGS="--xla_force_host_platform_device_count=2"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["backend"] == "jax" and result["source"] == "synthetic"
    assert result["devices"] == 2
    assert result["rows"] == 1024 and result["examples_per_second"] > 0


def test_synthetic_rows_are_encoded_for_the_bench_schema():
    schema = train_benchmark.bench_schema()
    features, labels = train_benchmark.synthetic_encoded(500, seed=1)
    assert sorted(features) == sorted(f.name for f in schema.features)
    for spec in schema.features:
        values = features[spec.name]
        # 0 is padding and 1 out-of-vocabulary: raw value v encodes as v + 2.
        assert values.min() >= 2 and values.max() < spec.vocab_size + 2
    assert set(labels) == {keys.CLICK, keys.CONVERSION}
    assert (labels[keys.CONVERSION] <= labels[keys.CLICK]).all()


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_against_yardstick_alternates_rounds_and_prints_the_ratio(tmp_path, capsys):
    from tfcvr.cli.main import main

    out = tmp_path / "train.jsonl"
    assert main(["bench", "train", "--source", "synthetic", "--rows", "512",
                 "--batch-size", "128", "--epochs", "1", "--rounds", "2",
                 "--train-metrics", "none", "--against", "yardstick",
                 "--out", str(out)]) == 0
    *rounds, summary = _lines(out)
    assert [(r["implementation"], r["round"]) for r in rounds] == [
        ("tfcvr", 1), ("yardstick", 1), ("tfcvr", 2), ("yardstick", 2)]
    assert all(r["examples_per_second"] > 0 and r["rows"] == 512 for r in rounds)
    ratios = summary["ratios"]["yardstick"]
    assert summary["ratio"]["yardstick"] == pytest.approx(float(np.median(ratios)), rel=1e-2)
    expected = [rounds[i]["examples_per_second"] / rounds[i + 1]["examples_per_second"]
                for i in (0, 2)]
    assert ratios == pytest.approx(expected, rel=1e-2)
    assert "tfcvr esmm / yardstick:" in capsys.readouterr().out


def test_against_deepctr_says_why_it_is_skipped(tmp_path, capsys, monkeypatch):
    from tfcvr.bench import deepctr_esmm

    monkeypatch.setattr(deepctr_esmm, "missing_packages", lambda: ["deepctr"])
    assert deepctr_esmm.main(["--data", "unused.npz"]) == deepctr_esmm.NOT_INSTALLED
    line = capsys.readouterr().out.strip()
    assert json.loads(line) == {"skipped": "not installed: deepctr"}

    def not_installed(command, **kwargs):
        assert kwargs["env"]["TF_USE_LEGACY_KERAS"] == "1"
        return subprocess.CompletedProcess(command, deepctr_esmm.NOT_INSTALLED,
                                           stdout=line + "\n", stderr="")

    monkeypatch.setattr(train_benchmark.subprocess, "run", not_installed)
    from tfcvr.cli.main import main

    out = tmp_path / "train.jsonl"
    assert main(["bench", "train", "--source", "synthetic", "--rows", "256",
                 "--batch-size", "128", "--epochs", "1", "--rounds", "1",
                 "--against", "deepctr", "--out", str(out)]) == 0
    assert "deepctr: skipped (not installed: deepctr in " in capsys.readouterr().out
    assert _lines(out)[-1]["ratios"] == {"deepctr": None}


def test_deepctr_steady_rate_leaves_out_the_warm_up():
    from tfcvr.bench.deepctr_esmm import steady_rate

    # 10 examples per call, one slow first call, then one call a second.
    assert steady_rate([5.0, 6.0, 7.0, 8.0], 10, 1) == pytest.approx(10.0)
    assert np.isnan(steady_rate([1.0], 10, 1))
