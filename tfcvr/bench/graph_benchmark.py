"""`tfcvr bench graph`: time and peak memory of a top-K neighbour-graph build.

The reference setting of issue #11: 10^5 nodes, K = 10, dimension 16, the
default block sizes of `tfcvr.layers.TopKNeighbourGraph` (the build CSTWA
runs once per training run on its user and item tables). Runs on any Keras
backend; nothing here imports TensorFlow itself.
"""

import json
import os
import resource
import sys
import time

import keras
import numpy as np

from tfcvr.layers.graph import TopKNeighbourGraph


def add_arguments(parser):
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--neighbours", type=int, default=10)
    parser.add_argument("--weighting", default="uniform",
                        choices=("uniform", "softmax"))
    parser.add_argument("--block-size", type=int, default=None,
                        help="rows per block (default: the layer's)")
    parser.add_argument("--column-block-size", type=int, default=None,
                        help="columns per block (default: the layer's)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--verify", type=int, default=200,
                        help="rows checked against a dense NumPy top-K "
                             "(0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None,
                        help="append the result as JSON lines to this file")


def _peak_rss_mb():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**20 if sys.platform == "darwin" else 1024)


def verify_rows(table, indices, weights, rows):
    """Fraction of `rows` whose neighbour set is the dense top-K's."""
    unit = table / np.maximum(np.linalg.norm(table, axis=1, keepdims=True),
                              1e-12)
    k = indices.shape[1]
    exact = 0
    for i in rows:
        sims = unit @ unit[i]
        sims[i] = -np.inf
        expected = set(np.argpartition(-sims, k)[:k].tolist())
        exact += expected == set(indices[i][weights[i] > 0].tolist())
    return exact / max(len(rows), 1)


def run(args):
    if args.nodes < 2 or args.dim < 1 or args.repeats < 1:
        raise ValueError(
            f"--nodes must be >= 2, --dim and --repeats >= 1. Received: "
            f"{args.nodes}, {args.dim}, {args.repeats}"
        )
    kwargs = {"num_neighbours": args.neighbours, "weighting": args.weighting}
    if args.block_size:
        kwargs["block_size"] = args.block_size
    if args.column_block_size:
        kwargs["column_block_size"] = args.column_block_size
    builder = TopKNeighbourGraph(**kwargs)
    rng = np.random.default_rng(args.seed)
    table = rng.normal(size=(args.nodes, args.dim)).astype("float32")
    # Compile/warm the ops on a small table, so the timing is the build.
    builder(table[: min(args.nodes, 4 * builder.block_size)])
    baseline = _peak_rss_mb()
    seconds, cpu_seconds = [], []
    for _ in range(args.repeats):
        started, cpu_started = time.perf_counter(), time.process_time()
        indices, weights = builder(table)
        indices = keras.ops.convert_to_numpy(indices)
        weights = keras.ops.convert_to_numpy(weights)
        seconds.append(time.perf_counter() - started)
        cpu_seconds.append(time.process_time() - cpu_started)
    rows = rng.choice(args.nodes, min(args.verify, args.nodes), replace=False)
    result = {
        "benchmark": "graph",
        "nodes": args.nodes,
        "dim": args.dim,
        "neighbours": args.neighbours,
        "weighting": args.weighting,
        "block_size": builder.block_size,
        "column_block_size": builder.column_block_size,
        "seconds": [round(s, 2) for s in seconds],
        "best_seconds": round(min(seconds), 2),
        # CPU time of every thread: on a shared machine, what the build
        # itself cost, whatever else ran.
        "cpu_seconds": [round(s, 2) for s in cpu_seconds],
        "load_average": round(os.getloadavg()[0], 2),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "peak_rss_growth_mb": round(_peak_rss_mb() - baseline, 1),
        "dense_matrix_mb": round(args.nodes**2 * 4 / 2**20, 1),
        "exact_rows": verify_rows(table, indices, weights, rows)
        if len(rows) else None,
        "backend": keras.backend.backend(),
    }
    print(json.dumps(result))
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(result) + "\n")
    return 0
