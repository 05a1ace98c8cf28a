"""The propensity check behind docs/leaderboard.md's "Default results".

For every simulated dataset of a finished default grid (OUT/datasets/), trains
Multi-IPW with the grid's setting, and asks `tfcvr.evaluation.propensity_check`
how much of the click selection its pCTR (the propensity the IPW-family
estimators use) removes from the eval split, against the true CTR.

    python docs/experiments/propensity_check_grid.py bench_output/grid-default
"""

import glob
import json
import os
import sys

import numpy as np

from tfcvr.data.dataset_dir import DatasetDir
from tfcvr.evaluation import propensity_check
from tfcvr.features import keys
from tfcvr.training import train


def check(data_dir, model_name="multi_ipw"):
    model, _ = train(data_dir, model=model_name, epochs=1, batch_size=1024,
                     learning_rate=2e-3, verbose=0, seed=0,
                     params={"embedding_dim": 8,
                             "backbone_config": {"hidden_units": [64, 32]}})
    columns = {name: [] for name in ("pctr", "click", "conversion", "true_ctr", "true_cvr")}
    for features, labels in DatasetDir(data_dir).dataset(
            keys.EVAL_SPLIT, batch_size=8192, include_extra=True):
        columns["pctr"].append(np.ravel(model.predict_on_batch(features)[keys.CTR]))
        for name, key in (("click", keys.CLICK), ("conversion", keys.CONVERSION),
                          ("true_ctr", keys.TRUE_CTR), ("true_cvr", keys.TRUE_CVR)):
            columns[name].append(np.ravel(labels[key]))
    c = {k: np.concatenate(v) for k, v in columns.items()}
    result = propensity_check(c["click"], c["conversion"], c["true_cvr"],
                              {"true_ctr": c["true_ctr"], "pctr": c["pctr"]})
    result["corr_pctr_true_ctr"] = float(np.corrcoef(c["pctr"], c["true_ctr"])[0, 1])
    return result


def main(out):
    results = {}
    for path in sorted(glob.glob(os.path.join(out, "datasets", "sim-*"))):
        name = os.path.basename(path)
        results[name] = check(os.path.join(path, "data"))
        print(name, json.dumps({k: round(v, 4) for k, v in results[name].items()}),
              flush=True)
    with open(os.path.join(out, "propensity_check.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1])
