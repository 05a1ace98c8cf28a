import json
import os
import subprocess
import sys

import pytest

import tfcvr
from tfcvr.bench import train_benchmark
from tfcvr.features import keys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(tfcvr.__file__)))


def test_synthetic_source_runs_under_jax_without_tensorflow(tmp_path):
    pytest.importorskip("jax")
    out = tmp_path / "train.jsonl"
    # As on the GPU machines: JAX and no TensorFlow (an import of it fails).
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
        env=dict(os.environ, PYTHONPATH=REPO_ROOT, KERAS_BACKEND="jax"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["backend"] == "jax" and result["source"] == "synthetic"
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
