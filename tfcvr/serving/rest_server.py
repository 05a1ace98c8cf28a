"""A local server of TF Serving's REST API over exported SavedModels.

For development and tests without a TF Serving binary; production uses
`tensorflow/serving` on the same `saved_models/` directory (docs/serving.md).
Endpoints: `GET /v1/models/<name>[/versions/<v>]` (status),
`GET .../metadata`, `POST ...:predict`. Errors are TF Serving's
`{"error": "..."}` with a 4xx status for every bad request.

Under load every client gets an answer, never a reset: a listen backlog
sized for bursts holds new connections until they are accepted, one poller
thread watches every open connection (an idle keep-alive connection costs a
file descriptor, not a thread), each request that arrives waits in a
bounded queue for a fixed pool of worker threads, and when that queue is
full the request gets 503 with `Retry-After` at once. A connection is closed
by shutting down its sending side and draining what the client still sends
(closing a socket with unread bytes sends a TCP reset).
"""

import collections
import errno
import http.server
import json
import os
import queue
import re
import selectors
import socket
import sys
import threading
import time
import traceback

import tensorflow as tf

from tfcvr.features import wire
from tfcvr.serving.rest_codec import decode_predict_request
from tfcvr.serving.rest_codec import encode_predict_response
from tfcvr.serving.tf_serving_error import TFServingError

DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024
# How long a closed connection is drained before the socket is released.
_LINGER_SECONDS = 2.0
# How often the poller looks for idle or drained connections to close.
_SWEEP_SECONDS = 0.2
# accept() errors that mean "out of file descriptors or memory": retrying at
# once would spin, so accepting pauses briefly.
_ACCEPT_PAUSE_ERRNOS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS,
                        errno.ENOMEM)
_ACCEPT_PAUSE_SECONDS = 0.1

_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>[^/:]+))?"
    r"(?P<suffix>/metadata|:[A-Za-z]+)?$"
)


class _Connection:
    """One accepted client socket and where it stands."""

    __slots__ = ("sock", "address", "handler", "draining", "deadline")

    def __init__(self, sock, address):
        self.sock = sock
        self.address = address
        self.handler = None
        self.draining = False
        self.deadline = 0.0


