import base64
import http.client
import json
import os
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest

from tfcvr.export import export_saved_model
from tfcvr.export.check_saved_model import keras_reference
from tfcvr.export.raw_rows import example_from_row
from tfcvr.export.sample_rows import synthetic_rows
from tfcvr.features import keys
from tfcvr.serving import TFServingClient
from tfcvr.serving import TFServingError
from tfcvr.serving.model_repository import ModelRepository
from tfcvr.serving.rest_server import RestServer

ROW = {"user": 3, "item": 1002, "history": [1001, 1003], "tags": ["news"],
       "city": "paris", "device": "ios", "price": 12.0, "age": 30.0}
FULL_ROW = dict(ROW, history__weight=[1.0, 0.5])  # every input: strict-proof


def _clone_shifted(model, shift):
    clone = type(model).from_config(model.get_config())
    clone.build()
    clone.set_weights(model.get_weights())
    kernel, bias = clone.heads[0].get_weights()
    clone.heads[0].set_weights([kernel, bias + shift])
    return clone


def _start(repository, **kwargs):
    server = RestServer(repository, host="127.0.0.1", port=0, **kwargs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


@pytest.fixture(scope="module")
def served(trained, tmp_path_factory):
    """Version 1 = the trained model, version 2 = a shifted copy; servers
    in this process over one repository (lenient, strict, small limit)."""
    _, model_dir, model = trained
    base = str(tmp_path_factory.mktemp("saved_models"))
    newer = _clone_shifted(model, 0.7)
    export_saved_model(model, base, name="esmm", vocab_dir=model_dir,
                       warmup_rows=0)
    export_saved_model(newer, base, name="esmm", vocab_dir=model_dir,
                       warmup_rows=0)
    repository = ModelRepository(base)
    servers = {
        "lenient": _start(repository),
        "strict": _start(repository, strict=True),
        "small": _start(repository, max_request_bytes=2000),
    }
    yield {
        "models": {1: model, 2: newer},
        "model_dir": model_dir,
        "url": {k: s.url for k, (s, _) in servers.items()},
        "repository": repository,
    }
    for server, thread in servers.values():
        server.stop()
        server.server_close()
        thread.join(timeout=10)


def _post(url, body, raw=False):
    data = body if raw else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(
        url, data=data, method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _rows(served, n=12, seed=4):
    model = served["models"][1]
    return synthetic_rows(model.schema, served["model_dir"], n, seed=seed,
                          keep_present=("item",))


def _expected(served, rows, version=2):
    return keras_reference(served["models"][version], rows, served["model_dir"])


def test_row_format_through_the_client(served):
    client = TFServingClient(served["url"]["lenient"])
    rows = _rows(served)
    predictions = client.predict("esmm", instances=rows)
    expected = _expected(served, rows)
    assert len(predictions) == len(rows)
    for name in keys.SERVING_OUTPUTS:
        np.testing.assert_allclose(
            [p[name] for p in predictions], expected[name], atol=1e-6
        )


def test_columnar_format_through_the_client(served):
    client = TFServingClient(served["url"]["lenient"])
    rows = _rows(served, seed=5)
    names = {k for row in rows for k in row}
    inputs = {name: [row.get(name) for row in rows] for name in names}
    outputs = client.predict("esmm", inputs=inputs)
    expected = _expected(served, rows)
    assert set(outputs) == set(keys.SERVING_OUTPUTS)
    for name in keys.SERVING_OUTPUTS:
        np.testing.assert_allclose(outputs[name], expected[name], atol=1e-6)


def test_strict_server_accepts_what_the_client_completes(served):
    # The client fills and pads from the metadata, as it must for TF Serving.
    client = TFServingClient(served["url"]["strict"])
    rows = _rows(served, seed=6)
    predictions = client.predict("esmm", instances=rows)
    np.testing.assert_allclose(
        [p[keys.CVR] for p in predictions], _expected(served, rows)[keys.CVR],
        atol=1e-6,
    )


def test_plain_http_row_and_columnar(served):
    url = served["url"]["lenient"] + "/v1/models/esmm:predict"
    status, reply = _post(url, {"instances": [ROW, dict(ROW, item=1003)]})
    assert status == 200
    expected = _expected(served, [ROW, dict(ROW, item=1003)])
    got = [p[keys.CTCVR] for p in reply["predictions"]]
    np.testing.assert_allclose(got, expected[keys.CTCVR], atol=1e-6)
    status, reply = _post(url, {"inputs": {"item": [1002, 1003],
                                           "user": [3, 3]}})
    assert status == 200
    rows = [{"item": 1002, "user": 3}, {"item": 1003, "user": 3}]
    np.testing.assert_allclose(
        reply["outputs"][keys.CTR], _expected(served, rows)[keys.CTR],
        atol=1e-6,
    )


def test_nan_and_null_mean_missing(served):
    url = served["url"]["lenient"] + "/v1/models/esmm:predict"
    body = ('{"instances": [{"item": 1002, "price": NaN}, '
            '{"item": 1002, "price": null}, {"item": 1002}]}').encode()
    status, reply = _post(url, body, raw=True)
    assert status == 200
    ctr = [p[keys.CTR] for p in reply["predictions"]]
    assert ctr[0] == ctr[1] == ctr[2]


def test_predict_examples_with_b64(served):
    model = served["models"][1]
    rows = _rows(served, n=4, seed=7)
    encoded = [
        {"b64": base64.b64encode(
            example_from_row(r, model.schema).SerializeToString()
        ).decode()}
        for r in rows
    ]
    url = served["url"]["lenient"] + "/v1/models/esmm/versions/1:predict"
    expected = _expected(served, rows, version=1)
    status, reply = _post(url, {"signature_name": "predict_examples",
                                "instances": encoded})
    assert status == 200
    np.testing.assert_allclose(
        [p[keys.CTR] for p in reply["predictions"]], expected[keys.CTR],
        atol=1e-6,
    )
    status, reply = _post(url, {"signature_name": "predict_examples",
                                "inputs": {"examples": encoded}})
    assert status == 200
    np.testing.assert_allclose(reply["outputs"][keys.CTR], expected[keys.CTR],
                               atol=1e-6)


def test_latest_and_specific_versions(served):
    client = TFServingClient(served["url"]["lenient"])
    rows = _rows(served, n=5, seed=8)
    latest = client.predict("esmm", instances=rows)
    second = client.predict("esmm", instances=rows, version=2)
    first = client.predict("esmm", instances=rows, version=1)
    assert latest == second
    np.testing.assert_allclose([p[keys.CTR] for p in first],
                               _expected(served, rows, 1)[keys.CTR], atol=1e-6)
    assert [p[keys.CTR] for p in first] != [p[keys.CTR] for p in second]
    status = client.status("esmm")
    versions = [s["version"] for s in status["model_version_status"]]
    assert versions == ["2", "1"]
    assert all(s["state"] == "AVAILABLE" for s in status["model_version_status"])
    one = client.status("esmm", version=1)["model_version_status"]
    assert one == [{"version": "1", "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""}}]


def test_metadata(served):
    client = TFServingClient(served["url"]["lenient"])
    reply = client.metadata("esmm")
    assert reply["model_spec"] == {"name": "esmm", "signature_name": "",
                                   "version": "2"}
    signatures = reply["metadata"]["signature_def"]["signature_def"]
    default = signatures["serving_default"]
    assert default["method_name"] == "tensorflow/serving/predict"
    assert default["inputs"]["item"]["dtype"] == "DT_INT64"
    assert default["inputs"]["history"]["tensor_shape"]["dim"] == [
        {"size": "-1", "name": ""}, {"size": "-1", "name": ""}]
    assert set(default["outputs"]) == set(keys.SERVING_OUTPUTS)
    assert default["outputs"]["ctr"]["dtype"] == "DT_FLOAT"
    assert signatures["predict_examples"]["inputs"]["examples"]["dtype"] == (
        "DT_STRING")
    assert client.metadata("esmm", version=1)["model_spec"]["version"] == "1"


BAD_REQUESTS = [
    # (server, method, path, body, status, words in the error)
    ("lenient", "POST", "/v1/models/esmm:predict", b'{"instances": [',
     400, "JSON"),
    ("lenient", "POST", "/v1/models/esmm:predict", b'[1, 2]', 400, "object"),
    ("lenient", "POST", "/v1/models/esmm:predict", b'\xff\xfe', 400, "JSON"),
    ("lenient", "POST", "/v1/models/esmm:predict", b'', 400, "no body"),
    ("lenient", "POST", "/v1/models/esmm:predict", b'{"item": 1}', 400,
     "instances"),
    ("lenient", "POST", "/v1/models/esmm:predict",
     b'{"instances": [{"item": 1}], "inputs": {"item": [1]}}', 400,
     "exactly one"),
    ("lenient", "POST", "/v1/models/nope:predict", b'{"instances": [{}]}',
     404, "Servable not found"),
    ("lenient", "POST", "/v1/models/esmm/versions/9:predict",
     b'{"instances": [{"item": 1}]}', 404, "Specific(esmm, 9)"),
    ("lenient", "POST", "/v1/models/esmm/versions/x:predict",
     b'{"instances": [{"item": 1}]}', 400, "Version"),
    ("lenient", "POST", "/v1/models/esmm:predict",
     b'{"signature_name": "nope", "instances": [{"item": 1}]}', 400,
     "nope"),
    ("lenient", "POST", "/v1/models/esmm:predict",
     b'{"instances": [{"item": "abc"}]}', 400, "integers"),
    ("lenient", "POST", "/v1/models/esmm:predict",
     b'{"instances": [{"item": 1.5}]}', 400, "integers"),
    ("lenient", "POST", "/v1/models/esmm:predict",
     b'{"instances": [{"item": 1, "city": 5}]}', 400, "strings"),
    ("lenient", "POST", "/v1/models/esmm:predict",
     b'{"instances": [{"item": 1, "price": "high"}]}', 400, "numbers"),
    ("lenient", "POST", "/v1/models/esmm:predict",
     b'{"instances": [{"item": 1, "history": [[1]]}]}', 400, "flat"),
    ("lenient", "POST", "/v1/models/esmm:predict",
     b'{"instances": [{"item": 1, "bogus": 1}]}', 400, "bogus"),
    ("lenient", "POST", "/v1/models/esmm:predict",
     b'{"instances": [{"user": 3}]}', 400, "`item` is missing"),
    ("lenient", "POST", "/v1/models/esmm:predict",
     b'{"inputs": {"item": [1, 2], "user": [3]}}', 400, "batch"),
    ("lenient", "POST", "/v1/models/esmm:predict",
     b'{"instances": []}', 400, "non-empty"),
    ("lenient", "POST", "/v1/models/esmm:predict",
     b'{"instances": [{"item": 99999999999999999999}]}', 400, "range"),
    ("lenient", "POST", "/v1/models/esmm:predict",
     b'{"signature_name": "predict_examples", "instances": [{"b64": "!!"}]}',
     400, "base64"),
    ("lenient", "POST", "/v1/models/esmm:predict",
     b'{"signature_name": "predict_examples", "instances": [{"b64": "AAAA"}]}',
     400, ""),
    ("lenient", "POST", "/v1/models/esmm:predict",
     json.dumps({"signature_name": "predict_examples", "instances": [
         {"b64": base64.b64encode(b"\x0a\xb5\xff\xfe\x00\x12").decode()}
     ]}).encode(), 400, ""),
    ("lenient", "POST", "/v1/models/esmm:predict", b"[" * 100000, 400,
     "JSON"),
    ("lenient", "POST", "/v1/models/esmm:classify", b'{"examples": []}', 400,
     "classify"),
    ("lenient", "GET", "/v1/models/esmm:predict", None, 405, "POST"),
    ("lenient", "POST", "/v1/models/esmm", b'{}', 405, "GET"),
    ("lenient", "GET", "/v2/whatever", None, 404, "Malformed"),
    ("lenient", "DELETE", "/v1/models/esmm", None, 405, "DELETE"),
    ("lenient", "GET", "/v1/models/esmm/labels/stable", None, 400, "labels"),
    ("strict", "POST", "/v1/models/esmm:predict",
     b'{"instances": [{"item": 1002}]}', 400, "Missing input"),
    ("strict", "POST", "/v1/models/esmm:predict",
     json.dumps({"instances": [
         dict(ROW, history__weight=[1.0, 1.0]),
         dict(ROW, history=[1001], history__weight=[1.0])]}).encode(),
     400, "different lengths"),
    ("strict", "POST", "/v1/models/esmm:predict",
     json.dumps({"instances": [dict(ROW, history__weight=[1.0, 1.0],
                                    age=None)]}).encode(),
     400, "is null"),
    ("small", "POST", "/v1/models/esmm:predict",
     json.dumps({"instances": [ROW] * 50}).encode(), 413, "exceeds"),
]


@pytest.mark.parametrize(
    "server,method,path,body,status,words", BAD_REQUESTS,
    ids=[f"{i}-{r[0]}-{r[4]}" for i, r in enumerate(BAD_REQUESTS)],
)
def test_bad_requests_get_tf_serving_errors(served, server, method, path,
                                            body, status, words):
    base = served["url"][server]
    host, port = base.split("//")[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request(method, path, body=body,
                           headers={"Content-Type": "application/json"})
        reply = connection.getresponse()
        payload = reply.read()
        assert reply.status == status, payload
        assert reply.getheader("Content-Type") == "application/json"
        error = json.loads(payload)
        assert set(error) == {"error"}
        assert words in error["error"]
        assert "Traceback" not in error["error"]
        assert "\n" not in error["error"]
    finally:
        connection.close()
    # The server keeps serving.
    status_code, reply = _post(base + "/v1/models/esmm:predict",
                               {"instances": [FULL_ROW]})
    assert status_code == 200 and len(reply["predictions"]) == 1


def test_keep_alive_connection_survives_bad_requests(served):
    host, port = served["url"]["lenient"].split("//")[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Content-Type": "application/json"}
    try:
        for body, status in [
            (json.dumps({"instances": [ROW]}), 200),
            ('{"instances": [{"item": "x"}]}', 400),
            ("not json", 400),
            (json.dumps({"instances": [ROW]}), 200),
        ]:
            connection.request("POST", "/v1/models/esmm:predict", body=body,
                               headers=headers)
            reply = connection.getresponse()
            reply.read()
            assert reply.status == status
    finally:
        connection.close()


def test_concurrent_clients_get_the_same_answers(served):
    client = TFServingClient(served["url"]["lenient"])
    rows = _rows(served, n=6, seed=10)
    expected = client.predict("esmm", instances=rows)
    results, errors = [], []

    def work():
        try:
            for _ in range(5):
                results.append(client.predict("esmm", instances=rows))
        except Exception as e:  # collected for the assertion below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert len(results) == 30 and all(r == expected for r in results)


def test_client_raises_tf_serving_errors(served):
    client = TFServingClient(served["url"]["lenient"], retries=0)
    with pytest.raises(TFServingError) as info:
        client.predict("nope", instances=[ROW], fill_missing=False)
    assert info.value.status == 404
    assert "Servable not found" in info.value.message
    with pytest.raises(TFServingError) as info:
        client.predict("esmm", instances=[{"item": "x"}])
    assert info.value.status == 400


def test_new_versions_load_on_refresh(served, trained, tmp_path):
    _, model_dir, model = trained
    base = str(tmp_path)
    export_saved_model(model, base, name="m", vocab_dir=model_dir,
                       warmup_rows=0)
    repository = ModelRepository(base)
    assert repository.models == {"m": 1}
    assert repository.refresh() == []
    export_saved_model(model, base, name="m", vocab_dir=model_dir,
                       warmup_rows=0)
    assert repository.refresh() == [("m", 2)]
    assert repository.get("m").version == 2
    with pytest.raises(TFServingError) as info:
        repository.get("m", 3)
    assert info.value.status == 404


def test_repository_errors(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        ModelRepository(str(tmp_path / "missing"))
    os.makedirs(tmp_path / "empty" / "m" / "1")
    with pytest.raises(ValueError, match="No SavedModels"):
        ModelRepository(str(tmp_path / "empty"))


def test_garbage_on_the_wire_gets_a_json_error(served):
    import socket

    host, port = served["url"]["lenient"].split("//")[1].split(":")
    for payload, status in [(b"NONSENSE\r\n\r\n", 400),
                            (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414)]:
        with socket.create_connection((host, int(port)), timeout=30) as s:
            s.sendall(payload)
            reply = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                reply += chunk
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.split(b" ")[1] == str(status).encode(), head
        assert "error" in json.loads(body)
    status_code, _ = _post(served["url"]["lenient"] + "/v1/models/esmm:predict",
                           {"instances": [ROW]})
    assert status_code == 200
