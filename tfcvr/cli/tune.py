"""Tune an estimator's training settings on a held-out part of its training split."""

import json
import os

from tfcvr.cli.cli_error import CLIError
from tfcvr.training.monitor import DEFAULT_MONITOR
from tfcvr.training.params import parse_params
from tfcvr.training.tuning import BEST_FILE
from tfcvr.training.tuning import SEARCH_SPACE
from tfcvr.training.tuning import TABLE_FILE
from tfcvr.training.tuning import parse_space


def add_arguments(parser):
    parser.add_argument("--data", required=True, help="training dataset directory (its eval split is not read)")
    parser.add_argument("--model", required=True, help="estimator name (see `tfcvr models`)")
    parser.add_argument("--out", default=None, help="output directory (default tune/<model>)")
    parser.add_argument("--trials", type=int, default=8, help="settings tried; trial 0 is the untuned default")
    parser.add_argument("--max-epochs", type=int, default=3,
                        help="epochs of each trial; the tuned epoch count is the best epoch")
    parser.add_argument("--objective", default=DEFAULT_MONITOR,
                        help="held-out metric selected on (AUCs maximised, losses minimised)")
    parser.add_argument(
        "--space", action="append", default=[], metavar="AXIS=V1,V2,...",
        help=f"values of one axis ({', '.join(SEARCH_SPACE)}, propensity: model,ctr_model,"
             "ctr_model+platt,ctr_model+isotonic); repeatable")
    parser.add_argument("--holdout-fraction", type=float, default=0.1,
                        help="share of the training rows held out for selection")
    parser.add_argument("--patience", type=int, default=None, help="early stopping inside each trial")
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE",
        help="estimator constructor argument of every trial (JSON value; dotted keys nest)")


def run(args):
    from tfcvr.training.tuning import tune

    out = args.out or os.path.join("tune", args.model)
    if args.trials < 1 or args.max_epochs < 1:
        raise CLIError(f"--trials and --max-epochs must be >= 1. Received: "
                       f"{args.trials}, {args.max_epochs}")
    best = tune(
        args.data, args.model, out, trials=args.trials, max_epochs=args.max_epochs,
        objective=args.objective, space=parse_space(args.space), seed=args.seed,
        batch_size=args.batch_size, params=parse_params(args.param),
        holdout_fraction=args.holdout_fraction, patience=args.patience,
    )
    with open(os.path.join(out, TABLE_FILE)) as f:
        print(f.read(), end="")
    print(json.dumps({"best": os.path.join(out, BEST_FILE), "epochs": best["epochs"],
                      "learning_rate": best["learning_rate"],
                      "weight_decay": best["weight_decay"],
                      "embedding_l2": best["embedding_l2"],
                      best["tuning"]["objective"]: round(best["tuning"]["value"], 5)}))
    print(f"train with it: tfcvr train --data {args.data} --model {args.model} "
          f"--config {os.path.join(out, BEST_FILE)}")
    return 0
