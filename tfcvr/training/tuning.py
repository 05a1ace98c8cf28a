"""`tfcvr tune`: a small random search, selected on a held-out part of the
training split (never the eval split a leaderboard reports on).

Why our own search and not KerasTuner: a trial here is a whole
`tfcvr.training.train` run (two-stage estimators, the propensity options,
AdamW and the embedding L2 are trainer settings, not layers of a model that
a `HyperModel` builds), the epoch count comes free from each trial's eval
curve, and the search space is a handful of discrete values, where random
sampling of the grid is as good as KerasTuner's random search and needs no
extra dependency.
"""

import itertools
import json
import os
import random
import shutil

from tfcvr.features import keys
from tfcvr.training.monitor import DEFAULT_MONITOR
from tfcvr.training.monitor import monitor_mode
from tfcvr.training.monitor import monitor_name
from tfcvr.training.params import merge_params

# Axis -> candidate values; the first value of each axis is the untuned
# default, and trial 0 is always all the defaults.
SEARCH_SPACE = {
    "learning_rate": (1e-3, 5e-4, 2e-3, 4e-3),
    "weight_decay": (0.0, 1e-5, 1e-4, 1e-3),
    "embedding_l2": (0.0, 1e-7, 1e-6),
    "dropout": (0.0, 0.1, 0.3),
}
# Axes a caller may add: the propensity of the IPW/DR family
# (`"model"`, `"ctr_model"`, `"ctr_model+platt"`, `"ctr_model+isotonic"`).
OPTIONAL_AXES = ("propensity",)
HOLDOUT_DIR = "holdout"
TRIALS_FILE = "trials.jsonl"
TABLE_FILE = "trials.md"
BEST_FILE = "best.json"


def check_space(space):
    """A copy of `space` with tuples of values, checked."""
    out = {}
    for axis, values in space.items():
        if axis not in SEARCH_SPACE and axis not in OPTIONAL_AXES:
            raise ValueError(
                f"tune searches {sorted(SEARCH_SPACE) + list(OPTIONAL_AXES)}. "
                f"Received: axis {axis!r}"
            )
        values = tuple(values)
        if not values:
            raise ValueError(f"tune axis {axis!r} needs at least one value")
        out[axis] = values
    return out


def parse_space(items):
    """`["learning_rate=1e-3,2e-3", "propensity=model,ctr_model"]` -> a space
    dict (numbers parse as JSON, other values stay strings)."""
    space = {}
    for item in items:
        axis, sep, values = item.partition("=")
        if not sep or not values:
            raise ValueError(f"--space takes AXIS=V1,V2,... Received: {item!r}")
        parsed = []
        for raw in values.split(","):
            try:
                parsed.append(json.loads(raw))
            except json.JSONDecodeError:
                parsed.append(raw)
        space[axis.strip()] = [float(v) if isinstance(v, int) and axis != "propensity" else v
                               for v in parsed]
    return space


def sample_trials(space, trials, seed=0):
    """`trials` distinct settings of `space`: first every axis's first
    value, then a seeded random sample of the rest of the grid."""
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be an int >= 1. Received: trials={trials!r}")
    axes = list(space)
    grid = list(itertools.product(*(space[a] for a in axes)))
    first, rest = grid[0], grid[1:]
    random.Random(seed).shuffle(rest)
    return [dict(zip(axes, values)) for values in [first] + rest[: trials - 1]]


