"""The verdict on debiasing at tuned settings (docs/leaderboard.md, "Tuned").

Reads a finished `tfcvr bench grid --tuned` output directory and writes
OUT/verdict.md and OUT/verdict.json:

1. per estimator, mean ± std over seeds of `cvr_auc_true` and
   `|cvr_bias_unclicked|`, and the paired difference with naive on the same
   data (mean ± standard error of the per-seed differences); an estimator
   beats naive on a metric when the paired difference is in its favour and
   larger than its standard error;
2. the propensity diagnostics (`tfcvr.evaluation.propensity_check`) on each
   eval split: SNIPS estimates of the entire-space CVR with the true CTR,
   Multi-IPW's own pCTR and the separately trained CTR model's pCTR, both at
   Multi-IPW's tuned setting;
3. with `--oracle`, each IPW/DR estimator of the grid retrained at its tuned
   setting with the simulator's true CTR as its propensity
   (`--propensity column:true_ctr`), nothing else changed.

    python docs/experiments/tuned_verdict.py OUT [--oracle[=a,b]] [--no-diagnostics]
"""

import glob
import json
import math
import os
import sys
import tempfile

import numpy as np

from tfcvr.bench.grid import ResultsStore
from tfcvr.bench.grid.config import SimulatedDataset
from tfcvr.bench.grid.runner import READY_FILE
from tfcvr.data.dataset_dir import DatasetDir
from tfcvr.evaluation import propensity_check
from tfcvr.features import keys
from tfcvr.training import train
from tfcvr.training.evaluate_dir import evaluate_dir
from tfcvr.training.model_dir import load_model_dir

METRICS = ("cvr_auc_true", "abs_cvr_bias_unclicked")
# Direction of "better" per metric.
BETTER = {"cvr_auc_true": 1.0, "abs_cvr_bias_unclicked": -1.0}
IPW_DR = ("multi_ipw", "multi_dr", "escm2_ips", "escm2_dr", "dr_jl", "mrdr", "dcmt")


def _value(metrics, name):
    if name == "abs_cvr_bias_unclicked":
        value = metrics.get("cvr_bias_unclicked")
        return None if value is None else abs(value)
    return metrics.get(name)


def _mean_sd(values):
    values = np.asarray(values, float)
    sd = float(values.std(ddof=1)) if len(values) > 1 else math.nan
    return float(values.mean()), sd


def leaderboard(rows):
    """`{model: {metric: {seed: value}}}` of the ok rows."""
    out = {}
    for row in rows:
        if row.get("status") != "ok":
            continue
        for name in METRICS:
            out.setdefault(row["model"], {}).setdefault(name, {})[row["seed"]] = _value(
                row["metrics"], name)
        out[row["model"]].setdefault("cvr_bias_unclicked", {})[row["seed"]] = row[
            "metrics"].get("cvr_bias_unclicked")
    return out


def paired(board, model, name, base="naive"):
    seeds = sorted(set(board[model][name]) & set(board[base][name]))
    diffs = [board[model][name][s] - board[base][name][s] for s in seeds]
    mean, sd = _mean_sd(diffs)
    se = sd / math.sqrt(len(diffs)) if len(diffs) > 1 else math.nan
    beats = BETTER[name] * mean > 0 and abs(mean) > se
    return {"pairs": len(diffs), "mean": mean, "se": se, "diffs": diffs, "beats_naive": bool(beats)}


def propensity_diagnostics(out, setting, pattern="sim-*"):
    results = {}
    for path in sorted(glob.glob(os.path.join(out, "datasets", pattern, "data"))):
        if not os.path.exists(os.path.join(os.path.dirname(path), READY_FILE)):
            continue
        name = os.path.basename(os.path.dirname(path))
        with tempfile.TemporaryDirectory() as model_dir:
            net, _ = train(path, model="multi_ipw", batch_size=setting["batch_size"],
                           epochs=setting["epochs"], learning_rate=setting["learning_rate"],
                           weight_decay=setting.get("weight_decay", 0.0),
                           embedding_l2=setting.get("embedding_l2", 0.0),
                           params=setting["params"], verbose=0, seed=0,
                           propensity="ctr_model", model_dir=model_dir)
            ctr_model, _ = load_model_dir(os.path.join(model_dir, "propensity", "pretrained"))
            cols = {k: [] for k in ("own", "separate", "click", "conversion", "true_ctr", "true_cvr")}
            for features, labels in DatasetDir(path).dataset(
                    keys.EVAL_SPLIT, 8192, include_extra=True):
                cols["own"].append(np.ravel(net.predict_on_batch(features)[keys.CTR]))
                cols["separate"].append(np.ravel(ctr_model.predict_on_batch(features)[keys.CTR]))
                for key in ("click", "conversion", "true_ctr", "true_cvr"):
                    cols[key].append(np.ravel(labels[key]))
        c = {k: np.concatenate(v) for k, v in cols.items()}
        result = propensity_check(c["click"], c["conversion"], c["true_cvr"], {
            "true_ctr": c["true_ctr"], "own_pctr": c["own"], "ctr_model_pctr": c["separate"]})
        for key in ("own", "separate"):
            result[f"corr_{key}_true_ctr"] = float(np.corrcoef(c[key], c["true_ctr"])[0, 1])
        results[name] = result
        print(name, json.dumps({k: round(v, 4) for k, v in result.items()}), flush=True)
    return results


