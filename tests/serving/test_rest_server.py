import base64
import contextlib
import http.client
import json
import os
import re
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import tensorflow as tf

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
        # A short read timeout, so a stalled request is answered quickly.
        "quick": _start(repository, read_timeout=0.5),
        # One worker and one waiting place: the third request gets 503.
        # The request its tests hold half-sent must outlast their waits on
        # a loaded machine (the default 10 s read timeout once ran out).
        "tiny": _start(repository, workers=1, max_queued=1, read_timeout=60),
    }
    yield {
        "models": {1: model, 2: newer},
        "model_dir": model_dir,
        "url": {k: s.url for k, (s, _) in servers.items()},
        "server": {k: s for k, (s, _) in servers.items()},
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


def _example_b64(features):
    """A serialized tf.train.Example of `{name: int or float}`, as b64."""
    feature = {
        name: tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))
        if isinstance(v, int)
        else tf.train.Feature(float_list=tf.train.FloatList(value=[v]))
        for name, v in features.items()
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return base64.b64encode(example.SerializeToString()).decode()


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
    # Numeric values the Beam job rejects as bad_numeric / bad_weight.
    ("lenient", "POST", "/v1/models/esmm:predict",
     b'{"instances": [{"item": 1002, "price": Infinity}]}', 400,
     "Input `price` needs a finite float32 number; got inf"),
    ("lenient", "POST", "/v1/models/esmm:predict",
     b'{"instances": [{"item": 1002, "price": -Infinity}]}', 400,
     "`price` needs a finite float32 number; got -inf"),
    ("lenient", "POST", "/v1/models/esmm:predict",
     b'{"instances": [{"item": 1002, "age": 1e308}]}', 400,
     "`age` needs a finite float32 number; got 1e+308"),
    ("lenient", "POST", "/v1/models/esmm:predict",
     b'{"inputs": {"item": [1002, 1003], "price": [1.0, 1e39]}}', 400,
     "`price` needs a finite float32 number; got 1e+39"),
    ("lenient", "POST", "/v1/models/esmm:predict",
     b'{"instances": [{"item": 1002, "history": [1001], '
     b'"history__weight": [Infinity]}]}', 400,
     "`history__weight` needs a finite float32 number; got inf"),
    ("strict", "POST", "/v1/models/esmm:predict",
     json.dumps({"instances": [dict(FULL_ROW, price=float("inf"))]}).encode(),
     400, "`price` needs a finite float32 number; got inf"),
    # In an Example the REST codec does not see the value: the SavedModel
    # refuses it (as it does under TF Serving).
    ("lenient", "POST", "/v1/models/esmm:predict",
     json.dumps({"signature_name": "predict_examples", "instances": [
         {"b64": _example_b64({"item": 1002, "price": float("inf")})}
     ]}).encode(), 400, "`price` needs a finite float32 number"),
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


# === Load, stalled requests, corrupt SavedModels ===

PREDICT = "/v1/models/esmm:predict"
BURST_CLIENTS = 64
BURST_REQUESTS = 3


def _address(served, server):
    host, port = served["url"][server].split("//")[1].split(":")
    return host, int(port)


