"""One worker of a two-worker `tfcvr.training.train` run (strategy
`multi_worker`, `TF_CONFIG` from the environment).

Run as a script, one process per worker:
`python multi_worker_train.py DATA_DIR MODEL_DIR OUT.npz`. Trains a few
steps and writes the worker's final weights, its optimizer iterations and
the directory it wrote to (`written_to`) into OUT.npz; the test compares
the workers and checks who wrote what.
"""

import json
import sys

import numpy as np

from tfcvr.training import train


def main(data_dir, model_dir, out_path):
    lines = []
    model, info = train(
        data_dir, model="esmm", epochs=1, batch_size=32,
        model_dir=model_dir, strategy="multi_worker", validate=False,
        params={"embedding_dim": 4, "backbone_config": {"hidden_units": [8]}},
        checkpoint_every=2, jit_compile=False, verbose=0, log=lines.append,
    )
    np.savez(
        out_path,
        *model.get_weights(),
        info=json.dumps({
            "iterations": info["iterations"],
            "written_to": info["written_to"],
            "replicas": info["replicas"],
            "log": lines,
        }),
    )


if __name__ == "__main__":
    main(*sys.argv[1:4])