def oracle_runs(out, rows, models):
    results = {}
    for row in rows:
        if row.get("status") != "ok" or row["model"] not in models:
            continue
        cell = row["config"]
        data = os.path.join(out, "datasets",
                            SimulatedDataset.from_dict(cell["dataset"]).dir_name, "data")
        settings = cell["train"]
        params = {"embedding_dim": settings["embedding_dim"], "backbone": settings["backbone"],
                  "backbone_config": settings["backbone_config"], **settings["params"]}
        controls = dict(settings.get("controls", {}), propensity="column:true_ctr",
                        propensity_calibration=None)
        net, _ = train(data, model=row["model"], epochs=settings["epochs"],
                       batch_size=settings["batch_size"], learning_rate=settings["learning_rate"],
                       params=params, verbose=0, seed=row["seed"], **controls)
        metrics = evaluate_dir(data, None, model=net, progress=False)
        results.setdefault(row["model"], {})[row["seed"]] = {
            "cvr_auc_true": metrics["cvr_auc_true"],
            "cvr_bias_unclicked": metrics["cvr_bias_unclicked"],
            "shipped_cvr_auc_true": row["metrics"]["cvr_auc_true"],
            "shipped_cvr_bias_unclicked": row["metrics"]["cvr_bias_unclicked"]}
        print("oracle", row["model"], row["seed"], json.dumps(results[row["model"]][row["seed"]]),
              flush=True)
    return results


def main(out, oracle=(), diagnostics=True):
    rows = list(ResultsStore(os.path.join(out, "results.jsonl")).latest().values())
    board = leaderboard(rows)
    lines = ["| estimator | cvr_auc_true | cvr_bias_unclicked | paired Δ cvr_auc_true (± SE) | "
             "paired Δ abs(bias) (± SE) | beats naive on both |", "|" + " --: |" * 6]
    verdict = {"paired": {}}
    for model in sorted(board, key=lambda m: -np.mean(list(board[m]["cvr_auc_true"].values()))):
        auc = _mean_sd(list(board[model]["cvr_auc_true"].values()))
        bias = _mean_sd(list(board[model]["cvr_bias_unclicked"].values()))
        cells = [model, f"{auc[0]:.4f} ± {auc[1]:.4f}", f"{bias[0]:+.4f} ± {bias[1]:.4f}"]
        if model == "naive":
            cells += ["", "", ""]
        else:
            p = {name: paired(board, model, name) for name in METRICS}
            verdict["paired"][model] = p
            cells += [f"{p['cvr_auc_true']['mean']:+.4f} ± {p['cvr_auc_true']['se']:.4f}",
                      f"{p['abs_cvr_bias_unclicked']['mean']:+.4f} ± "
                      f"{p['abs_cvr_bias_unclicked']['se']:.4f}",
                      "yes" if all(p[n]["beats_naive"] for n in METRICS) else "no"]
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    print(table)
    verdict["table"] = table
    tuned = glob.glob(os.path.join(out, "tuned", "*", "multi_ipw", "best.json"))
    if tuned and diagnostics:
        with open(tuned[0]) as f:
            best = json.load(f)
        ipw_row = next(r for r in rows if r["model"] == "multi_ipw" and r["status"] == "ok")
        best["batch_size"] = ipw_row["config"]["train"]["batch_size"]
        verdict["propensity_check"] = propensity_diagnostics(out, best)
    if oracle:
        verdict["oracle"] = oracle_runs(out, rows, oracle)
    name = "verdict" if diagnostics else "verdict-oracle"
    with open(os.path.join(out, f"{name}.json"), "w") as f:
        json.dump(verdict, f, indent=1)
    with open(os.path.join(out, f"{name}.md"), "w") as f:
        f.write(table)


if __name__ == "__main__":
    # --oracle (every IPW/DR estimator of the grid) or --oracle=a,b; --no-diagnostics.
    flags = sys.argv[2:]
    chosen = [f.split("=", 1)[1].split(",") if "=" in f else list(IPW_DR)
              for f in flags if f.startswith("--oracle")]
    main(sys.argv[1], oracle=tuple(chosen[0]) if chosen else (),
         diagnostics="--no-diagnostics" not in flags)