def write_holdout(data_dir, out_dir, fraction=0.1):
    """A dataset directory whose train split is `data_dir`'s train split
    less every `round(1 / fraction)`-th record, and whose eval split is
    those records; schema, vocabularies and other files are copied (so the
    vocabulary is the training data's). The source eval split is not read.
    Returns `(path, train_rows, holdout_rows)`."""
    import tensorflow as tf

    from tfcvr.data.dataset_dir import ENCODED
    from tfcvr.data.dataset_dir import DatasetDir
    from tfcvr.data.encode_splits import encode_splits

    if not 0.0 < fraction < 0.5:
        raise ValueError(f"holdout_fraction must be in (0, 0.5). Received: {fraction!r}")
    source = DatasetDir(data_dir)
    files = source.files(keys.TRAIN_SPLIT)
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)
    for name in os.listdir(data_dir):
        # The encoded shards describe the source's splits, not these.
        if name in (keys.TRAIN_SPLIT, keys.EVAL_SPLIT, keys.REJECTED_DIR,
                    keys.ENCODED_DIR):
            continue
        src = os.path.join(data_dir, name)
        (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, os.path.join(out_dir, name))
    every = max(2, round(1.0 / fraction))
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    counts = {keys.TRAIN_SPLIT: 0, keys.EVAL_SPLIT: 0}
    writers = {}
    for split in counts:
        os.makedirs(os.path.join(out_dir, split))
        writers[split] = tf.io.TFRecordWriter(
            os.path.join(out_dir, split, "part-00000.tfrecord.gz"), options)
    try:
        records = tf.data.TFRecordDataset(files, compression_type="GZIP")
        for i, record in enumerate(records.as_numpy_iterator()):
            split = keys.EVAL_SPLIT if i % every == every - 1 else keys.TRAIN_SPLIT
            writers[split].write(record)
            counts[split] += 1
    finally:
        for writer in writers.values():
            writer.close()
    if not counts[keys.EVAL_SPLIT]:
        raise ValueError(
            f"{data_dir} has {counts[keys.TRAIN_SPLIT]} training rows, too few to hold "
            f"out one in {every} for tuning"
        )
    with open(os.path.join(out_dir, "summary.json"), "w") as f:
        json.dump({"holdout_of": os.path.abspath(data_dir), "holdout_every": every,
                   "rows_written": counts}, f, indent=2)
    if source.format_of(keys.TRAIN_SPLIT) == ENCODED:
        # Every trial reads the holdout directory: encode it as the source was.
        encode_splits(out_dir, log=lambda line: None)
    return out_dir, counts[keys.TRAIN_SPLIT], counts[keys.EVAL_SPLIT]


def trial_settings(trial, params):
    """`train()` keyword arguments of one trial on top of `params`."""
    settings = {
        "learning_rate": trial.get("learning_rate", SEARCH_SPACE["learning_rate"][0]),
        "weight_decay": trial.get("weight_decay", 0.0),
        "embedding_l2": trial.get("embedding_l2", 0.0),
        "params": merge_params(params or {}, {"backbone_config": {
            "dropout": trial.get("dropout", 0.0)}}),
    }
    source = trial.get("propensity", "model")
    settings["propensity"], _, calibration = source.partition("+")
    settings["propensity_calibration"] = calibration or None
    return settings


def best_epoch(history, objective):
    """`(epoch, value)`: the 1-based epoch with the best `objective`."""
    curve = history.get(objective)
    if not curve:
        available = sorted(k for k in history if k.startswith("val_"))
        raise ValueError(
            f"tune selects on {objective!r}, which the held-out split does not "
            f"report; choose one of {available}"
        )
    pick = max if monitor_mode(objective) == "max" else min
    value = pick(curve)
    return curve.index(value) + 1, float(value)


