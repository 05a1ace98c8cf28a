"""Compute every metric of a trained model on a dataset split or a raw log.

    tfcvr evaluate --model-dir DIR --data DATASET [--split eval]
    tfcvr evaluate --model-dir DIR --input LOG --format csv|parquet|jsonl
                   [--spec SPEC.json]

A dataset must be encoded with the model's vocabulary (`tfcvr preprocess
--vocab-from DIR`); one that is not is refused. A raw log is read by the
Beam job's readers and encoded with the model directory's vocabulary.
`--protocol` chooses how CVR is scored: `auto` treats a log where every
row is clicked as a randomised (MAR) test (`cvr_auc_mar`, ...).
"""

import json

from tfcvr.cli.cli_error import CLIError
from tfcvr.cli.predict import open_scored_log
from tfcvr.evaluation import format_metrics_table
from tfcvr.evaluation import json_safe
from tfcvr.evaluation import metric_names as m
from tfcvr.export.evaluate_log import evaluate_log
from tfcvr.export.log_scorer import LogScorer
from tfcvr.export.raw_log import LOG_FORMATS
from tfcvr.training.evaluate_dir import evaluate_dir


def add_arguments(parser):
    parser.add_argument("--model-dir", required=True, help="directory written by `tfcvr train`")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="dataset directory (tfcvr preprocess output)")
    source.add_argument("--input", help="raw log: file, directory, glob or comma-separated list")
    parser.add_argument("--format", choices=LOG_FORMATS, help="log format (with --input)")
    parser.add_argument("--spec", help="input spec of the log (default: the model directory's)")
    parser.add_argument("--delimiter", default=",", help="csv field delimiter")
    parser.add_argument("--split", default="eval", help="split to evaluate (default: eval)")
    parser.add_argument(
        "--protocol", choices=m.PROTOCOLS, default=m.PROTOCOL_AUTO,
        help="mar: every row's outcome is observed (a randomised test); "
        "observational: a logged policy's impressions; auto (default): mar "
        "when every row has click = 1",
    )
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument("--max-batches", type=int, default=None)
    parser.add_argument("--json", default=None, help="also write every metric to this JSON file")
    parser.add_argument("--all", action="store_true", help="print every scalar metric, not the summary")


def _evaluate_input(args):
    if args.format is None:
        raise CLIError("--input needs --format (csv, parquet or jsonl).")
    scorer = LogScorer.from_model_dir(args.model_dir)
    reader, origin = open_scored_log(
        args, scorer, "model directory", features_only=False
    )
    metrics, counts = evaluate_log(
        scorer, reader, batch_size=args.batch_size, protocol=args.protocol,
        max_batches=args.max_batches, progress=True,
    )
    reasons = f" ({counts.reasons()})" if counts.rejected else ""
    print(
        f"{args.input}: {counts.rows_in:,} rows in, {counts.good:,} "
        f"evaluated, {counts.rejected_total:,} rejected{reasons}; spec "
        f"{origin}"
    )
    return metrics


def run(args):
    if args.input is not None:
        metrics = _evaluate_input(args)
    else:
        for flag in ("format", "spec"):
            if getattr(args, flag) is not None:
                raise CLIError(f"--{flag} goes with --input (a raw log), not --data.")
        metrics = evaluate_dir(args.data, args.model_dir, args.split,
                               args.batch_size, args.max_batches,
                               protocol=args.protocol)
    if metrics[m.PROTOCOL] == m.PROTOCOL_MAR:
        print(f"protocol: randomised test (MAR), {metrics[m.PROTOCOL_REASON]}")
    if args.all:
        columns = [k for k, v in metrics.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)]
    else:
        columns = None
    print(format_metrics_table({args.model_dir: metrics}, metrics=columns))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(json_safe(metrics), f, indent=2, sort_keys=True)
        print(f"wrote {args.json}")
    return 0