class RestServer(http.server.HTTPServer):
    """TF Serving's REST API on a `ModelRepository`, on a bounded worker pool.

    Beyond TF Serving, by default (not `strict`) a request may leave out
    inputs or send `null` (they take the missing-value marker, hence the
    training default inside the model) and send lists of unequal lengths
    (they are padded); with `strict` such requests get 400 as in TF Serving.

    Load: at most `workers` requests run at once and at most `max_queued`
    wait; a request beyond that gets 503 with `Retry-After: retry_after`.
    At most `max_connections` connections are open; further ones wait in
    the kernel's listen queue (`backlog`, capped by `net.core.somaxconn`).

    Args:
        repository: `tfcvr.serving.model_repository.ModelRepository`.
        host: str. Interface to bind. Defaults to `"127.0.0.1"`.
        port: int. 0 picks a free port (see `port`). Defaults to 8501.
        strict: bool. Refuse what TF Serving refuses. Defaults to False.
        max_request_bytes: int. Larger bodies get 413. Defaults to 16 MiB.
        access_log: bool. Log every request to stderr. Defaults to False.
        idle_timeout: float. Seconds a connection may wait between
            requests before it is closed. Defaults to 30.
        read_timeout: float. Seconds a request body may take to arrive in
            full (then 408), and each read of the headers or write of the
            reply. Defaults to 10.
        workers: int or None. Threads that run requests. None means
            `min(32, cpu count + 4)`.
        max_queued: int. Requests that may wait for a worker. Defaults to
            256.
        backlog: int. Listen backlog, for bursts of new connections.
            Defaults to 1024.
        max_connections: int. Open connections at most. Defaults to 1024.
        retry_after: int. Seconds in the `Retry-After` of a 503. Defaults
            to 1.
    """

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
        read_timeout=10.0,
        workers=None,
        max_queued=256,
        backlog=1024,
        max_connections=1024,
        retry_after=1,
    ):
        if workers is None:
            workers = min(32, (os.cpu_count() or 1) + 4)
        for name, value, low in [
            ("max_request_bytes", max_request_bytes, 1),
            ("workers", workers, 1),
            ("max_queued", max_queued, 1),
            ("backlog", backlog, 1),
            ("max_connections", max_connections, 1),
            ("retry_after", retry_after, 0),
        ]:
            if isinstance(value, bool) or not isinstance(value, int) or (
                value < low
            ):
                raise ValueError(
                    f"{name} must be an int >= {low}. Received: "
                    f"{name}={value!r}"
                )
        for name, value in [("idle_timeout", idle_timeout),
                            ("read_timeout", read_timeout)]:
            if not (isinstance(value, (int, float)) and 0 < value < 1e9):
                raise ValueError(
                    f"{name} must be a positive number of seconds. "
                    f"Received: {name}={value!r}"
                )
        self.repository = repository
        self.strict = strict
        self.max_request_bytes = max_request_bytes
        self.access_log = access_log
        self.idle_timeout = float(idle_timeout)
        self.read_timeout = float(read_timeout)
        self.workers = workers
        self.max_queued = max_queued
        self.backlog = backlog
        self.max_connections = max_connections
        self.retry_after = retry_after
        self.stopping = False
        self.refused = 0
        self._work = queue.Queue(maxsize=max_queued)
        self._handed_back = collections.deque()
        self._lock = threading.Lock()
        self._open = 0
        self._busy = 0
        self._done = threading.Event()
        self._done.set()
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._wake_writer.setblocking(False)
        self._busy_reply = _busy_reply(max_queued, retry_after)
        # server_activate() listens with it.
        self.request_queue_size = backlog
        try:
            super().__init__((host, port), _Handler)
        except BaseException:
            self._wake_reader.close()
            self._wake_writer.close()
            raise

    @property
    def port(self):
        return self.server_address[1]

    @property
    def url(self):
        host = self.server_address[0]
        return f"http://{host}:{self.port}"

    @property
    def queued(self):
        """Requests waiting for a worker."""
        return self._work.qsize()

    @property
    def busy(self):
        """Workers running a request."""
        with self._lock:
            return self._busy

    @property
    def open_connections(self):
        with self._lock:
            return self._open

    # === Life cycle ===

    def serve_forever(self, poll_interval=0.5):
        """Serves until `stop()`; then queued and running requests finish
        (answered with `Connection: close`) and idle connections close."""
        self._done.clear()
        threads = [
            threading.Thread(target=self._work_loop, daemon=True,
                             name=f"tfcvr-serve-worker-{i}")
            for i in range(self.workers)
        ]
        try:
            for thread in threads:
                thread.start()
            self._poll(min(poll_interval, _SWEEP_SECONDS))
        finally:
            for thread in threads:
                if thread.is_alive():
                    self._work.put(None)
            for thread in threads:
                thread.join()
            while self._handed_back:
                self._close(self._handed_back.popleft())
            self._done.set()

    def shutdown(self):
        """Makes `serve_forever` return, and waits until it has."""
        self.stopping = True
        self._wake()
        self._done.wait()

    def stop(self):
        """Stops accepting requests, lets queued and running ones finish,
        closes idle keep-alive connections. Safe to call from a signal
        handler thread."""
        self.shutdown()

    def server_close(self):
        super().server_close()
        self._wake_reader.close()
        self._wake_writer.close()

    # === The poller: accepts, watches idle and closing connections ===

    def _poll(self, timeout):
        selector = selectors.DefaultSelector()
        selector.register(self._wake_reader, selectors.EVENT_READ, None)
        self.socket.setblocking(False)
        accepting = False
        paused_until = 0.0
        next_sweep = 0.0
        try:
            while not self.stopping:
                now = time.monotonic()
                want = (self.open_connections < self.max_connections
                        and now >= paused_until)
                if want != accepting:
                    if want:
                        selector.register(self.socket, selectors.EVENT_READ,
                                          self)
                    else:
                        selector.unregister(self.socket)
                    accepting = want
                for key, _ in selector.select(timeout):
                    if key.data is None:
                        self._take_back(selector)
                    elif key.data is self:
                        if not self._accept(selector):
                            paused_until = (
                                time.monotonic() + _ACCEPT_PAUSE_SECONDS
                            )
                    else:
                        self._readable(selector, key.data)
                now = time.monotonic()
                if now >= next_sweep:
                    self._sweep(selector, now)
                    next_sweep = now + _SWEEP_SECONDS
        finally:
            for key in list(selector.get_map().values()):
                if isinstance(key.data, _Connection):
                    self._close(key.data)
            selector.close()

    def _accept(self, selector):
        """Accepts what the backlog holds; False when out of resources."""
        while self.open_connections < self.max_connections:
            try:
                sock, address = self.socket.accept()
            except BlockingIOError:
                return True
            except OSError as e:
                return e.errno not in _ACCEPT_PAUSE_ERRNOS
            with self._lock:
                self._open += 1
            self._watch(selector, _Connection(sock, address))
        return True

    def _watch(self, selector, connection):
        timeout = _LINGER_SECONDS if connection.draining else (
            self.idle_timeout
        )
        connection.deadline = time.monotonic() + timeout
        selector.register(connection.sock, selectors.EVENT_READ, connection)

    def _readable(self, selector, connection):
        if connection.draining:
            try:
                data = connection.sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                selector.unregister(connection.sock)
                self._close(connection)
            return
        selector.unregister(connection.sock)
        try:
            # A client that closed its idle connection must not take a
            # place in the queue (or be refused).
            first = connection.sock.recv(
                1, socket.MSG_PEEK | socket.MSG_DONTWAIT
            )
        except BlockingIOError:
            selector.register(connection.sock, selectors.EVENT_READ,
                              connection)
            return
        except OSError:
            first = b""
        if not first:
            self._close(connection)
            return
        try:
            self._work.put_nowait(connection)
        except queue.Full:
            self._refuse(selector, connection)

    def _refuse(self, selector, connection):
        self.refused += 1
        connection.sock.setblocking(False)
        try:
            # A few hundred bytes into an idle socket's empty send buffer.
            connection.sock.send(self._busy_reply)
        except OSError:
            pass
        self._start_draining(connection)
        self._watch(selector, connection)

    def _start_draining(self, connection):
        connection.draining = True
        try:
            connection.sock.shutdown(socket.SHUT_WR)
            connection.sock.setblocking(False)
        except OSError:
            pass

    def _sweep(self, selector, now):
        for key in list(selector.get_map().values()):
            connection = key.data
            if isinstance(connection, _Connection) and (
                connection.deadline <= now
            ):
                selector.unregister(connection.sock)
                self._close(connection)

    def _take_back(self, selector):
        try:
            while self._wake_reader.recv(4096):
                pass
        except OSError:
            pass
        while self._handed_back:
            self._watch(selector, self._handed_back.popleft())

    def _wake(self):
        try:
            self._wake_writer.send(b"\0")
        except OSError:
            # Full (the poller is awake anyway) or closed.
            pass

    def _close(self, connection):
        if connection.handler is not None:
            try:
                connection.handler.finish()
            except OSError:
                pass
        try:
            connection.sock.close()
        except OSError:
            pass
        with self._lock:
            self._open -= 1

    # === The workers ===

    def _work_loop(self):
        while True:
            connection = self._work.get()
            if connection is None:
                return
            with self._lock:
                self._busy += 1
            try:
                self._serve(connection)
            finally:
                with self._lock:
                    self._busy -= 1

    def _serve(self, connection):
        """Answers the requests a connection has sent, then hands it back
        to the poller: to wait for the next one, or to be closed."""
        try:
            connection.sock.settimeout(self.read_timeout)
            if connection.handler is None:
                connection.handler = _Handler(
                    connection.sock, connection.address, self
                )
            handler = connection.handler
            while True:
                handler.handle_one_request()
                if handler.close_connection or self.stopping:
                    break
                if not handler.has_pending_bytes():
                    self._hand_back(connection)
                    return
        except OSError:
            pass  # The client reset or closed the connection mid-request.
        except Exception:  # A bug must not kill a worker.
            traceback.print_exc(file=sys.stderr)
        self._start_draining(connection)
        self._hand_back(connection)

    def _hand_back(self, connection):
        if self.stopping:
            self._close(connection)
            return
        self._handed_back.append(connection)
        self._wake()


