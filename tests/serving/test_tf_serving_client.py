"""Client behaviour against small stand-in HTTP servers (no TensorFlow)."""

import http.server
import json
import math
import socket
import threading
import time

import pytest

from tfcvr.serving import TFServingClient
from tfcvr.serving import TFServingError

METADATA = {
    "model_spec": {"name": "m", "signature_name": "", "version": "3"},
    "metadata": {"signature_def": {"signature_def": {"serving_default": {
        "inputs": {
            "item": {"dtype": "DT_INT64",
                     "tensor_shape": {"dim": [{"size": "-1"}]}},
            "city": {"dtype": "DT_STRING",
                     "tensor_shape": {"dim": [{"size": "-1"}]}},
            "price": {"dtype": "DT_FLOAT",
                      "tensor_shape": {"dim": [{"size": "-1"}]}},
            "tags": {"dtype": "DT_STRING", "tensor_shape": {
                "dim": [{"size": "-1"}, {"size": "-1"}]}},
            "history": {"dtype": "DT_INT64", "tensor_shape": {
                "dim": [{"size": "-1"}, {"size": "-1"}]}},
        },
        "outputs": {},
        "method_name": "tensorflow/serving/predict",
    }}}},
}


class _Stub:
    """A scripted server: `replies` is a list of (status, body, delay)."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.requests = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                stub.requests.append((self.command, self.path, body))
                status, payload, delay = stub.replies.pop(0) if (
                    len(stub.replies) > 1) else stub.replies[0]
                time.sleep(delay)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # A short poll: `shutdown` waits up to one poll interval (0.5 s by
        # default, in every test's teardown).
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.01},
                                       daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    stubs = []

    def make(*replies):
        s = _Stub(replies)
        stubs.append(s)
        return s

    yield make
    for s in stubs:
        s.close()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_predict_row_format_paths_and_body(stub):
    server = stub((200, {"predictions": [{"ctr": 0.5}]}, 0))
    client = TFServingClient(server.url, fill_missing=False)
    assert client.predict("m", instances=[{"item": 1}]) == [{"ctr": 0.5}]
    assert client.predict("m", instances=[{"item": 1}], version=7,
                          signature_name="predict_examples") == [{"ctr": 0.5}]
    (m1, p1, b1), (m2, p2, b2) = server.requests
    assert (m1, p1) == ("POST", "/v1/models/m:predict")
    assert json.loads(b1) == {"instances": [{"item": 1}]}
    assert p2 == "/v1/models/m/versions/7:predict"
    assert json.loads(b2)["signature_name"] == "predict_examples"


def test_columnar_format_returns_outputs(stub):
    server = stub((200, {"outputs": {"ctr": [0.1, 0.2]}}, 0))
    client = TFServingClient(server.url, fill_missing=False)
    assert client.predict("m", inputs={"item": [1, 2]}) == {"ctr": [0.1, 0.2]}
    assert json.loads(server.requests[0][2]) == {"inputs": {"item": [1, 2]}}


def test_fill_missing_completes_rows_from_metadata(stub):
    server = stub((200, METADATA, 0), (200, {"predictions": []}, 0))
    client = TFServingClient(server.url)
    client.predict("m", instances=[
        {"item": 5, "history": [1, 2, 3], "tags": ["a"]},
        {"item": 6, "city": None, "price": 2.0},
    ])
    client.predict("m", instances=[{"item": 7}])
    methods = [(m, p) for m, p, _ in server.requests]
    # Metadata is fetched once and cached.
    assert methods == [("GET", "/v1/models/m/metadata"),
                       ("POST", "/v1/models/m:predict"),
                       ("POST", "/v1/models/m:predict")]
    sent = json.loads(server.requests[1][2])["instances"]
    assert sent[0]["city"] == "" and math.isnan(sent[0]["price"])
    assert sent[0]["history"] == [1, 2, 3]
    assert sent[1]["history"] == [-1, -1, -1]
    assert sent[0]["tags"] == ["a"] and sent[1]["tags"] == [""]
    assert sent[1]["city"] == "" and sent[1]["price"] == 2.0


def test_fill_missing_columnar(stub):
    server = stub((200, METADATA, 0), (200, {"outputs": {}}, 0))
    client = TFServingClient(server.url)
    client.predict("m", inputs={"item": [1, 2], "history": [[4], [5, 6]]})
    sent = json.loads(server.requests[1][2])["inputs"]
    assert sent["item"] == [1, 2]
    assert sent["city"] == ["", ""]
    assert sent["history"] == [[4, -1], [5, 6]]
    assert sent["tags"] == [[""], [""]]
    assert all(math.isnan(v) for v in sent["price"])


def test_bytes_are_sent_as_b64(stub):
    server = stub((200, {"predictions": [1]}, 0))
    client = TFServingClient(server.url, fill_missing=False)
    client.predict("m", instances=[b"\x00\xff"],
                   signature_name="predict_examples")
    assert json.loads(server.requests[0][2])["instances"] == [{"b64": "AP8="}]


def test_error_reply_raises_with_the_message_and_no_retry(stub):
    server = stub((400, {"error": "Input `item` expects integers"}, 0))
    client = TFServingClient(server.url, retries=3, fill_missing=False)
    with pytest.raises(TFServingError) as info:
        client.predict("m", instances=[{"item": "x"}])
    assert info.value.status == 400
    assert info.value.message == "Input `item` expects integers"
    assert info.value.url.endswith("/v1/models/m:predict")
    assert len(server.requests) == 1


def test_unavailable_is_retried(stub):
    server = stub((503, {"error": "loading"}, 0), (200, {"predictions": [2]}, 0))
    client = TFServingClient(server.url, retries=2, backoff=0.01,
                             fill_missing=False)
    assert client.predict("m", instances=[1]) == [2]
    assert len(server.requests) == 2


def test_connection_errors_are_retried_then_raised():
    client = TFServingClient(f"http://127.0.0.1:{_free_port()}", retries=2,
                             backoff=0.01, timeout=2)
    with pytest.raises(TFServingError) as info:
        client.status("m")
    assert info.value.status is None
    assert "3 attempt(s)" in info.value.message


def test_timeouts_are_retried_then_raised(stub):
    server = stub((200, {"model_version_status": []}, 1.0))
    client = TFServingClient(server.url, timeout=0.2, retries=1, backoff=0.0)
    started = time.monotonic()
    with pytest.raises(TFServingError, match="2 attempt"):
        client.status("m")
    assert time.monotonic() - started < 3
    assert len(server.requests) == 2


def test_status_and_metadata_paths(stub):
    server = stub((200, {"model_version_status": [{"version": "3"}]}, 0))
    client = TFServingClient(server.url)
    client.status("m")
    client.status("m", version=3)
    client.metadata("m", version=3)
    assert [p for _, p, _ in server.requests] == [
        "/v1/models/m", "/v1/models/m/versions/3",
        "/v1/models/m/versions/3/metadata",
    ]


def test_wait_until_available(stub):
    server = stub(
        (404, {"error": "not yet"}, 0),
        (200, {"model_version_status": [{"version": "1",
                                         "state": "AVAILABLE"}]}, 0),
    )
    client = TFServingClient(server.url, retries=0)
    reply = client.wait_until_available("m", timeout=10)
    assert reply["model_version_status"][0]["state"] == "AVAILABLE"


@pytest.mark.parametrize("kwargs", [
    {"base_url": "localhost:8501"},
    {"timeout": 0},
    {"retries": -1},
    {"backoff": -1},
])
def test_constructor_validation(kwargs):
    args = {"base_url": "http://localhost:8501"}
    args.update(kwargs)
    with pytest.raises(ValueError):
        TFServingClient(**args)


def test_predict_argument_validation():
    client = TFServingClient("http://127.0.0.1:1")
    with pytest.raises(ValueError, match="exactly one"):
        client.predict("m")
    with pytest.raises(ValueError, match="exactly one"):
        client.predict("m", instances=[{}], inputs={})
    with pytest.raises(ValueError, match="non-empty"):
        client.predict("m", instances=[])
    with pytest.raises(ValueError, match="version"):
        client.status("m", version=-2)
