import shutil

import numpy as np

from tfcvr.data import encode_split
from tfcvr.evaluation import metric_names as m
from tfcvr.features import keys
from tfcvr.training.evaluate_dir import evaluate_dir


def test_metrics_on_encoded_shards_equal_the_raw_path(trained, tmp_path):
    data_dir, model_dir, model = trained
    copy = str(tmp_path / "data")
    shutil.copytree(data_dir, copy)
    encode_split(copy, keys.EVAL_SPLIT, chunk_rows=16)
    metrics = {
        fmt: evaluate_dir(copy, model_dir, batch_size=24, progress=False,
                          model=model, input_format=fmt)
        for fmt in ("raw", "encoded")
    }
    assert sorted(metrics["encoded"]) == sorted(metrics["raw"])
    numbers = {k: v for k, v in metrics["raw"].items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)}
    assert {m.CTR_AUC, m.CTCVR_AUC, m.CVR_AUC_CLICKED, m.GAUC_CTR} <= set(numbers)
    for name, value in numbers.items():
        # Numeric inputs may differ by an ulp between batch layouts.
        np.testing.assert_allclose(metrics["encoded"][name], value, rtol=1e-5,
                                   atol=1e-7, err_msg=name)
