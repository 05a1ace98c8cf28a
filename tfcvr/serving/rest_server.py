"""A local server of TF Serving's REST API over exported SavedModels.

For development and tests without a TF Serving binary; production uses
`tensorflow/serving` on the same `saved_models/` directory (docs/serving.md).
Endpoints: `GET /v1/models/<name>[/versions/<v>]` (status),
`GET .../metadata`, `POST ...:predict`. Errors are TF Serving's
`{"error": "..."}` with a 4xx status for every bad request.
"""

import http.server
import json
import re
import socket
import sys
import threading
import traceback

import tensorflow as tf

from tfcvr.features import wire
from tfcvr.serving.rest_codec import decode_predict_request
from tfcvr.serving.rest_codec import encode_predict_response
from tfcvr.serving.tf_serving_error import TFServingError

DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024

_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<suffix>/metadata|:[A-Za-z]+)?$"
)


class RestServer(http.server.ThreadingHTTPServer):
    """TF Serving's REST API on a `ModelRepository`, one thread per client.

    Beyond TF Serving, by default (not `strict`) a request may leave out
    inputs or send `null` (they take the missing-value marker, hence the
    training default inside the model) and send lists of unequal lengths
    (they are padded); with `strict` such requests get 400 as in TF Serving.

    Args:
        repository: `tfcvr.serving.model_repository.ModelRepository`.
        host: str. Interface to bind. Defaults to `"127.0.0.1"`.
        port: int. 0 picks a free port (see `port`). Defaults to 8501.
        strict: bool. Refuse what TF Serving refuses. Defaults to False.
        max_request_bytes: int. Larger bodies get 413. Defaults to 16 MiB.
        access_log: bool. Log every request to stderr. Defaults to False.
        idle_timeout: float. Seconds a keep-alive connection may idle.
    """

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(
        self,
        repository,
        host="127.0.0.1",
        port=8501,
        strict=False,
        max_request_bytes=DEFAULT_MAX_REQUEST_BYTES,
        access_log=False,
        idle_timeout=30.0,
    ):
        if max_request_bytes < 1:
            raise ValueError(
                f"max_request_bytes must be >= 1. Received: "
                f"max_request_bytes={max_request_bytes}"
            )
        self.repository = repository
        self.strict = strict
        self.max_request_bytes = max_request_bytes
        self.access_log = access_log
        self.idle_timeout = idle_timeout
        self.stopping = False
        self._connections = {}
        self._connections_lock = threading.Lock()
        super().__init__((host, port), _Handler)

    @property
    def port(self):
        return self.server_address[1]

    @property
    def url(self):
        host = self.server_address[0]
        return f"http://{host}:{self.port}"

    def stop(self):
        """Stops accepting requests, lets running ones finish, closes idle
        keep-alive connections. Safe to call from a signal handler thread."""
        self.stopping = True
        with self._connections_lock:
            for connection, busy in list(self._connections.items()):
                if not busy:
                    try:
                        connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
        self.shutdown()

    # === Connection bookkeeping for graceful shutdown ===

    def _track(self, connection, busy):
        with self._connections_lock:
            if busy is None:
                self._connections.pop(connection, None)
            else:
                self._connections[connection] = busy


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tfcvr-serve"
    # Garbage request lines would otherwise get an HTTP/0.9 reply: a body
    # with no status line.
    default_request_version = "HTTP/1.0"
    # Headers and body are two writes; with Nagle's algorithm the body
    # waits for the client's delayed ACK (~40 ms per request).
    disable_nagle_algorithm = True

    def setup(self):
        super().setup()
        # A connection accepted while stopping gets little time to speak.
        self.connection.settimeout(
            1.0 if self.server.stopping else self.server.idle_timeout
        )
        self.server._track(self.connection, False)

    def finish(self):
        self.server._track(self.connection, None)
        super().finish()

    def parse_request(self):
        self.server._track(self.connection, True)
        ok = super().parse_request()
        if self.server.stopping:
            self.close_connection = True
        return ok

    def log_message(self, format, *args):
        if self.server.access_log:
            super().log_message(format, *args)

    # === Replies ===

    def _reply(self, status, payload):
        body = json.dumps(payload, allow_nan=True).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection or self.server.stopping:
            self.send_header("Connection", "close")
            self.close_connection = True
        try:
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            # The client left; nothing to tell it.
            self.close_connection = True
        self.server._track(self.connection, False)

    def _error(self, status, message):
        self._reply(status, {"error": message})

    def send_error(self, code, message=None, explain=None):
        # http.server's own errors (bad request line, 414, ...) in TF
        # Serving's JSON shape.
        self.close_connection = True
        try:
            self._error(code, message or self.responses.get(code, ("",))[0])
        except OSError:
            pass

    # === Routing ===

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def _other_method(self):
        self._discard_body()
        self.close_connection = True
        self._error(405, f"Method {self.command} is not supported.")

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _other_method

    def _dispatch(self, method):
        try:
            self._route(method)
        except TFServingError as e:
            self._error(e.status or 500, e.message)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # A bug must not kill the server.
            traceback.print_exc(file=sys.stderr)
            self.close_connection = True
            self._error(500, f"Internal error: {type(e).__name__}: {e}")

    def _route(self, method):
        path = self.path.split("?", 1)[0]
        match = _PATH.match(path)
        if match is None:
            self._discard_body()
            raise TFServingError(
                f"Malformed request: {method} {self.path}", status=404
            )
        if match["label"] is not None:
            self._discard_body()
            raise TFServingError(
                "Version labels are not supported by tfcvr serve; use "
                "/versions/<n>.", status=400,
            )
        name, suffix = match["name"], match["suffix"]
        version = None
        if match["version"] is not None:
            if not match["version"].isdigit():
                self._discard_body()
                raise TFServingError(
                    f"Version must be a number. Received: {match['version']}",
                    status=400,
                )
            version = int(match["version"])
        if suffix == ":predict":
            if method != "POST":
                self._discard_body()
                raise TFServingError(":predict needs POST.", status=405)
            body = self._read_json()
            self._reply(200, self._predict(name, version, body))
            return
        if suffix in (":classify", ":regress"):
            self._discard_body()
            raise TFServingError(
                f"{suffix[1:]} is not supported: tfcvr SavedModels have "
                f"predict signatures.", status=400,
            )
        if suffix not in (None, "/metadata"):
            self._discard_body()
            raise TFServingError(
                f"Malformed request: {method} {self.path}", status=404
            )
        if method != "GET":
            self._discard_body()
            raise TFServingError(f"{path} needs GET.", status=405)
        self._discard_body()
        repository = self.server.repository
        if suffix == "/metadata":
            self._reply(200, repository.metadata(name, version))
        else:
            self._reply(200, repository.status(name, version))

    # === Bodies ===

    def _content_length(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise TFServingError(
                "Chunked bodies are not supported; send Content-Length.",
                status=411,
            )
        value = self.headers.get("Content-Length")
        if value is None:
            return 0
        if not value.isdigit():
            self.close_connection = True
            raise TFServingError(
                f"Invalid Content-Length: {value!r}", status=400
            )
        return int(value)

    def _discard_body(self):
        try:
            length = self._content_length()
        except TFServingError:
            return
        if length > self.server.max_request_bytes:
            self.close_connection = True
        elif length:
            self.rfile.read(length)

    def _read_json(self):
        length = self._content_length()
        if length > self.server.max_request_bytes:
            # The body stays unread, so the connection cannot be reused.
            self.close_connection = True
            raise TFServingError(
                f"Request body of {length} bytes exceeds the limit of "
                f"{self.server.max_request_bytes} bytes.", status=413,
            )
        if length == 0:
            raise TFServingError(
                "The request has no body; send a JSON object.", status=400
            )
        data = self.rfile.read(length)
        if len(data) < length:
            self.close_connection = True
            raise TFServingError("The request body is truncated.", status=400)
        try:
            body = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise TFServingError(f"JSON Parse error: {e}", status=400) from None
        except RecursionError:
            raise TFServingError(
                "JSON Parse error: nested too deeply.", status=400
            ) from None
        if not isinstance(body, dict):
            raise TFServingError(
                "The request body must be a JSON object.", status=400
            )
        return body

    # === Predict ===

    def _predict(self, name, version, body):
        servable = self.server.repository.get(name, version)
        signature_name = body.get("signature_name") or (
            wire.SERVING_DEFAULT
        )
        if not isinstance(signature_name, str):
            raise TFServingError("signature_name must be a string.", status=400)
        if signature_name not in servable.functions:
            raise TFServingError(
                f'Serving signature name: "{signature_name}" not found in '
                f"signature def. Available: {sorted(servable.functions)}",
                status=400,
            )
        arrays, row_format = decode_predict_request(
            body, servable.specs[signature_name], strict=self.server.strict
        )
        try:
            outputs = servable.run(signature_name, arrays)
        except tf.errors.InvalidArgumentError as e:
            raise TFServingError(_first_line(e.message), status=400) from None
        except tf.errors.OpError as e:
            raise TFServingError(_first_line(e.message), status=500) from None
        except UnicodeDecodeError:
            # TF could not decode its own error message: it quotes the
            # request's binary input (e.g. an unparsable serialized Example).
            raise TFServingError(
                "Invalid argument: the model could not read the input (it "
                "holds binary data TensorFlow rejected).", status=400,
            ) from None
        return encode_predict_response(outputs, row_format)


def _first_line(message):
    lines = [l.strip() for l in str(message).strip().splitlines() if l.strip()]
    for line in lines:
        # Graph assertions read "assertion failed: [message]".
        found = re.search(r"assertion failed: \[(.*)\]", line)
        if found:
            return found.group(1)
    return lines[0] if lines else "Invalid argument"
