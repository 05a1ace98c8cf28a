"""Method or implementation? Multi-IPW and ESCM²-IPS with the true propensity.

The IPW-family estimators are unbiased when their propensity is the true
click probability. On simulated data that probability is known
(`true_ctr`), so each estimator can be trained twice on the same data: as
shipped (propensity = its own pCTR) and with the oracle propensity in its
IPW term (everything else unchanged). If the oracle version removes the
unclicked-row bias and the shipped one does not, the loss is implemented
right and the learned propensity is what falls short.

    python docs/experiments/oracle_propensity.py DATASET_DIR [DATASET_DIR ...]
"""

import json
import sys

import keras

from tfcvr.data.dataset_dir import DatasetDir
from tfcvr.evaluation import evaluate_model
from tfcvr.features import keys
from tfcvr.models import ESCM2IPS
from tfcvr.models import MultiIPW
from tfcvr.models import NaiveCVR
from tfcvr.models import oracle_propensity

SETTING = {"embedding_dim": 8, "backbone_config": {"hidden_units": [64, 32]}}


def run(data_dir, seed=0):
    data = DatasetDir(data_dir)
    results = {}
    for name, cls in (("naive", NaiveCVR), ("multi_ipw", MultiIPW),
                      ("multi_ipw+oracle", oracle_propensity(MultiIPW)),
                      ("escm2_ips", ESCM2IPS), ("escm2_ips+oracle", oracle_propensity(ESCM2IPS))):
        keras.utils.set_random_seed(seed)
        model = cls(data.schema, **SETTING)
        model.compile(optimizer=keras.optimizers.Adam(2e-3))
        model.fit(data.dataset(keys.TRAIN_SPLIT, 1024, seed=seed, include_extra=True),
                  epochs=1, verbose=0)
        metrics = evaluate_model(
            model, data.dataset(keys.EVAL_SPLIT, 8192, include_extra=True))
        results[name] = {k: round(float(metrics[k]), 4) for k in (
            "cvr_auc_true", "cvr_bias_unclicked", "cvr_pcoc_clicked")}
        print(data_dir, name, json.dumps(results[name]), flush=True)
    return results


if __name__ == "__main__":
    print(json.dumps({d: run(d) for d in sys.argv[1:]}, indent=1))
