"""`tfcvr` itself: what a command imports, and one-line errors."""

import os
import subprocess
import sys

import tfcvr

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(tfcvr.__file__)))


def _python(code, tmp_path, **env):
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=REPO_ROOT, **env),
    )


def test_help_simulate_and_schema_import_no_tensorflow(tmp_path):
    code = """
import sys
from tfcvr.cli.main import main
assert main(["--help"]) == 0
assert "tensorflow" not in sys.modules
assert main(["simulate", "--out", "logs", "--rows", "300",
             "--num-users", "50", "--num-items", "80"]) == 0
assert main(["schema", "infer", "--input", "logs/impressions-00000-of-00001.csv",
             "--out", "spec.json"]) == 0
print("IMPORTED", [m for m in ("tensorflow", "keras") if m in sys.modules])
"""
    done = _python(code, tmp_path, KERAS_BACKEND="tensorflow")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("IMPORTED []"), done.stdout
    assert (tmp_path / "spec.json").exists()


def test_error_is_one_line_under_python_dash_m(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "tfcvr.cli.main", "schema"], capture_output=True,
        text=True, timeout=300, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=REPO_ROOT),
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "tfcvr schema: error: choose an action: `tfcvr schema infer --input FILE`")
