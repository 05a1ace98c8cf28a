"""Benchmarks: training throughput, serving latency, the estimator grid."""

import argparse
import importlib

SUITES = {
    "train": "tfcvr.bench.train_benchmark",
    "input": "tfcvr.bench.input_benchmark",
    "overhead": "tfcvr.bench.overhead_benchmark",
    "serve": "tfcvr.bench.serving_benchmark",
    "grid": "tfcvr.bench.grid.command",
    "graph": "tfcvr.bench.graph_benchmark",
}


# The suite's flags are parsed by the suite, so `tfcvr bench --preset smoke`
# (no suite named: the grid) works as well as `tfcvr bench grid --preset smoke`.
PASS_UNKNOWN_ARGS = True


def add_arguments(parser):
    parser.add_argument(
        "suite_args", nargs=argparse.REMAINDER, metavar="[SUITE] ...",
        help="SUITE: train (training throughput), input (the tf.data input "
             "path stage by stage), overhead (the model's suspected overheads "
             "per batch), serve (SavedModel/REST latency), graph (top-K "
             "neighbour-graph build) or grid (estimators x seeds x datasets "
             "leaderboard, the default); then the suite's own flags (tfcvr "
             "bench SUITE --help)",
    )


def split_suite(argv):
    """`(suite, suite_argv)` of `tfcvr bench`'s argv; the grid by default."""
    argv = list(argv)
    if argv and argv[0] in SUITES:
        return argv[0], argv[1:]
    if argv and not argv[0].startswith("-"):
        raise ValueError(
            f"Unknown benchmark suite {argv[0]!r}; choose from {', '.join(sorted(SUITES))}."
        )
    return "grid", argv


def run(args):
    suite, suite_argv = split_suite(args.raw_argv)
    # Only the chosen suite is imported, so `bench train` runs on a machine
    # with JAX and no TensorFlow.
    module = importlib.import_module(SUITES[suite])
    parser = argparse.ArgumentParser(prog=f"tfcvr bench {suite}",
                                     description=(module.__doc__ or "").strip().split("\n")[0])
    module.add_arguments(parser)
    return module.run(parser.parse_args(suite_argv))