def _busy_reply(max_queued, retry_after):
    """The 503 a request gets when `max_queued` requests already wait."""
    body = json.dumps({
        "error": f"The server is busy: {max_queued} requests are waiting. "
                 f"Retry after {retry_after} s."
    }).encode("utf-8")
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        f"Server: {_Handler.server_version}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Retry-After: {retry_after}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tfcvr-serve"
    # Garbage request lines would otherwise get an HTTP/0.9 reply: a body
    # with no status line.
    default_request_version = "HTTP/1.0"
    # Headers and body are two writes; with Nagle's algorithm the body
    # waits for the client's delayed ACK (~40 ms per request).
    disable_nagle_algorithm = True

    def __init__(self, request, client_address, server):
        # The base class would serve the whole connection here, in one
        # thread; the server's workers call handle_one_request per request.
        self.request = request
        self.client_address = client_address
        self.server = server
        self.close_connection = True
        self.setup()

    def parse_request(self):
        try:
            ok = super().parse_request()
        except TimeoutError:
            self.close_connection = True
            self._error(
                408, f"The request headers did not arrive within "
                f"{self.server.read_timeout:g} s.",
            )
            return False
        if self.server.stopping:
            self.close_connection = True
        return ok

    def has_pending_bytes(self):
        """Whether the client has sent more (a pipelined request): bytes
        already in `rfile`'s buffer are invisible to the poller."""
        self.connection.setblocking(False)
        try:
            return bool(self.rfile.peek(1))
        finally:
            self.connection.settimeout(self.server.read_timeout)

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
        except OSError:
            # The client left or stopped reading; nothing to tell it.
            self.close_connection = True

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
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
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
            if length > self.server.max_request_bytes:
                self.close_connection = True
            elif length:
                self._read_body(length)
        except TFServingError:
            # The reply to the request itself says more than a body error.
            self.close_connection = True

    def _read_body(self, length):
        """Exactly `length` bytes, within `read_timeout` in all."""
        timeout = self.server.read_timeout
        deadline = time.monotonic() + timeout
        chunks = []
        received = 0
        try:
            while received < length:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                self.connection.settimeout(left)
                chunk = self.rfile.read1(length - received)
                if not chunk:
                    break
                chunks.append(chunk)
                received += len(chunk)
        except TimeoutError:
            self.close_connection = True
            raise TFServingError(
                f"Request timeout: {received} of the {length} body bytes "
                f"announced by Content-Length arrived within {timeout:g} s.",
                status=408,
            ) from None
        finally:
            self.connection.settimeout(timeout)
        if received < length:
            self.close_connection = True
            raise TFServingError(
                f"The request body is truncated: the connection closed after "
                f"{received} of the {length} bytes announced by "
                f"Content-Length.", status=400,
            )
        return b"".join(chunks)

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
        data = self._read_body(length)
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
