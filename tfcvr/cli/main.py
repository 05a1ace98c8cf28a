"""`tfcvr` command line: one module per command under `tfcvr.cli`.

Each command module defines `add_arguments(parser)` and `run(args) -> int`
and a module docstring whose first line is the command's help; a module with
`PASS_UNKNOWN_ARGS = True` accepts flags it does not declare, and every
command gets its own argv as `args.raw_argv`. Modules are imported only when
their command runs, so `tfcvr --help` stays fast and imports no TensorFlow.
"""

import argparse
import importlib
import logging
import os
import sys

from tfcvr.cli.cli_error import CLIError

# Command name -> module under tfcvr.cli (the DESIGN.md names; keep them).
COMMANDS = {
    "simulate": "simulate",
    "preprocess": "preprocess",
    "encode": "encode",
    "schema": "schema",
    "train": "train",
    "tune": "tune",
    "evaluate": "evaluate",
    "predict": "predict",
    "export": "export",
    "serve": "serve",
    "bench": "bench",
    "models": "models",
    "quickstart": "quickstart",
}

HELP = {
    "simulate": "write simulated impression logs with ground truth",
    "preprocess": "raw logs -> TFRecords + schema.json + vocab/ (Beam)",
    "encode": "write a dataset's splits encoded for training (tfcvr preprocess does it)",
    "schema": "propose an input spec from a sample of a log file",
    "train": "train an estimator on a preprocessed dataset",
    "tune": "search learning rate, weight decay, embedding L2, dropout, epochs",
    "evaluate": "compute every metric of a trained model on a dataset or a raw log",
    "predict": "score every row of a raw log (pCTR, pCVR, pCTCVR per row)",
    "export": "export a trained model as a TF Serving SavedModel",
    "serve": "serve SavedModels over TF Serving's REST API (local)",
    "bench": "benchmarks: training/serving throughput, estimator grid",
    "models": "list every registered estimator with its paper",
    "quickstart": "simulate -> Beam -> train -> evaluate -> export (make demo)",
}
# Commands that never import TensorFlow: they skip its up-front import, so
# they start fast and run where it is not installed.
WITHOUT_TENSORFLOW = ("simulate", "schema")


def _quiet_tensorflow(command):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    if (command in WITHOUT_TENSORFLOW
            or os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow"):
        return
    # TensorFlow's C++ start-up lines (oneDNN, CUDA stubs) ignore
    # TF_CPP_MIN_LOG_LEVEL; the user's terminal should show tfcvr's output,
    # so TensorFlow is imported here, before the command, with stderr closed.
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                import tensorflow  # noqa: F401
            except ImportError:
                pass
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tfcvr",
        description="Entire-space post-click conversion-rate estimation.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        sub.add_parser(name, help=HELP[name], add_help=False)
    return parser


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    name = argv[0]
    if name not in COMMANDS:
        parser.print_usage(sys.stderr)
        print(
            f"tfcvr: error: unknown command {name!r}; choose from "
            f"{', '.join(COMMANDS)}",
            file=sys.stderr,
        )
        return 2
    _quiet_tensorflow(name)
    module = importlib.import_module(f"tfcvr.cli.{COMMANDS[name]}")
    command_parser = argparse.ArgumentParser(
        prog=f"tfcvr {name}", description=HELP[name]
    )
    module.add_arguments(command_parser)
    if getattr(module, "PASS_UNKNOWN_ARGS", False):
        # Validate known flags, keep the rest (e.g. Beam pipeline options).
        args, _ = command_parser.parse_known_args(argv[1:])
    else:
        args = command_parser.parse_args(argv[1:])
    args.raw_argv = argv[1:]
    try:
        return int(module.run(args) or 0)
    except (CLIError, ValueError, FileNotFoundError) as e:
        print(f"tfcvr {name}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tfcvr {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
