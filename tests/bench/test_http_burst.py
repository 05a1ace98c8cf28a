import http.server
import socket
import struct
import threading

import pytest

from tfcvr.bench.http_burst import http_burst


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        body = b"{}"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        if status == 503:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def stub_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.statuses = []
    # A short poll: `shutdown` waits up to one poll interval (0.5 s by
    # default).
    thread = threading.Thread(target=server.serve_forever,
                              kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_every_reply_is_counted_by_status(stub_server):
    # Two 503s (each closing its connection): answered all the same.
    stub_server.statuses = [503, 503]
    result = http_burst("127.0.0.1", stub_server.server_address[1], "/p",
                        b"{}", clients=8, requests=3)
    assert result["answered"] == 24
    assert result["statuses"] == {200: 22, 503: 2}
    assert result["resets"] == result["errors"] == 0
    assert 0 < result["p50_ms"] <= result["p99_ms"]


def test_resets_are_counted_apart_from_other_errors():
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def reset_everything():
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            sock.recv(65536)
            # Linger 0: close() sends a reset instead of a FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
            sock.close()

    thread = threading.Thread(target=reset_everything, daemon=True)
    thread.start()
    try:
        result = http_burst("127.0.0.1", port, "/p", b"{}", clients=4,
                            requests=2)
    finally:
        stop.set()
        thread.join(timeout=10)
        listener.close()
    assert result["answered"] == 0 and result["statuses"] == {}
    assert result["resets"] == 8 and result["errors"] == 0
    assert "p50_ms" not in result
    assert len(result["error_examples"]) == 3


def test_a_port_nobody_listens_on_is_an_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = http_burst("127.0.0.1", port, "/p", b"{}", clients=2, requests=2)
    assert result["errors"] == 4 and result["resets"] == 0
    assert "ConnectionRefusedError" in result["error_examples"][0]


def test_sizes_are_validated():
    with pytest.raises(ValueError, match="clients=0"):
        http_burst("127.0.0.1", 1, "/p", b"{}", clients=0, requests=1)
