"""Benchmarks: training throughput, serving latency, the estimator grid."""

import argparse
import importlib

SUITES = {
    "train": "tfcvr.bench.train_benchmark",
    "serve": "tfcvr.bench.serving_benchmark",
    "grid": "tfcvr.bench.grid_benchmark",
}


def add_arguments(parser):
    parser.add_argument(
        "suite", nargs="?", default="grid", choices=sorted(SUITES),
        help="train: training throughput; serve: SavedModel/REST latency; "
             "grid: estimators x seeds x datasets leaderboard (default)",
    )
    parser.add_argument("suite_args", nargs=argparse.REMAINDER,
                        help="the suite's own flags (tfcvr bench SUITE --help)")


def run(args):
    # Only the chosen suite is imported, so `bench train` runs on a machine
    # with JAX and no TensorFlow.
    module = importlib.import_module(SUITES[args.suite])
    parser = argparse.ArgumentParser(prog=f"tfcvr bench {args.suite}",
                                     description=(module.__doc__ or "").strip().split("\n")[0])
    module.add_arguments(parser)
    return module.run(parser.parse_args(args.suite_args))