def _head(length):
    return (
        f"POST {PREDICT} HTTP/1.1\r\nHost: test\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def _reply_on(sock):
    """The HTTP reply that arrives on a raw socket."""
    reply = http.client.HTTPResponse(sock)
    reply.begin()
    return reply, reply.read()


def _wait_until(condition, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still not {what} after {timeout}s")
        time.sleep(0.01)


def test_a_burst_of_concurrent_clients_is_all_answered(served):
    # 64 connections at once, then 3 requests each: far more than the
    # listen backlog of 5 that reset about half of a 200-client burst.
    # Even clients keep their connection alive, odd ones reconnect.
    host, port = _address(served, "lenient")
    body = json.dumps({"instances": [FULL_ROW]})
    headers = {"Content-Type": "application/json"}
    _, expected = _post(served["url"]["lenient"] + PREDICT,
                        {"instances": [FULL_ROW]})
    barrier = threading.Barrier(BURST_CLIENTS)
    replies, errors = [], []
    lock = threading.Lock()

    def client(index):
        try:
            barrier.wait(timeout=60)
            connection = http.client.HTTPConnection(host, port, timeout=30)
            for _ in range(BURST_REQUESTS):
                connection.request("POST", PREDICT, body=body, headers=headers)
                reply = connection.getresponse()
                payload = json.loads(reply.read())
                with lock:
                    replies.append((reply.status, payload))
                if index % 2:
                    connection.close()
            connection.close()
        except Exception as e:  # collected for the assertion below
            with lock:
                errors.append(repr(e))

    threads = [threading.Thread(target=client, args=(i,))
               for i in range(BURST_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors[:5]
    assert len(replies) == BURST_CLIENTS * BURST_REQUESTS
    assert all(r == (200, expected) for r in replies)


@contextlib.contextmanager
def _full_queue(served):
    """The `tiny` server with its only worker busy and its only waiting
    place taken; yields `release()`, after which both get 200."""
    server = served["server"]["tiny"]
    address = _address(served, "tiny")
    body = json.dumps({"instances": [FULL_ROW]}).encode()
    with socket.create_connection(address, timeout=30) as slow, \
            socket.create_connection(address, timeout=30) as waiting:
        # The only worker waits for the rest of this body ...
        slow.sendall(_head(len(body)) + body[:10])
        _wait_until(lambda: server.busy == 1, "busy")
        # ... and this request takes the only waiting place.
        waiting.sendall(_head(len(body)) + body)
        _wait_until(lambda: server.queued == 1, "queued")

        def release():
            slow.sendall(body[10:])
            for sock in (slow, waiting):
                reply, payload = _reply_on(sock)
                assert reply.status == 200, payload
                assert len(json.loads(payload)["predictions"]) == 1

        yield release


def test_a_full_queue_gets_503_with_retry_after(served):
    server = served["server"]["tiny"]
    body = json.dumps({"instances": [FULL_ROW]}).encode()
    refused = server.refused
    with _full_queue(served) as release:
        # The next request is refused at once, with a reply.
        with socket.create_connection(_address(served, "tiny"),
                                      timeout=30) as third:
            third.sendall(_head(len(body)) + body)
            reply, payload = _reply_on(third)
            assert third.recv(1) == b""  # closed cleanly, not reset
        assert reply.status == 503
        assert reply.getheader("Retry-After") == "1"
        assert reply.getheader("Connection") == "close"
        assert reply.getheader("Content-Type") == "application/json"
        assert "busy" in json.loads(payload)["error"]
        assert server.refused == refused + 1
        release()
    status, _ = _post(served["url"]["tiny"] + PREDICT,
                      {"instances": [FULL_ROW]})
    assert status == 200


def test_the_client_waits_retry_after_then_retries(served):
    server = served["server"]["tiny"]
    # No backoff of its own: only the server's Retry-After spaces retries.
    client = TFServingClient(served["url"]["tiny"], retries=2, backoff=0.0)
    client.input_specs("esmm")
    results = []
    with _full_queue(served) as release:
        refused = server.refused
        thread = threading.Thread(target=lambda: results.append(
            client.predict("esmm", instances=[FULL_ROW])))
        thread.start()
        _wait_until(lambda: server.refused == refused + 1, "refused")
        release()
        thread.join(timeout=60)
    assert len(results) == 1 and len(results[0]) == 1
    # Retrying at once would have met the full queue again.
    assert server.refused == refused + 1


def test_pipelined_requests_are_all_answered(served):
    # Both requests arrive in one packet: the second waits in the reader's
    # buffer, where the poller cannot see it.
    body = json.dumps({"instances": [FULL_ROW]}).encode()
    with socket.create_connection(_address(served, "lenient"),
                                  timeout=30) as sock:
        sock.sendall((_head(len(body)) + body) * 2)
        data, replies = b"", []
        while len(replies) < 2:
            head, sep, rest = data.partition(b"\r\n\r\n")
            length = re.search(rb"Content-Length: (\d+)", head) if sep else None
            if length and len(rest) >= int(length.group(1)):
                replies.append((head.split(b" ")[1], rest[:int(length.group(1))]))
                data = rest[int(length.group(1)):]
                continue
            chunk = sock.recv(65536)
            assert chunk, f"closed after {len(replies)} replies"
            data += chunk
    assert [status for status, _ in replies] == [b"200", b"200"]
    assert replies[0][1] == replies[1][1]


def test_a_body_shorter_than_content_length_gets_408(served, capfd):
    address = _address(served, "quick")
    start = b'{"instances": [{"item": 1002}'
    with socket.create_connection(address, timeout=10) as sock:
        # Ten times the read timeout is left to the reply; the old server
        # waited 30 s, then answered 500 with a traceback.
        sock.sendall(_head(100) + start)
        reply, payload = _reply_on(sock)
    assert reply.status == 408
    assert reply.getheader("Connection") == "close"
    error = json.loads(payload)["error"]
    assert f"{len(start)} of the 100 body bytes" in error
    assert "0.5 s" in error
    # A client that closes its side after a short body: 400, truncated.
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(_head(100) + start)
        sock.shutdown(socket.SHUT_WR)
        reply, payload = _reply_on(sock)
    assert reply.status == 400
    assert "truncated" in json.loads(payload)["error"]
    # Headers that never end: 408 as well.
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(f"POST {PREDICT} HTTP/1.1\r\nHost: test\r\n".encode())
        reply, payload = _reply_on(sock)
    assert reply.status == 408
    assert "headers" in json.loads(payload)["error"]
    assert "Traceback" not in capfd.readouterr().err
    status, _ = _post(served["url"]["quick"] + PREDICT,
                      {"instances": [FULL_ROW]})
    assert status == 200


def test_server_arguments_are_validated(served):
    repository = served["repository"]
    for kwargs, words in [
        ({"workers": 0}, "workers=0"),
        ({"max_queued": -1}, "max_queued=-1"),
        ({"backlog": 1.5}, "backlog=1.5"),
        ({"read_timeout": 0}, "read_timeout=0"),
        ({"idle_timeout": "30"}, "idle_timeout='30'"),
    ]:
        with pytest.raises(ValueError, match=re.escape(words)):
            RestServer(repository, port=0, **kwargs)


def test_corrupt_saved_models_are_named_corrupt(served, tmp_path):
    base = served["repository"].model_base
    for case in ("saved_model.pb", "variables"):
        target = tmp_path / case / "esmm"
        shutil.copytree(os.path.join(base, "esmm", "1"), target / "1")
        files = ([target / "1" / "saved_model.pb"] if case == "saved_model.pb"
                 else sorted((target / "1" / "variables").iterdir()))
        for path in files:
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 2])
        with pytest.raises(TFServingError) as info:
            ModelRepository(str(tmp_path / case))
        message = info.value.message
        assert "corrupt" in message and str(target / "1") in message
        assert "\n" not in message
