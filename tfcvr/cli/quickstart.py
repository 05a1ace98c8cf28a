"""simulate -> Beam -> TFRecords -> train NaiveCVR and ESMM -> metrics ->
export ESMM -> one prediction through the exported signature (`make demo`)."""

import json
import os
import shutil
import time

from beam_jobs import preprocess
from tfcvr.data.encode_splits import describe
from tfcvr.data.encode_splits import encode_splits
from tfcvr.evaluation import format_metrics_table
from tfcvr.evaluation import json_safe
from tfcvr.export import export_saved_model
from tfcvr.export import load_and_predict
from tfcvr.features import keys
from tfcvr.simulation import simulate
from tfcvr.training import train
from tfcvr.training.evaluate_dir import evaluate_dir

ENCODED_SPLITS = (keys.TRAIN_SPLIT, keys.EVAL_SPLIT)
SUMMARY_METRICS = (
    "cvr_auc_true",
    "cvr_bias_unclicked",
    "cvr_rmse_true",
    "cvr_auc_clicked",
    "cvr_auc_exposure",
    "ctcvr_auc",
    "ctr_auc",
)


def add_arguments(parser):
    parser.add_argument("--out", default="demo_output", help="working directory (recreated)")
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--selection-bias", type=float, default=2.0)
    parser.add_argument("--ctr", type=float, default=0.04)
    parser.add_argument("--cvr", type=float, default=0.05,
                        help="CVR among clicks of the simulated logs")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--models", default="naive,esmm")
    parser.add_argument("--saved-models", default="saved_models")


def _step(number, text):
    print(f"\n[{number}/6] {text}", flush=True)


def run(args):
    started = time.perf_counter()
    shutil.rmtree(args.out, ignore_errors=True)
    logs_dir = os.path.join(args.out, "logs")
    data_dir = os.path.join(args.out, "data")

    _step(1, f"simulating {args.rows:,} impressions (selection_bias="
             f"{args.selection_bias}, CTR {args.ctr}, CVR|click {args.cvr})")
    result = simulate(logs_dir, rows=args.rows, seed=args.seed,
                      selection_bias=args.selection_bias, ctr=args.ctr,
                      cvr=args.cvr, fmt="csv", shards=2, progress=True)
    print(json.dumps({k: v for k, v in result.items()
                      if isinstance(v, (int, float, str))}))

    _step(2, "Beam (DirectRunner): logs -> TFRecords + schema.json + vocab/")
    preprocess.run_job([
        "--input", os.path.join(logs_dir, "*.csv"),
        "--format", "csv",
        "--spec", os.path.join(logs_dir, "spec.json"),
        "--out", data_dir,
    ])
    # What `tfcvr preprocess` does after the job: training reads the
    # splits encoded once instead of looking values up every epoch.
    manifests = encode_splits(data_dir, ENCODED_SPLITS)
    print(describe(data_dir, manifests, ENCODED_SPLITS), flush=True)

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    results = {}
    model_dirs = {}
    for i, name in enumerate(models):
        _step(3, f"training {name} ({i + 1}/{len(models)}), {args.epochs} epochs")
        model_dirs[name] = os.path.join(args.out, "models", name)
        model, _ = train(data_dir, model=name, epochs=args.epochs,
                         batch_size=args.batch_size,
                         model_dir=model_dirs[name], seed=args.seed,
                         verbose=2)
        _step(4, f"evaluating {name} on the eval split")
        results[name] = evaluate_dir(data_dir, model_dirs[name], model=model)

    print("\nMetrics on the eval split (cvr_*_true use the simulator's ground "
          "truth for every impression, clicked or not):\n")
    print(format_metrics_table(results, metrics=list(SUMMARY_METRICS)))
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(json_safe(results), f, indent=2, sort_keys=True)

    exported = "esmm" if "esmm" in model_dirs else models[-1]
    _step(5, f"exporting {exported} for TF Serving under {args.saved_models}/")
    path = export_saved_model(model_dirs[exported], args.saved_models,
                              name=exported)
    print(f"SavedModel: {path}")

    _step(6, "one prediction through the exported serving_default signature")
    row, outputs = load_and_predict(path, data_dir)
    print("raw request:", json.dumps(row))
    print("response:   ", json.dumps(
        {k: round(float(v), 6) for k, v in outputs.items()
         if k in keys.SERVING_OUTPUTS}))
    if "naive" in results and "esmm" in results:
        a = results["esmm"].get("cvr_auc_true")
        b = results["naive"].get("cvr_auc_true")
        verdict = "beats" if a > b else "does NOT beat"
        print(f"\nESMM cvr_auc_true {a:.4f} {verdict} NaiveCVR's {b:.4f}.")
    print(f"done in {time.perf_counter() - started:.0f}s")
    return 0
