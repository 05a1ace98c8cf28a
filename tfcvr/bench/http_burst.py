"""A burst of HTTP clients on a server: are they all answered, and how fast?

The load pattern that reset about half of 200 clients on a server with
socketserver's listen backlog of 5: every client connects at the same
moment (a barrier), then sends its requests one after another on a
keep-alive connection, reconnecting when the server closes it (after a 503,
for instance). A reply of any status is an answer; a connection reset or
any other failure to get a reply is not.
"""

import collections
import http.client
import threading
import time

from tfcvr.bench.saved_model_timing import percentiles


def http_burst(host, port, path, body, clients, requests, timeout=60.0):
    """`clients` connections opened at once, `requests` POSTs on each.

    Args:
        host: str. Server host.
        port: int. Server port.
        path: str. E.g. `"/v1/models/esmm:predict"`.
        body: bytes. The JSON body of every request.
        clients: int. Concurrent clients.
        requests: int. Requests per client.
        timeout: float. Seconds a client waits for a reply.

    Returns:
        dict: `clients`, `requests_per_client`, `answered` (replies of any
        status), `statuses` (`{status: count}`), `resets` (connections
        reset or closed without a reply), `errors` (other failures: refused
        connections, timeouts), `error_examples` (up to 3), `seconds`, and
        `p50_ms`/`p99_ms`/`mean_ms` over the answered requests (a first
        request's time includes connecting).
    """
    if clients < 1 or requests < 1:
        raise ValueError(
            f"clients and requests must be >= 1. Received: clients={clients}, "
            f"requests={requests}"
        )
    headers = {"Content-Type": "application/json"}
    barrier = threading.Barrier(clients + 1)
    lock = threading.Lock()
    latencies = []
    statuses = collections.Counter()
    failures = {"resets": 0, "errors": 0}
    examples = []

    def failed(kind, error):
        with lock:
            failures[kind] += 1
            if len(examples) < 3:
                examples.append(f"{type(error).__name__}: {error}")

    def client():
        connection = None
        mine = []
        barrier.wait()
        for _ in range(requests):
            start = time.perf_counter()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(
                        host, port, timeout=timeout
                    )
                connection.request("POST", path, body=body, headers=headers)
                reply = connection.getresponse()
                reply.read()
            except ConnectionResetError as e:
                # http.client's RemoteDisconnected is one too: the server
                # closed the connection without a reply.
                failed("resets", e)
                connection = _closed(connection)
                continue
            except (OSError, http.client.HTTPException) as e:
                failed("errors", e)
                connection = _closed(connection)
                continue
            mine.append(time.perf_counter() - start)
            with lock:
                statuses[reply.status] += 1
            if reply.will_close:
                connection = _closed(connection)
        _closed(connection)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, daemon=True)
               for _ in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    result = dict(
        clients=clients,
        requests_per_client=requests,
        answered=len(latencies),
        statuses=dict(sorted(statuses.items())),
        resets=failures["resets"],
        errors=failures["errors"],
        error_examples=examples,
        seconds=seconds,
    )
    if latencies:
        result.update(percentiles(latencies))
    return result


def _closed(connection):
    if connection is not None:
        connection.close()
    return None
