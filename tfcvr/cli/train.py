"""Train an estimator on a preprocessed dataset directory.

The run checkpoints itself in MODEL_DIR/checkpoint/ (every
--checkpoint-every steps and at each epoch end); the same command after a
crash resumes from there. A NaN or infinite loss stops training with a
one-line error and exit status 2, writing no model.keras.
"""

import json
import sys

from tfcvr.data import INPUT_FORMATS
from tfcvr.models.cvr_model import DEFAULT_TRAIN_METRICS
from tfcvr.models.cvr_model import TRAIN_METRICS
from tfcvr.cli.train_config import add_tuned_arguments
from tfcvr.cli.train_config import tuned_settings
from tfcvr.training import parse_params
from tfcvr.training import train
from tfcvr.training.strategy import STRATEGIES
from tfcvr.training.trainer import DEFAULT_CHECKPOINT_EVERY
from tfcvr.training.trainer import PRECISIONS


def add_arguments(parser):
    parser.add_argument("--data", required=True, help="dataset directory (tfcvr preprocess output)")
    parser.add_argument("--model", required=True, help="estimator name (see `tfcvr models`)")
    parser.add_argument("--batch-size", type=int, default=4096,
                        help="global batch size, split over the replicas")
    add_tuned_arguments(parser)
    parser.add_argument("--model-dir", default=None, help="where to save model.keras (default runs/<model>)")
    parser.add_argument("--strategy", default="auto", choices=STRATEGIES)
    parser.add_argument("--precision", default="float32", choices=PRECISIONS)
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--cache", action="store_true", help="cache parsed batches in memory after epoch 1")
    parser.add_argument("--input-format", default="auto", choices=INPUT_FORMATS,
                        help="auto: the encoded shards of `tfcvr encode` / `tfcvr preprocess` when "
                             "valid for the directory, else the raw TFRecords; raw or encoded: "
                             "force one (encoded fails without valid shards)")
    parser.add_argument("--no-validation", action="store_true")
    parser.add_argument("--train-metrics", default=DEFAULT_TRAIN_METRICS, choices=TRAIN_METRICS,
                        help="auc: approximate AUCs logged during fit and validation; "
                             "none: the loss and its terms only (exact metrics: tfcvr evaluate)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--checkpoint-every", type=int, default=DEFAULT_CHECKPOINT_EVERY,
        metavar="STEPS",
        help="steps between checkpoints in MODEL_DIR/checkpoint/ (0: at "
             f"epoch ends only; default {DEFAULT_CHECKPOINT_EVERY})",
    )
    parser.add_argument("--restart", action="store_true",
                        help="discard an existing checkpoint instead of "
                             "resuming from it")
    parser.add_argument("--deterministic", action="store_true",
                        help="deterministic ops and input order (same seed "
                             "and data give the same metrics; slower)")
    parser.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE",
        help="estimator constructor argument (JSON value; dotted keys nest), repeatable",
    )


def run(args):
    model_dir = args.model_dir or f"runs/{args.model}"
    settings = tuned_settings(args, parse_params(args.param))
    _, info = train(
        args.data,
        model=args.model,
        batch_size=args.batch_size,
        model_dir=model_dir,
        strategy=args.strategy,
        precision=args.precision,
        steps_per_execution=args.steps_per_execution,
        validate=not args.no_validation,
        cache=args.cache,
        seed=args.seed,
        train_metrics=args.train_metrics,
        checkpoint_every=args.checkpoint_every,
        deterministic=args.deterministic,
        restart=args.restart,
        input_format=args.input_format,
        verbose=0 if args.quiet else "auto",
        # Quiet: the summary alone on stdout; the run's lines on stderr.
        log=_to_stderr if args.quiet else print,
        **settings,
    )
    last = {k: round(v[-1], 5) for k, v in info["history"].items() if v}
    print(json.dumps({
        "model_dir": model_dir,
        "final": last,
        "iterations": info["iterations"],
        "examples_per_second": round(info["examples_per_second"], 1),
        "global_batch_size": info["global_batch_size"],
        "per_replica_batch_size": info["per_replica_batch_size"],
        "replicas": info["replicas"],
    }))
    return 0


def _to_stderr(line):
    print(line, file=sys.stderr, flush=True)
