"""Compute every metric of a trained model on a dataset split."""

import json

from tfcvr.evaluation import format_metrics_table
from tfcvr.evaluation import json_safe
from tfcvr.training.evaluate_dir import evaluate_dir


def add_arguments(parser):
    parser.add_argument("--data", required=True, help="dataset directory (tfcvr preprocess output)")
    parser.add_argument("--model-dir", required=True, help="directory written by `tfcvr train`")
    parser.add_argument("--split", default="eval", help="split to evaluate (default: eval)")
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument("--max-batches", type=int, default=None)
    parser.add_argument("--json", default=None, help="also write every metric to this JSON file")
    parser.add_argument("--all", action="store_true", help="print every scalar metric, not the summary")


def run(args):
    metrics = evaluate_dir(args.data, args.model_dir, args.split,
                           args.batch_size, args.max_batches)
    if args.all:
        columns = [k for k, v in metrics.items() if isinstance(v, (int, float))]
    else:
        columns = None
    print(format_metrics_table({args.model_dir: metrics}, metrics=columns))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(json_safe(metrics), f, indent=2, sort_keys=True)
        print(f"wrote {args.json}")
    return 0
