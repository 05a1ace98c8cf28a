"""Serving latency and throughput of an exported SavedModel.

Three measurements on one SavedModel version:
- in process: `serving_default` (and `predict_examples`) called through
  `tf.saved_model.load`, batch 1, p50/p99 latency over many calls;
- in process: rows per second at a large batch (default 256);
- over HTTP on loopback: `tfcvr serve` in a subprocess, N concurrent
  clients on keep-alive connections sending row-format JSON, each bounded
  by a request count and a time limit; requests/s, rows/s and p50/p99;
- a burst on the same server (`--clients`): that many clients connect at
  the same moment and send `--burst-requests` requests each; p50/p99 and
  the count of replies by status, of resets and of other errors (every
  request must be answered: a reply, or a 503 when the queue is full).

Without `--saved-model`, a tiny model is trained and exported to a
temporary directory first (seconds), so the benchmark runs anywhere.
"""

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import tfcvr
from tfcvr.bench.http_burst import http_burst
from tfcvr.bench.saved_model_timing import percentiles
from tfcvr.bench.saved_model_timing import time_saved_model
from tfcvr.export.export_saved_model import existing_versions
from tfcvr.export.export_saved_model import export_saved_model
from tfcvr.export.sample_rows import synthetic_rows
from tfcvr.features import Schema
from tfcvr.testing.tiny_model import train_tiny_model
from tfcvr.testing.tiny_model import write_tiny_dataset_dir

PRESETS = {
    "smoke": {"iterations": 300, "throughput_seconds": 2.0,
              "http_clients": 2, "http_requests": 100, "http_seconds": 5.0,
              "burst_clients": 50, "burst_requests": 3},
    "paper": {"iterations": 3000, "throughput_seconds": 5.0,
              "http_clients": 4, "http_requests": 1000, "http_seconds": 20.0,
              "burst_clients": 200, "burst_requests": 10},
}
RESULT_FILE = "serving_benchmark.json"


def add_arguments(parser):
    parser.add_argument("--saved-model", default=None,
                        help="SavedModel version directory (or a model "
                             "directory: its latest version); default: "
                             "train and export a tiny model")
    parser.add_argument("--estimator", default="esmm",
                        help="estimator of the tiny model (no --saved-model)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="smoke",
                        help="counts and time limits (default smoke)")
    parser.add_argument("--iterations", type=int, default=None,
                        help="batch-1 calls timed in process")
    parser.add_argument("--batch-size", type=int, default=256,
                        help="batch of the throughput measurement")
    parser.add_argument("--throughput-seconds", type=float, default=None)
    parser.add_argument("--http-clients", type=int, default=None,
                        help="concurrent HTTP clients")
    parser.add_argument("--http-requests", type=int, default=None,
                        help="requests per HTTP client at most")
    parser.add_argument("--http-seconds", type=float, default=None,
                        help="time limit of the HTTP measurement")
    parser.add_argument("--http-batch", type=int, default=1,
                        help="rows per HTTP request")
    parser.add_argument("--clients", dest="burst_clients", type=int,
                        default=None,
                        help="clients of the burst, connecting at once "
                             "(default: the preset's, 50 for smoke)")
    parser.add_argument("--burst-requests", type=int, default=None,
                        help="requests per burst client")
    parser.add_argument("--no-http", action="store_true",
                        help="skip the HTTP measurements (steady and burst)")
    parser.add_argument("--out", default=None,
                        help=f"directory for {RESULT_FILE}")


def _settings(args):
    settings = dict(PRESETS[args.preset])
    for key in settings:
        value = getattr(args, key, None)
        if value is not None:
            settings[key] = value
    for key, flag in (("iterations", "--iterations"),
                      ("http_clients", "--http-clients"),
                      ("http_requests", "--http-requests"),
                      ("burst_clients", "--clients"),
                      ("burst_requests", "--burst-requests")):
        if settings[key] < 1:
            raise ValueError(f"{flag} must be >= 1. Received: {settings[key]}")
    if args.batch_size < 1 or args.http_batch < 1:
        raise ValueError("--batch-size and --http-batch must be >= 1.")
    return settings


def _resolve(path):
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return os.path.abspath(path)
    versions = existing_versions(path)
    if not versions:
        raise ValueError(f"No SavedModel at {path} or under it.")
    return os.path.abspath(os.path.join(path, str(versions[-1])))


def _tiny_saved_model(root, estimator):
    data = write_tiny_dataset_dir(os.path.join(root, "data"), rows=512)
    model_dir = os.path.join(root, "model")
    model = train_tiny_model(data, model_dir, estimator=estimator)
    return export_saved_model(model, os.path.join(root, "saved_models"),
                              name=estimator, vocab_dir=model_dir)


def _sample_rows(saved_model, n):
    with open(os.path.join(saved_model, "assets.extra",
                           "tfcvr_export.json")) as f:
        info = json.load(f)
    schema = Schema.from_dict(info["schema"])
    # Vocabulary files travel as SavedModel assets under their base names;
    # lay them out as the schema names them so rows hit the vocabulary.
    with tempfile.TemporaryDirectory() as vocab_dir:
        for f in schema.categorical_features:
            if f.vocab_file is None:
                continue
            asset = os.path.join(saved_model, "assets",
                                 os.path.basename(f.vocab_file))
            if os.path.exists(asset):
                target = os.path.join(vocab_dir, f.vocab_file)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy(asset, target)
        rows = synthetic_rows(
            schema, vocab_dir, n, seed=0, unseen_rate=0.05,
            keep_present=info["required_features"],
        )
    return schema, rows, info


