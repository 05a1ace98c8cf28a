"""Serve exported SavedModels over TF Serving's REST API (local server).

For development and tests: the same endpoints and JSON as TF Serving
(`/v1/models/<name>[/versions/<v>][:predict|/metadata]`) on the
`saved_models/` layout that `tfcvr export` writes. Binds to 127.0.0.1
unless `--host` says otherwise; stops cleanly on SIGTERM or Ctrl-C.
"""

import signal
import sys
import threading

from tfcvr.cli.cli_error import CLIError
from tfcvr.serving.model_repository import ModelRepository
from tfcvr.serving.rest_server import RestServer
from tfcvr.serving.tf_serving_error import TFServingError

DEFAULT_PORT = 8501


def add_arguments(parser):
    parser.add_argument("--model-base", required=True,
                        help="directory of <name>/<version>/ SavedModels "
                             "(e.g. saved_models)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port (default {DEFAULT_PORT}; 0 picks a free "
                             "one, printed at startup)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (default 127.0.0.1; 0.0.0.0 "
                             "exposes the server to the network)")
    parser.add_argument("--model", action="append", default=None,
                        metavar="NAME",
                        help="serve only this model (repeatable; default: "
                             "every model under --model-base)")
    parser.add_argument("--strict", action="store_true",
                        help="refuse what TF Serving refuses: absent "
                             "inputs, null values, ragged lists")
    parser.add_argument("--max-request-bytes", type=int,
                        default=16 * 1024 * 1024,
                        help="larger request bodies get 413 (default 16 MiB)")
    parser.add_argument("--poll-seconds", type=float, default=0.0,
                        help="look for new versions this often (default 0: "
                             "never)")
    parser.add_argument("--access-log", action="store_true",
                        help="log every request to stderr")
    parser.add_argument("--workers", type=int, default=None,
                        help="threads that run requests (default: CPU "
                             "count + 4, at most 32)")
    parser.add_argument("--max-queued", type=int, default=256,
                        help="requests that may wait for a worker; beyond "
                             "that, 503 with Retry-After (default 256)")
    parser.add_argument("--read-timeout", type=float, default=10.0,
                        help="seconds a request body may take to arrive; "
                             "then 408 (default 10)")


def _poll(repository, seconds, stopped):
    while not stopped.wait(seconds):
        try:
            for name, version in repository.refresh():
                print(f"tfcvr serve: loaded {name} version {version}",
                      flush=True)
        except Exception as e:  # Keep serving what is loaded.
            print(f"tfcvr serve: refresh failed: {e}", file=sys.stderr,
                  flush=True)


def run(args):
    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port must be in 0..65535. Received: {args.port}")
    if args.max_request_bytes < 1:
        raise CLIError(
            f"--max-request-bytes must be >= 1. Received: "
            f"{args.max_request_bytes}"
        )
    if args.poll_seconds < 0:
        raise CLIError(
            f"--poll-seconds must be >= 0. Received: {args.poll_seconds}"
        )
    try:
        repository = ModelRepository(args.model_base, models=args.model)
    except TFServingError as e:
        raise CLIError(e.message) from None
    try:
        server = RestServer(
            repository,
            host=args.host,
            port=args.port,
            strict=args.strict,
            max_request_bytes=args.max_request_bytes,
            access_log=args.access_log,
            workers=args.workers,
            max_queued=args.max_queued,
            read_timeout=args.read_timeout,
        )
    except OSError as e:
        raise CLIError(
            f"cannot listen on {args.host}:{args.port}: {e.strerror or e}"
        ) from None

    def stop(signum, frame):
        # shutdown() waits for serve_forever, which runs in this thread.
        threading.Thread(target=server.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    stopped = threading.Event()
    if args.poll_seconds > 0:
        threading.Thread(
            target=_poll, args=(repository, args.poll_seconds, stopped),
            daemon=True,
        ).start()
    models = ", ".join(
        f"{name} (version {version})"
        for name, version in sorted(repository.models.items())
    )
    print(f"tfcvr serve: {models}", flush=True)
    print(f"tfcvr serve: listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    finally:
        stopped.set()
        server.server_close()
    print("tfcvr serve: stopped", flush=True)
    return 0
