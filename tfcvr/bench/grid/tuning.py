"""`tfcvr bench grid --tuned`: every estimator at its own tuned setting.

Comparing a regularisation-sensitive estimator at another's setting is not
a comparison, so before the cells run each estimator is tuned
(`tfcvr.training.tuning.tune`, in a child process like every grid task) on
each dataset group's first-seed dataset, selecting on a held-out part of
that dataset's *training* split; the cells of every seed then train with
the tuned epochs, learning rate, dropout, weight decay, embedding L2 and
propensity. Tuning results are kept under `OUT/tuned/<group>/<model>/`
(`trials.md`, `trials.jsonl`, `best.json`) and reused while the tuning
config is unchanged.
"""

import concurrent.futures
import json
import os

from tfcvr.bench.grid.config import CONTROLS
from tfcvr.bench.grid.config import deep_merge
from tfcvr.bench.grid.config import short_hash
from tfcvr.bench.grid.runner import STATUS_OK

TUNED_DIR = "tuned"
RECORD_FILE = "TUNED.json"


def tuned_train_settings(train, best):
    """`train` with a tuned setting (`best.json` of `tune`) applied."""
    dropout = ((best.get("params") or {}).get("backbone_config") or {}).get("dropout", 0.0)
    controls = {name: best[name] for name in CONTROLS
                if best.get(name) not in (None, 0, 0.0, "model")}
    return train.replace(
        epochs=int(best["epochs"]),
        learning_rate=float(best["learning_rate"]),
        backbone_config=deep_merge(train.backbone_config, {"dropout": dropout}),
        controls=controls,
    )


def tune_grid(config, runner, options, jobs=1, say=print):
    """`config` with `tuned` filled: one tuning per (estimator, group).

    Args:
        config: `GridConfig`.
        runner: the `GridRunner` (builds the datasets, owns the executor).
        options: dict of `tune` arguments (`trials`, `max_epochs`,
            `objective`, `space`, `holdout_fraction`).
        jobs: int. Tunings at once.
        say: callable. Progress lines.

    Returns:
        `(config, table)`: the tuned config and a Markdown table of the
        chosen settings.
    """
    options = dict(options, seed=config.seeds[0])
    jobs_list = []
    for key, dataset in config.tuning_datasets().items():
        for variant in config.variants():
            jobs_list.append((key, dataset, variant))

    def one(job):
        key, dataset, variant = job
        # A variant (its own overrides) is tuned as a row of its own.
        model = variant.label
        error = runner.ensure_dataset(dataset, say)
        if error:
            raise ValueError(f"tuning {model} on {key}: {error}")
        out = os.path.join(runner.out_dir, TUNED_DIR, key, model)
        task = {"task": "tune", "model": variant.estimator,
                "data_dir": runner.data_dir(dataset), "out": out,
                "params": deep_merge(config.train.model_params(), variant.overrides),
                "batch_size": config.train.batch_size, "tuning": options}
        digest = short_hash({"task": task, "dataset": dataset.to_dict(),
                             "train": config.train.to_dict()})
        record_path = os.path.join(out, RECORD_FILE)
        if os.path.exists(record_path):
            with open(record_path) as f:
                record = json.load(f)
            if record.get("hash") == digest:
                say(f"tuned {model} on {key}: reused {out}")
                return job, record["best"]
        say(f"tuning {model} on {key} ({options['trials']} trials)")
        result = runner.executor.run_task(task, os.path.join(out, "_task"))
        if result.get("status") != STATUS_OK:
            raise ValueError(f"tuning {model} on {key} failed: {result.get('error')} "
                             f"(log: {result.get('log')})")
        os.makedirs(out, exist_ok=True)
        with open(record_path, "w") as f:
            json.dump({"hash": digest, "best": result["best"]}, f, indent=2, sort_keys=True)
        say(f"tuned {model} on {key}: epochs {result['best']['epochs']}, "
            f"lr {result['best']['learning_rate']:g}")
        return job, result["best"]

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        done = list(pool.map(one, jobs_list))
    tuned = {}
    lines = ["| group | estimator | epochs | learning rate | weight decay | embedding L2 | "
             "dropout | propensity | held-out objective |", "|" + " --: |" * 9]
    for (key, _, variant), best in done:
        model = variant.label
        settings = tuned_train_settings(config.train, best)
        tuned[(model, key)] = settings
        propensity = best.get("propensity") or "model"
        if best.get("propensity_calibration"):
            propensity += f"+{best['propensity_calibration']}"
        lines.append(
            f"| {key} | {model} | {settings.epochs} | {settings.learning_rate:g} | "
            f"{best.get('weight_decay', 0):g} | {best.get('embedding_l2', 0):g} | "
            f"{settings.backbone_config['dropout']:g} | {propensity} | "
            f"{best['tuning']['value']:.4f} |")
    table = "\n".join(lines) + "\n"
    os.makedirs(os.path.join(runner.out_dir, TUNED_DIR), exist_ok=True)
    with open(os.path.join(runner.out_dir, TUNED_DIR, "settings.md"), "w") as f:
        f.write(table)
    return config.replace(tuned=tuned), table
