import glob
import json
import os
import time
import warnings

import keras
import numpy as np

from tfcvr.data.dataset_dir import DatasetDir
from tfcvr.features import check_same_vocabulary
from tfcvr.features import keys
from tfcvr.models.cvr_model import DEFAULT_TRAIN_METRICS
from tfcvr.models.registry import build_estimator
from tfcvr.training.monitor import DEFAULT_MONITOR
from tfcvr.training.best_epoch_stopping import BestEpochStopping
from tfcvr.training.embedding_l2 import apply_embedding_l2
from tfcvr.training.model_dir import MODEL_FILE
from tfcvr.training.model_dir import copy_encoding_files
from tfcvr.training.optimizer import make_optimizer
from tfcvr.training.pretraining import plan_pretraining
from tfcvr.training.propensity_source import PropensitySource
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
    verbose="auto",
    callbacks=(),
    train_metrics=DEFAULT_TRAIN_METRICS,
    weight_decay=0.0,
    embedding_l2=0.0,
    early_stopping=None,
    monitor=DEFAULT_MONITOR,
    validation_data=None,
    propensity="model",
    propensity_calibration=None,
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
        weight_decay: float >= 0. AdamW's decoupled weight decay; 0 is Adam.
        embedding_l2: float >= 0. L2 on every embedding table
            (`tfcvr.training.embedding_l2`).
        early_stopping: int or None. Patience, in epochs, of
            `BestEpochStopping` on `monitor`; the best epoch's weights are
            restored (and saved).
        monitor: str. Eval metric of early stopping. Defaults to
            `val_ctcvr_auc`.
        validation_data: str or None. A dataset directory whose eval split
            (or, without one, train split) replaces this dataset's eval
            split; it must encode features with this dataset's vocabulary.
        propensity: str or `PropensitySource`. The IPW/DR family's click
            propensity: `"model"`, `"ctr_model"` or `"column:NAME"`.
        propensity_calibration: str or None. `"platt"` or `"isotonic"` for
            `"ctr_model"`, fitted on the eval split.

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
    if early_stopping is not None and not validate:
        raise ValueError("early stopping watches the eval split; it cannot run with validation off")
    data = DatasetDir(data_dir)
    optimizer = make_optimizer(learning_rate, weight_decay)
    stopper = BestEpochStopping(early_stopping, monitor) if early_stopping else None
    if not isinstance(propensity, PropensitySource):
        propensity = PropensitySource(propensity, calibration=propensity_calibration)
    held_out = data
    if validation_data is not None:
        check_same_vocabulary(data_dir, validation_data)
        held_out = DatasetDir(validation_data)
    # Two-stage estimators (e.g. CSTWA) first train the model whose tables
    # they are handed; see tfcvr.training.pretraining.
    say = (lambda line: None) if verbose == 0 else None
    stage, model_params = plan_pretraining(model, data.schema, params, say=say)
    model_params = propensity.plan_stage(model, model_params, say=say)
    if propensity.external:
        # Refused before any stage trains, on an unbuilt-weights probe.
        probe = build_estimator(model, data.schema, model_params)
        probe.build()
        propensity.check_estimator(probe)
        del probe
    if stage is not None:
        stage.run(lambda **run: train(
            data_dir, batch_size=batch_size, strategy=strategy,
            learning_rate=learning_rate, precision=precision,
            steps_per_execution=steps_per_execution, validate=False,
            cache=cache, seed=seed, jit_compile=jit_compile, verbose=verbose,
            **run)[0], data_dir, data.schema, model_dir, epochs)
    if propensity.external:
        propensity.prepare(data, lambda **run: train(
            data_dir, batch_size=batch_size, learning_rate=learning_rate,
            seed=seed, validate=False, verbose=verbose, **run)[0],
            model_dir, epochs, calibration_data=held_out,
            calibration_split=held_out_split(held_out, own=validation_data is None))
    keras.utils.set_random_seed(seed)
    keras.mixed_precision.set_global_policy(precision)
    try:
        dist = get_strategy(strategy)
        labels = data.schema.labels
        train_ds = propensity.dataset(
            data, keys.TRAIN_SPLIT, batch_size, labels, seed=seed, cache=cache
        )
        eval_ds = None
        if validate:
            split = held_out_split(held_out, own=validation_data is None)
            if split is not None:
                eval_ds = propensity.dataset(
                    held_out, split, batch_size, labels, training=False, cache=cache)
        if stopper is not None and eval_ds is None:
            raise ValueError(
                f"early stopping needs an eval split, and {held_out.path} has none; "
                f"give --validation-data DIR"
            )
        with dist.scope():
            net = build_estimator(model, data.schema, model_params)
            net.build()
            if stage is not None:
                stage.hand_over(net)
            apply_embedding_l2(net, embedding_l2)
            net.compile(
                optimizer=optimizer,
                steps_per_execution=steps_per_execution,
                jit_compile=jit_compile,
                train_metrics=train_metrics,
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
            callbacks=[meter, *callbacks] + ([stopper] if stopper else []),
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
    if stopper is not None:
        info["early_stopping"] = stopper.record()
    if propensity.external:
        info["propensity"] = propensity.record()
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
            "weight_decay": weight_decay,
            "embedding_l2": embedding_l2,
            "early_stopping": early_stopping,
            "monitor": stopper.monitor if stopper else None,
            "validate": validate,
            "validation_data": validation_data and os.path.abspath(validation_data),
            "verbose": verbose,
            "propensity": propensity.describe(),
            "propensity_calibration": propensity.calibration,
        }, info)
    return net, info


def held_out_split(held_out, own):
    """The split that validates: the eval split; for a `--validation-data`
    directory without one (preprocessed with `--split train`) its train
    split; None when the training dataset itself has no eval split."""
    splits = [keys.EVAL_SPLIT] if own else [keys.EVAL_SPLIT, keys.TRAIN_SPLIT]
    for split in splits:
        if glob.glob(os.path.join(held_out.path, split, "*.tfrecord*")):
            return split
    return None


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
