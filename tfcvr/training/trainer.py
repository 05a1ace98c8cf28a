import json
import os
import time
import warnings

import keras
import numpy as np

from tfcvr.data.dataset_dir import DatasetDir
from tfcvr.features import keys
from tfcvr.models.cvr_model import DEFAULT_TRAIN_METRICS
from tfcvr.models.registry import build_estimator
from tfcvr.training.model_dir import MODEL_FILE
from tfcvr.training.model_dir import copy_encoding_files
from tfcvr.training.pretraining import plan_pretraining
from tfcvr.training.strategy import get_strategy
from tfcvr.training.throughput_callback import ThroughputCallback

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
TRAIN_CONFIG_FILE = "train_config.json"


def train(
    data_dir,
    model="esmm",
    epochs=1,
    batch_size=4096,
    model_dir=None,
    strategy="auto",
    learning_rate=1e-3,
    precision="float32",
    steps_per_execution=1,
    params=None,
    validate=True,
    cache=False,
    seed=0,
    jit_compile="auto",
    run_eagerly=False,
    verbose="auto",
    callbacks=(),
    train_metrics=DEFAULT_TRAIN_METRICS,
):
    """Trains a registered estimator on a preprocessed dataset directory.

    Saves `model_dir/model.keras`, a copy of `schema.json` and `vocab/` (so
    export needs only the model directory), `train_config.json` and
    `history.json`. An estimator with a first stage (a `PretrainingStage`,
    e.g. CSTWA) gets it trained first on the same split, saved in
    `model_dir/pretrained/` (see `tfcvr.training.pretraining`).

    Args:
        data_dir: str. Dataset directory written by `tfcvr preprocess`.
        model: str. Registry name (see `tfcvr models`).
        epochs, batch_size, learning_rate: training settings (Adam).
        model_dir: str or None. Where to save; None saves nothing.
        strategy: str. See `tfcvr.training.get_strategy`.
        precision: str. `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`.
        steps_per_execution: int. Batches per compiled step.
        params: dict. Estimator constructor arguments.
        validate: bool. Evaluate the eval split after each epoch.
        cache: bool. Cache parsed batches in memory after the first epoch.
        seed: int. Seeds Keras, NumPy and the shuffles.
        train_metrics: str. `"auc"` logs approximate AUCs during fit and
            validation, `"none"` the loss only (see `CVRModel`).
        run_eagerly: bool. No graph tracing: faster on a handful of
            batches (a notebook, a test), much slower on real data.

    Returns:
        `(model, info)`; `info` has the history, the steady-state training
        throughput and the wall time (both stages of a two-stage estimator,
        whose first is also under `info["pretraining"]`).
    """
    if precision not in PRECISIONS:
        raise ValueError(
            f"precision must be one of {list(PRECISIONS)}. Received: "
            f"precision={precision!r}"
        )
    if epochs < 1 or batch_size < 1 or steps_per_execution < 1:
        raise ValueError(
            "epochs, batch_size and steps_per_execution must be >= 1. "
            f"Received: epochs={epochs}, batch_size={batch_size}, "
            f"steps_per_execution={steps_per_execution}"
        )
    data = DatasetDir(data_dir)
    # Two-stage estimators (e.g. CSTWA) first train the model whose tables
    # they are handed; see tfcvr.training.pretraining.
    stage, model_params = plan_pretraining(
        model, data.schema, params,
        say=(lambda line: None) if verbose == 0 else None)
    if stage is not None:
        stage.run(lambda **run: train(
            data_dir, batch_size=batch_size, strategy=strategy,
            learning_rate=learning_rate, precision=precision,
            steps_per_execution=steps_per_execution, validate=False,
            cache=cache, seed=seed, jit_compile=jit_compile,
            run_eagerly=run_eagerly, verbose=verbose, **run)[0], data_dir, data.schema, model_dir, epochs)
    keras.utils.set_random_seed(seed)
    keras.mixed_precision.set_global_policy(precision)
    try:
        dist = get_strategy(strategy)
        train_ds = data.dataset(
            keys.TRAIN_SPLIT, batch_size, seed=seed, cache=cache
        )
        eval_ds = None
        if validate:
            try:
                eval_ds = data.dataset(keys.EVAL_SPLIT, batch_size, cache=cache)
            except ValueError:
                eval_ds = None
        with dist.scope():
            net = build_estimator(model, data.schema, model_params)
            net.build()
            if stage is not None:
                stage.hand_over(net)
            net.compile(
                optimizer=keras.optimizers.Adam(learning_rate),
                steps_per_execution=steps_per_execution,
                jit_compile=jit_compile,
                train_metrics=train_metrics,
                run_eagerly=run_eagerly,
            )
        meter = ThroughputCallback(
            batch_size, steps_per_execution=steps_per_execution
        )
        start = time.perf_counter()
        # Keras warns about finite tf.data inputs that are expected here.
        warnings.filterwarnings("ignore", message=".*shuffle=True.*was passed")
        warnings.filterwarnings("ignore", message=".*input ran out of data")
        history = net.fit(
            train_ds,
            validation_data=eval_ds,
            epochs=epochs,
            callbacks=[meter, *callbacks],
            verbose=verbose,
        )
        wall = time.perf_counter() - start
    finally:
        keras.mixed_precision.set_global_policy("float32")
    info = {
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        "examples_per_second": meter.examples_per_second,
        "wall_seconds": wall,
    }
    if stage is not None:
        info["pretraining"] = stage.record()
        info["wall_seconds"] += stage.seconds + stage.hand_over_seconds
    if model_dir:
        save_model_dir(net, model_dir, data, {
            "data_dir": os.path.abspath(data_dir),
            "model": model,
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "precision": precision,
            "steps_per_execution": steps_per_execution,
            "strategy": strategy,
            "train_metrics": train_metrics,
            "params": params or {},
            "seed": seed,
            "backend": keras.backend.backend(),
        }, info)
    return net, info


def save_model_dir(model, model_dir, data, config, info):
    os.makedirs(model_dir, exist_ok=True)
    model.save(os.path.join(model_dir, MODEL_FILE))
    copy_encoding_files(data.path, model_dir)
    with open(os.path.join(model_dir, TRAIN_CONFIG_FILE), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    with open(os.path.join(model_dir, "history.json"), "w") as f:
        json.dump(info, f, indent=2, sort_keys=True, default=_json_default)


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)