def tune(
    data_dir,
    model,
    out_dir,
    trials=8,
    max_epochs=3,
    objective=DEFAULT_MONITOR,
    space=None,
    seed=0,
    batch_size=4096,
    params=None,
    holdout_fraction=0.1,
    patience=None,
    say=None,
    **train_kwargs,
):
    """Random search over `space`, each trial trained for up to
    `max_epochs` and scored after every epoch on a held-out part of the
    training split; the best (trial, epoch) is the tuned setting.

    Writes `out_dir/holdout/` (the split, see `write_holdout`),
    `trials.jsonl` (one row per trial: its setting, every epoch's eval
    metrics, its best epoch), `trials.md` (the table) and `best.json`, a
    settings file for `tfcvr train --config` (epochs, learning rate, weight
    decay, embedding L2, params with the dropout, propensity).

    Args:
        data_dir: str. The training dataset directory (its eval split is
            never read).
        model: str. Registry name.
        out_dir: str. Where to write.
        trials: int. Settings tried (trial 0 is the untuned default).
        max_epochs: int. Epochs of each trial; the tuned epoch count is
            the best epoch of the best trial.
        objective: str. Eval metric selected on, with or without `val_`.
            Defaults to `val_ctcvr_auc`.
        space: dict axis -> values, replacing axes of `SEARCH_SPACE` (an
            axis with one value is fixed); `propensity` may be added.
        seed: int. Seeds the sample of trials and every trial's training.
        batch_size: int.
        params: dict. Estimator constructor arguments of every trial.
        holdout_fraction: float. Share of the training rows held out.
        patience: int or None. Early stopping inside each trial.
        say: callable or None. Progress lines (default print).
        **train_kwargs: other `tfcvr.training.train` arguments.

    Returns:
        The best setting (the content of `best.json`).
    """
    import keras

    from tfcvr.training.trainer import train

    say = say or (lambda line: print(line, flush=True))
    objective = monitor_name(objective)
    space = check_space(dict(SEARCH_SPACE, **(space or {})))
    if any(v != "model" for v in space.get("propensity", ())) and not _uses_propensity(
            data_dir, model, params):
        say(f"tune {model}: no propensity-weighted loss; the propensity axis is dropped")
        space["propensity"] = ("model",)
    chosen = sample_trials(space, trials, seed)
    os.makedirs(out_dir, exist_ok=True)
    holdout, train_rows, held_rows = write_holdout(
        data_dir, os.path.join(out_dir, HOLDOUT_DIR), holdout_fraction)
    say(f"tune {model}: {len(chosen)} trials x up to {max_epochs} epochs on "
        f"{train_rows} rows, selecting {objective} on {held_rows} held-out training rows")
    rows = []
    trials_path = os.path.join(out_dir, TRIALS_FILE)
    with open(trials_path, "w") as f:
        for number, trial in enumerate(chosen):
            settings = trial_settings(trial, params)
            keras.backend.clear_session()
            _, info = train(
                holdout, model=model, epochs=max_epochs, batch_size=batch_size,
                seed=seed, verbose=0, validate=True, early_stopping=patience,
                monitor=objective, **settings, **train_kwargs)
            epoch, value = best_epoch(info["history"], objective)
            row = {"trial": number, **trial, "best_epoch": epoch, objective: value,
                   "history": info["history"], "seconds": info["wall_seconds"]}
            rows.append(row)
            f.write(json.dumps(row, sort_keys=True) + "\n")
            f.flush()
            say(f"trial {number}: {trial} -> {objective} {value:.4f} at epoch {epoch}")
    pick = max if monitor_mode(objective) == "max" else min
    winner = pick(rows, key=lambda r: r[objective])
    settings = trial_settings({a: winner[a] for a in space}, params)
    best = {
        "model": model,
        "epochs": winner["best_epoch"],
        **settings,
        "tuning": {
            "objective": objective,
            "value": winner[objective],
            "trial": winner["trial"],
            "trials": len(rows),
            "max_epochs": max_epochs,
            "data_dir": os.path.abspath(data_dir),
            "holdout_rows": held_rows,
            "seed": seed,
        },
    }
    with open(os.path.join(out_dir, BEST_FILE), "w") as f:
        json.dump(best, f, indent=2, sort_keys=True)
    with open(os.path.join(out_dir, TABLE_FILE), "w") as f:
        f.write(trials_table(rows, list(space), objective, winner["trial"]))
    return best


def _uses_propensity(data_dir, model, params):
    from tfcvr.data.dataset_dir import DatasetDir
    from tfcvr.models.registry import build_estimator
    from tfcvr.training.pretraining import plan_pretraining
    from tfcvr.training.propensity_source import uses_propensity

    schema = DatasetDir(data_dir).schema
    _, params = plan_pretraining(model, schema, params, say=lambda line: None)
    net = build_estimator(model, schema, params)
    net.build()
    return uses_propensity(net)


def trials_table(rows, axes, objective, best):
    """Markdown table of the trials, the best one marked."""
    head = ["trial", *axes, "best epoch", objective, "s"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --: |" * len(head)]
    for row in rows:
        cells = [f"{row['trial']}{' (best)' if row['trial'] == best else ''}"]
        cells += [f"{row[a]:g}" if isinstance(row[a], float) else str(row[a]) for a in axes]
        cells += [str(row["best_epoch"]), f"{row[objective]:.4f}", f"{row['seconds']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
