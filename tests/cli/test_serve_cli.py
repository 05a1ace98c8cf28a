import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

import tfcvr
from tfcvr.cli.main import main
from tfcvr.export import export_saved_model
from tfcvr.export.check_saved_model import keras_reference
from tfcvr.export.sample_rows import synthetic_rows
from tfcvr.testing.tiny_model import train_tiny_model
from tfcvr.testing.tiny_model import write_tiny_dataset_dir
from tfcvr.features import keys
from tfcvr.serving import TFServingClient

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(tfcvr.__file__)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve_cli")
    data = write_tiny_dataset_dir(os.path.join(root, "data"))
    model_dir = os.path.join(root, "model")
    model = train_tiny_model(data, model_dir)
    base = os.path.join(root, "saved_models")
    export_saved_model(model, base, name="esmm", vocab_dir=model_dir,
                       warmup_rows=0)
    return base, model, model_dir


def _start(base, *extra):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    process = subprocess.Popen(
        [sys.executable, "-m", "tfcvr.cli.main", "serve", "--model-base",
         base, "--port", "0", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        cwd=REPO_ROOT,
    )
    lines = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "listening on" in line:
            return process, line.rsplit(" ", 1)[1].strip(), lines
    process.kill()
    raise AssertionError(
        f"server did not start: {lines} {process.stderr.read()[-2000:]}")


def _stop(process, sig=signal.SIGTERM, timeout=60):
    process.send_signal(sig)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return process.returncode, out, err


def test_serve_end_to_end_and_sigterm(exported):
    base, model, model_dir = exported
    process, url, lines = _start(base)
    try:
        assert url.startswith("http://127.0.0.1:")
        assert "esmm (version 1)" in "".join(lines)
        client = TFServingClient(url)
        rows = synthetic_rows(model.schema, model_dir, 8, seed=1,
                              keep_present=("item",))
        expected = keras_reference(model, rows, model_dir)
        predictions = client.predict("esmm", instances=rows)
        np.testing.assert_allclose([p[keys.CTR] for p in predictions],
                                   expected[keys.CTR], atol=1e-6)
        names = {k for r in rows for k in r}
        outputs = client.predict(
            "esmm", inputs={n: [r.get(n) for r in rows] for n in names})
        np.testing.assert_allclose(outputs[keys.CVR], expected[keys.CVR],
                                   atol=1e-6)
        # Plain HTTP, a bad request, then a good one.
        request = urllib.request.Request(
            url + "/v1/models/esmm:predict", data=b"{oops", method="POST")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=30)
        assert info.value.code == 400
        assert "error" in json.loads(info.value.read())
        with urllib.request.urlopen(url + "/v1/models/esmm", timeout=30) as r:
            status = json.loads(r.read())
        assert status["model_version_status"][0]["state"] == "AVAILABLE"
        # An idle keep-alive connection must not hold up shutdown.
        host, port = url.split("//")[1].split(":")
        idle = http.client.HTTPConnection(host, int(port), timeout=30)
        idle.request("GET", "/v1/models/esmm/metadata")
        assert idle.getresponse().read()
        started = time.monotonic()
        code, out, err = _stop(process)
        assert time.monotonic() - started < 25
        idle.close()
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0, err[-2000:]
    assert "tfcvr serve: stopped" in out
    assert "Traceback" not in err


def test_bad_model_base_is_a_one_line_error(tmp_path, capsys):
    assert main(["serve", "--model-base", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert "Model base directory not found" in err
    assert len(err.splitlines()) == 1
    os.makedirs(tmp_path / "empty")
    assert main(["serve", "--model-base", str(tmp_path / "empty")]) == 2
    assert "No SavedModels" in capsys.readouterr().err


def test_unknown_model_and_busy_port(exported, capsys):
    base, _, _ = exported
    assert main(["serve", "--model-base", base, "--model", "other"]) == 2
    assert "other" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        assert main(["serve", "--model-base", base, "--port", str(port)]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot listen" in err and len(err.splitlines()) == 1
    assert main(["serve", "--model-base", base, "--port", "70000"]) == 2
    capsys.readouterr()
    for flag, value in [("--workers", "0"), ("--max-queued", "0"),
                        ("--read-timeout", "-1")]:
        assert main(["serve", "--model-base", base, "--port", "0", flag,
                     value]) == 2
        err = capsys.readouterr().err.strip()
        name = flag[2:].replace("-", "_")
        assert f"{name}=" in err and len(err.splitlines()) == 1


@pytest.mark.large
def test_seed_estimators_export_check_and_serve(trained, tmp_path, capsys):
    """ChorusCVR and DDPO, auxiliary heads included, export (ChorusCVR
    through `tfcvr export --check`: a fresh process per check, so one) and
    answer over `tfcvr serve` with their Keras outputs."""
    data_dir, _, _ = trained
    base = str(tmp_path / "saved_models")
    models = {}
    for name, check in (("choruscvr", ["--check", "--check-rows", "8"]),
                        ("ddpo", [])):
        model_dir = str(tmp_path / name)
        models[name] = (train_tiny_model(data_dir, model_dir, estimator=name),
                        model_dir)
        code = main(["export", "--model-dir", model_dir, "--out",
                     os.path.join(base, name), *check,
                     "--include-auxiliary", "--warmup-rows", "0"])
        printed = capsys.readouterr().out
        assert code == 0, printed
        assert ("Check passed" in printed) == bool(check)
    process, url, _ = _start(base)
    try:
        client = TFServingClient(url)
        for name, (model, model_dir) in models.items():
            rows = synthetic_rows(model.schema, model_dir, 8, seed=2,
                                  keep_present=("item",))
            expected = keras_reference(model, rows, model_dir)
            auxiliary = {keys.UNCVR, keys.CTUNCVR} if name == "choruscvr" \
                else {keys.CONVERSION_PROPENSITY}
            assert set(expected) == set(keys.SERVING_OUTPUTS) | auxiliary
            predictions = client.predict(name, instances=rows)
            for key, value in expected.items():
                np.testing.assert_allclose([p[key] for p in predictions],
                                           value, atol=1e-6,
                                           err_msg=f"{name}/{key}")
        code, _, err = _stop(process)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 0, err[-2000:]