def _start_server(saved_model):
    version_dir = saved_model
    model_path = os.path.dirname(version_dir)
    base, name = os.path.dirname(model_path), os.path.basename(model_path)
    root = os.path.dirname(os.path.dirname(os.path.abspath(tfcvr.__file__)))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    process = subprocess.Popen(
        [sys.executable, "-m", "tfcvr.cli.main", "serve", "--model-base",
         base, "--model", name, "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if "listening on" in line:
            return process, line.rsplit(" ", 1)[1].strip(), name
    process.kill()
    raise ValueError("tfcvr serve did not start for the HTTP benchmark.")


def _http(saved_model, rows, settings, batch):
    process, url, name = _start_server(saved_model)
    host, port = url.split("//")[1].split(":")
    body = json.dumps(
        {"instances": (rows * (batch // len(rows) + 1))[:batch]}
    ).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    path = f"/v1/models/{name}:predict"
    latencies, errors = [], []
    lock = threading.Lock()
    deadline = [0.0]

    def client():
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        mine = []
        try:
            for _ in range(settings["http_requests"]):
                if time.perf_counter() > deadline[0]:
                    break
                start = time.perf_counter()
                connection.request("POST", path, body=body, headers=headers)
                reply = connection.getresponse()
                payload = reply.read()
                if reply.status != 200:
                    raise ValueError(f"HTTP {reply.status}: {payload[:200]!r}")
                mine.append(time.perf_counter() - start)
        except Exception as e:  # reported below, the benchmark goes on
            with lock:
                errors.append(str(e))
        finally:
            connection.close()
            with lock:
                latencies.extend(mine)

    try:
        warm = http.client.HTTPConnection(host, int(port), timeout=60)
        for _ in range(5):
            warm.request("POST", path, body=body, headers=headers)
            warm.getresponse().read()
        warm.close()
        deadline[0] = time.perf_counter() + settings["http_seconds"]
        threads = [threading.Thread(target=client)
                   for _ in range(settings["http_clients"])]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        burst = http_burst(host, int(port), path, body,
                           settings["burst_clients"],
                           settings["burst_requests"])
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
    if not latencies:
        raise ValueError(f"No HTTP request succeeded: {errors[:3]}")
    steady = dict(
        percentiles(latencies),
        clients=settings["http_clients"],
        rows_per_request=batch,
        requests=len(latencies),
        requests_per_s=len(latencies) / elapsed,
        rows_per_s=len(latencies) * batch / elapsed,
        errors=len(errors),
    )
    return steady, dict(burst, rows_per_request=batch)


def run(args):
    settings = _settings(args)
    tmp = None
    try:
        if args.saved_model:
            saved_model = _resolve(args.saved_model)
        else:
            tmp = tempfile.mkdtemp(prefix="tfcvr-serving-bench-")
            print("Training and exporting a tiny model ...", flush=True)
            saved_model = _tiny_saved_model(tmp, args.estimator)
        schema, rows, info = _sample_rows(saved_model, 64)
        print(f"SavedModel: {saved_model}", flush=True)
        results = {
            "saved_model": saved_model,
            "estimator": info.get("estimator"),
            "settings": dict(settings, batch_size=args.batch_size,
                             http_batch=args.http_batch),
            "cpu_count": os.cpu_count(),
            "load_average": list(os.getloadavg()),
        }
        results["in_process"] = time_saved_model(
            saved_model, schema, rows,
            iterations=settings["iterations"],
            batch_size=args.batch_size,
            throughput_seconds=settings["throughput_seconds"],
        )
        if not args.no_http:
            results["http"], results["burst"] = _http(
                saved_model, rows, settings, args.http_batch
            )
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    _print(results, args.batch_size)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, RESULT_FILE)
        with open(path, "w") as f:
            json.dump(results, f, indent=2)
        print(f"Wrote {path}")
    return 0


def _print(results, batch_size):
    p = results["in_process"]
    print("In process (tf.saved_model.load):")
    for key in ("serving_default_batch1", "predict_examples_batch1"):
        r = p[key]
        print(f"  {key:<26} p50 {r['p50_ms']:.3f} ms   p99 "
              f"{r['p99_ms']:.3f} ms   ({r['calls']} calls)")
    r = p[f"serving_default_batch{batch_size}"]
    print(f"  serving_default_batch{batch_size:<6} {r['rows_per_s']:,.0f} "
          f"rows/s   {r['ms_per_batch']:.2f} ms/batch")
    if "http" in results:
        h = results["http"]
        print(f"HTTP on loopback ({h['clients']} clients, "
              f"{h['rows_per_request']} row(s)/request):")
        print(f"  p50 {h['p50_ms']:.2f} ms   p99 {h['p99_ms']:.2f} ms   "
              f"{h['requests_per_s']:.0f} requests/s   "
              f"{h['rows_per_s']:.0f} rows/s   ({h['requests']} requests, "
              f"{h['errors']} errors)")
    load = results["load_average"]
    print(f"Machine: {results['cpu_count']} CPUs, load average "
          f"{load[0]:.1f} at start")
    if "burst" in results:
        _print_burst(results["burst"])


def _print_burst(b):
    print(f"Burst on loopback ({b['clients']} clients connecting at once, "
          f"{b['requests_per_client']} requests each, "
          f"{b['rows_per_request']} row(s)/request):")
    statuses = ", ".join(f"{n} x HTTP {s}" for s, n in b["statuses"].items())
    latency = (f"p50 {b['p50_ms']:.2f} ms   p99 {b['p99_ms']:.2f} ms   "
               if b["answered"] else "")
    print(f"  {latency}{b['answered']} answered ({statuses or 'none'}) in "
          f"{b['seconds']:.2f} s")
    print(f"  {b['resets']} resets   {b['errors']} other errors")
    for example in b["error_examples"]:
        print(f"    {example}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
