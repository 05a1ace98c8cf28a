"""The settings `tfcvr train` shares with `tfcvr tune` and its `--config` file.

A flag left out is None here, so that a `--config FILE` (the `best.json`
that `tfcvr tune` writes) can fill it; a flag given on the command line
wins over the file, and the defaults fill the rest.
"""

import json

from tfcvr.cli.cli_error import CLIError
from tfcvr.training.monitor import DEFAULT_MONITOR
from tfcvr.training.optimizer import OPTIMIZERS
from tfcvr.training.params import merge_params

# Setting -> default when neither the command line nor --config gives it.
DEFAULTS = {
    "epochs": 1,
    "learning_rate": 1e-3,
    "weight_decay": 0.0,
    "optimizer": OPTIMIZERS[0],
    "embedding_l2": 0.0,
    "early_stopping": None,
    "monitor": DEFAULT_MONITOR,
    "validation_data": None,
    "propensity": "model",
    "propensity_calibration": None,
}


def add_tuned_arguments(parser):
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="settings file (the best.json of `tfcvr tune`); flags given here win")
    parser.add_argument("--epochs", type=int, default=None, help="default 1")
    parser.add_argument("--learning-rate", type=float, default=None, help="default 1e-3")
    parser.add_argument("--weight-decay", type=float, default=None,
                        help="AdamW decoupled weight decay (default 0: Adam)")
    parser.add_argument("--optimizer", default=None, choices=OPTIMIZERS,
                        help="adam (default): Keras' Adam in one fused kernel per variable; "
                             "lazy_adam: an embedding row moves only on the steps whose batch "
                             "reads it; keras_adam: Keras' own Adam, op by op (slower)")
    parser.add_argument("--embedding-l2", type=float, default=None,
                        help="L2 on every embedding table, l2 * sum(W^2) (default 0)")
    parser.add_argument("--dropout", type=float, default=None,
                        help="dropout of the backbone's hidden layers (= --param backbone_config.dropout=R)")
    parser.add_argument("--early-stopping", type=int, default=None, metavar="PATIENCE",
                        help="stop after PATIENCE epochs without improvement of --monitor; "
                             "the best epoch's weights are kept")
    parser.add_argument("--monitor", default=None,
                        help=f"eval metric of --early-stopping (default {DEFAULT_MONITOR}; "
                             "AUCs are maximised, losses minimised)")
    parser.add_argument("--validation-data", default=None, metavar="DIR",
                        help="dataset directory to validate on instead of the eval split "
                             "(same vocabulary: preprocess it with --vocab-from)")
    parser.add_argument("--propensity", default=None,
                        help="click propensity of the IPW/DR losses: model (the shared CTR tower, "
                             "default), ctr_model (a CTR model trained first) or column:NAME "
                             "(a logged propensity column)")
    parser.add_argument("--propensity-calibration", default=None, choices=("platt", "isotonic"),
                        help="calibrate the ctr_model propensity on the eval split")
    parser.add_argument("--quiet", action="store_true", help="no progress bars or stage lines")


def read_config(path, model):
    """The settings of a `--config` file, checked against `--model`."""
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        raise CLIError(f"--config {path}: {error}") from None
    if not isinstance(config, dict):
        raise CLIError(f"--config {path} must hold a JSON object")
    tuned_for = config.get("model")
    if tuned_for is not None and tuned_for != model:
        raise CLIError(
            f"--config {path} holds settings tuned for {tuned_for!r}, not --model {model!r}"
        )
    unknown = sorted(set(config) - set(DEFAULTS) - {"model", "params", "tuning"})
    if unknown:
        raise CLIError(f"--config {path} has unknown settings {unknown}")
    return config


def tuned_settings(args, params):
    """The keyword arguments of `tfcvr.training.train` for these settings:
    command line, then `--config`, then `DEFAULTS`."""
    config = read_config(args.config, args.model) if args.config else {}
    settings = {}
    for name, default in DEFAULTS.items():
        given = getattr(args, name)
        settings[name] = given if given is not None else config.get(name, default)
    params = merge_params(config.get("params") or {}, params)
    if args.dropout is not None:
        params = merge_params(params, {"backbone_config": {"dropout": args.dropout}})
    settings["params"] = params
    return settings
