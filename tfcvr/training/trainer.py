import contextlib
import glob
import json
import os
import shutil
import time
import warnings

import keras
import numpy as np
import tensorflow as tf

from tfcvr.data.dataset_dir import DatasetDir
from tfcvr.features import check_same_vocabulary
from tfcvr.features import keys
from tfcvr.models.cvr_model import DEFAULT_TRAIN_METRICS
from tfcvr.models.registry import build_estimator
from tfcvr.training.best_epoch_stopping import BestEpochStopping
from tfcvr.training.embedding_l2 import apply_embedding_l2
from tfcvr.training.epoch_data import EpochData
from tfcvr.training.epoch_data import evaluation_input
from tfcvr.training.missing_labels_warning import MissingLabelsWarning
from tfcvr.training.model_dir import MODEL_FILE
from tfcvr.training.model_dir import copy_encoding_files
from tfcvr.training.non_finite_loss_error import NonFiniteLossError
from tfcvr.training.monitor import DEFAULT_MONITOR
from tfcvr.training.non_finite_loss_guard import NonFiniteLossGuard
from tfcvr.training.optimizer import check_optimizer_settings
from tfcvr.training.optimizer import make_optimizer
from tfcvr.training.pretraining import plan_pretraining
from tfcvr.training.propensity_source import PropensitySource
from tfcvr.training.replica_layout import ReplicaLayout
from tfcvr.training.strategy import get_strategy
from tfcvr.training.throughput_callback import ThroughputCallback
from tfcvr.training.training_checkpoint import CHECKPOINT_DIR
from tfcvr.training.training_checkpoint import TrainingCheckpoint
from tfcvr.training.training_split import check_training_split

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
TRAIN_CONFIG_FILE = "train_config.json"
HISTORY_FILE = "history.json"
# About a minute of training at 64k examples/s with batch 4096 on a CPU.
DEFAULT_CHECKPOINT_EVERY = 1000
# Settings a resumed run may change; any other difference from the
# checkpointed run makes the checkpoint another run's.
# `input_format` (the one read) is not among them: the same rows in another
# order would break the resumed run's promise of the same batches.
RESUMABLE_CHANGES = ("epochs", "strategy", "checkpoint_every", "deterministic",
                     "input_format_requested")


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
    checkpoint_every=DEFAULT_CHECKPOINT_EVERY,
    deterministic=False,
    restart=False,
    log=print,
    weight_decay=0.0,
    embedding_l2=0.0,
    early_stopping=None,
    monitor=DEFAULT_MONITOR,
    validation_data=None,
    propensity="model",
    propensity_calibration=None,
    input_format="auto",
    optimizer="adam",
):
    """Trains a registered estimator on a preprocessed dataset directory.

    Saves `model_dir/model.keras`, a copy of `schema.json` and `vocab/` (so
    export needs only the model directory), `train_config.json` and
    `history.json`. With a `model_dir`, the run checkpoints itself in
    `model_dir/checkpoint/` every `checkpoint_every` steps and at each
    epoch end; the same call after a crash resumes from there (one line
    says so) and the checkpoint is removed once `model.keras` is written.
    A NaN or infinite loss stops training with `NonFiniteLossError` and
    writes no `model.keras`. On a worker other than the chief of a
    multi-worker run everything is written to a temporary directory that is
    then removed. An estimator with a first stage (a `PretrainingStage`,
    e.g. CSTWA) gets it trained first on the same split, saved in
    `model_dir/pretrained/` (see `tfcvr.training.pretraining`).

    Args:
        data_dir: str. Dataset directory written by `tfcvr preprocess`.
        model: str. Registry name (see `tfcvr models`).
        epochs, learning_rate: training settings (Adam).
        batch_size: int. The global batch size, split over the replicas.
        model_dir: str or None. Where to save; None saves nothing.
        strategy: str. See `tfcvr.training.get_strategy`.
        precision: str. `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`.
        steps_per_execution: int. Batches per compiled step.
        params: dict. Estimator constructor arguments.
        validate: bool. Evaluate the eval split after each epoch.
        cache: bool. Cache parsed batches in memory after the first epoch.
        seed: int. Seeds Keras, NumPy and each epoch's order.
        train_metrics: str. `"auc"` logs approximate AUCs during fit and
            validation, `"none"` the loss and its terms only (see `CVRModel`).
        run_eagerly: bool. No graph tracing: faster on a handful of
            batches (a notebook, a test), much slower on real data.
        checkpoint_every: int. Steps between checkpoints (0: epoch ends
            only).
        deterministic: bool. Deterministic TensorFlow ops and input
            pipeline (same seed and data give the same metrics; slower).
        restart: bool. Discard an existing checkpoint instead of resuming.
        log: callable taking one line of the training log.
        weight_decay: float >= 0. AdamW's decoupled weight decay; 0 is Adam.
        optimizer: str. `"adam"` (default), `"lazy_adam"` or
            `"keras_adam"`; see `tfcvr.training.optimizer.make_optimizer`.
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
        input_format: str. `"auto"` reads the encoded shards of a split
            when they are valid (`tfcvr encode`) and the raw TFRecords
            otherwise; `"raw"` or `"encoded"` force one (see `DatasetDir`).

    Returns:
        `(model, info)`; `info` has the history, the steady-state training
        throughput, the wall time and the replica layout (both stages of
        a two-stage estimator, whose first is also under
        `info["pretraining"]`).
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
    data = DatasetDir(data_dir, input_format=input_format)
    check_training_split(data)
    # Built later, in the strategy's scope.
    check_optimizer_settings(learning_rate, weight_decay, optimizer)
    stopper = BestEpochStopping(early_stopping, monitor) if early_stopping else None
    if not isinstance(propensity, PropensitySource):
        propensity = PropensitySource(propensity, calibration=propensity_calibration)
    held_out = data
    if validation_data is not None:
        check_same_vocabulary(data_dir, validation_data)
        held_out = DatasetDir(validation_data, input_format=input_format)
    held_out_name = held_out_split(held_out, own=validation_data is None)
    config = {
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
        "cache": cache,
        "checkpoint_every": checkpoint_every,
        "deterministic": deterministic,
        "backend": keras.backend.backend(),
        "weight_decay": weight_decay,
        "optimizer": optimizer,
        "embedding_l2": embedding_l2,
        "early_stopping": early_stopping,
        "monitor": stopper.monitor if stopper else None,
        "validate": validate,
        "validation_data": validation_data and os.path.abspath(validation_data),
        "verbose": verbose,
        "propensity": propensity.describe(),
        "propensity_calibration": propensity.calibration,
        # What the training split is read from (see DatasetDir), and the
        # choice asked for.
        "input_format": data.format_of(keys.TRAIN_SPLIT),
        "input_format_requested": input_format,
    }
    fingerprint = {
        k: v for k, v in config.items() if k not in RESUMABLE_CHANGES
    }
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
    def train_stage(**run):
        # A first stage (pretraining or the propensity's CTR model) trains
        # under the same controls as the estimator it feeds.
        return train(
            data_dir, batch_size=batch_size, strategy=strategy,
            learning_rate=learning_rate, precision=precision,
            steps_per_execution=steps_per_execution, validate=False,
            cache=cache, seed=seed, jit_compile=jit_compile,
            run_eagerly=run_eagerly, verbose=verbose,
            checkpoint_every=checkpoint_every, deterministic=deterministic,
            restart=restart, log=log, input_format=input_format,
            optimizer=optimizer, **run)[0]

    if stage is not None:
        stage.run(train_stage, data_dir, data.schema, model_dir, epochs)
    if propensity.external:
        propensity.prepare(data, train_stage, model_dir, epochs,
                           calibration_data=held_out,
                           calibration_split=held_out_name)
    keras.utils.set_random_seed(seed)
    if deterministic:
        _enable_determinism(log)
    keras.mixed_precision.set_global_policy(precision)
    try:
        layout = ReplicaLayout(get_strategy(strategy), batch_size, strategy)
        log(layout.describe())
        config.update(
            strategy_class=type(layout.strategy).__name__,
            replicas=layout.replicas,
            workers=layout.workers,
            per_replica_batch_size=layout.per_replica_batch_size,
        )
        # JAX shards every batch over the devices: a partial one would not
        # split.
        batch_map = propensity.batch_map(data.schema.labels)
        train_data = EpochData(
            data, layout, seed=seed, cache=cache,
            drop_remainder=layout.data_parallel and layout.replicas > 1,
            include_extra=propensity.include_extra, batch_map=batch_map,
        )
        eval_ds = None
        if validate:
            eval_ds = _eval_input(held_out, held_out_name, layout, cache, log,
                                  propensity.include_extra, batch_map)
        if stopper is not None and eval_ds is None:
            raise ValueError(
                f"early stopping needs an eval split, and {held_out.path} has none; "
                f"give --validation-data DIR"
            )
        with layout.strategy.scope():
            net = build_estimator(model, data.schema, model_params)
            net.build()
            if stage is not None:
                stage.hand_over(net)
            apply_embedding_l2(net, embedding_l2)
            net.compile(
                optimizer=make_optimizer(learning_rate, weight_decay, optimizer),
                steps_per_execution=steps_per_execution,
                jit_compile=jit_compile,
                train_metrics=train_metrics,
                run_eagerly=run_eagerly,
            )
            net.optimizer.build(net.trainable_variables)
        with _output_dir(layout, model_dir) as out_dir:
            checkpoint = None
            if model_dir:
                checkpoint = TrainingCheckpoint(
                    os.path.join(model_dir, CHECKPOINT_DIR),
                    fingerprint,
                    every=checkpoint_every,
                    write_dir=os.path.join(out_dir, CHECKPOINT_DIR),
                )
                if restart and layout.is_chief:
                    checkpoint.remove()
            resumed = _resume(checkpoint, net, train_data, epochs, log)
            config["resumed_from"] = resumed
            meter = ThroughputCallback(
                batch_size, steps_per_execution=steps_per_execution
            )
            guard = NonFiniteLossGuard(steps_per_execution)
            labels_check = MissingLabelsWarning(
                log, partial_epoch=train_data.start_epoch
                if train_data.start_step else None,
            )
            start = time.perf_counter()
            # Keras warns about finite tf.data inputs that are expected here.
            warnings.filterwarnings("ignore", message=".*shuffle=True.*was passed")
            warnings.filterwarnings("ignore", message=".*input ran out of data")
            try:
                history = layout.fit(
                    net,
                    train_data.dataset(),
                    validation_data=eval_ds,
                    epochs=epochs,
                    initial_epoch=train_data.start_epoch,
                    # The guard first: it must stop a broken step before
                    # any other callback (a checkpoint) sees it.
                    callbacks=[guard, train_data.callback(),
                               *([checkpoint] if checkpoint else []),
                               labels_check, meter, *callbacks,
                               *([stopper] if stopper else [])],
                    verbose=verbose,
                )
            except NonFiniteLossError as e:
                raise NonFiniteLossError(
                    _stopped(e, checkpoint, model_dir), e.step, e.terms
                ) from None
            wall = time.perf_counter() - start
            epoch_logs = checkpoint.history if checkpoint else history.history
            info = {
                "history": {
                    k: [float(v) for v in vs] for k, vs in epoch_logs.items()
                },
                "examples_per_second": meter.examples_per_second,
                "wall_seconds": wall,
                "iterations": int(
                    keras.ops.convert_to_numpy(net.optimizer.iterations)
                ),
                "replicas": layout.replicas,
                "global_batch_size": batch_size,
                "per_replica_batch_size": layout.per_replica_batch_size,
                "resumed_from": resumed,
                "written_to": out_dir,
            }
            if stopper is not None:
                info["early_stopping"] = stopper.record()
            if propensity.external:
                info["propensity"] = propensity.record()
            if stage is not None:
                info["pretraining"] = stage.record()
                info["wall_seconds"] += stage.seconds + stage.hand_over_seconds
            log(
                f"Throughput: {info['examples_per_second']:.0f} examples/s "
                f"(global batch {batch_size} = {layout.replicas} x "
                f"{layout.per_replica_batch_size} per replica)"
            )
            if out_dir:
                save_model_dir(net, out_dir, data, config, info)
                if checkpoint is not None:
                    shutil.rmtree(os.path.join(out_dir, CHECKPOINT_DIR),
                                  ignore_errors=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
        if strategy == "data_parallel":
            keras.distribution.set_distribution(None)
    return net, info


def _enable_determinism(log):
    if keras.backend.backend() == "tensorflow":
        tf.config.experimental.enable_op_determinism()
    else:
        log(
            "Deterministic mode on JAX: CPU runs are deterministic; on GPU "
            "start with XLA_FLAGS=--xla_gpu_deterministic_ops=true."
        )


def held_out_split(held_out, own):
    """The split that validates: the eval split; for a `--validation-data`
    directory without one (preprocessed with `--split train`) its train
    split; None when the training dataset itself has no eval split."""
    splits = [keys.EVAL_SPLIT] if own else [keys.EVAL_SPLIT, keys.TRAIN_SPLIT]
    for split in splits:
        if glob.glob(os.path.join(held_out.path, split, "*.tfrecord*")):
            return split
    return None


def _eval_input(held_out, split, layout, cache, log, include_extra, batch_map):
    if split is None:
        return None
    rows = (held_out.summary().get("rows_written") or {}).get(split)
    if rows == 0:
        log(f"No validation: the {split!r} split of {held_out.path} "
            f"has no rows.")
        return None
    try:
        return evaluation_input(held_out, layout, cache=cache, split=split,
                                include_extra=include_extra,
                                batch_map=batch_map)
    except ValueError:
        return None


def _output_dir(layout, model_dir):
    if not model_dir:
        return contextlib.nullcontext(None)
    return layout.output_dir(model_dir)


def _resume(checkpoint, model, train_data, epochs, log):
    """Restores the checkpoint into `model` and positions the data; the
    resumed position (or None)."""
    state = checkpoint.restore(model) if checkpoint is not None else None
    if state is None:
        return None
    train_data.start_at(state["epoch"], state["steps"])
    log(
        f"Resuming from the checkpoint in {checkpoint.directory}: "
        f"{state['iterations']} steps trained, epoch "
        f"{min(state['epoch'] + 1, epochs)} of {epochs} at step "
        f"{state['steps']}"
    )
    return {k: state[k] for k in ("epoch", "steps", "iterations")}


def _stopped(error, checkpoint, model_dir):
    message = f"{error}. model.keras was not written"
    if checkpoint is not None and checkpoint.saved_iterations is not None:
        message += (
            f"; the last good checkpoint (step {checkpoint.saved_iterations})"
            f" stays in {checkpoint.directory}"
        )
    elif model_dir:
        message += "; no checkpoint was written before it"
    return message + "."


def save_model_dir(model, model_dir, data, config, info):
    os.makedirs(model_dir, exist_ok=True)
    model.save(os.path.join(model_dir, MODEL_FILE))
    copy_encoding_files(data.path, model_dir)
    with open(os.path.join(model_dir, TRAIN_CONFIG_FILE), "w") as f:
        json.dump(config, f, indent=2, sort_keys=True)
    with open(os.path.join(model_dir, HISTORY_FILE), "w") as f:
        json.dump(info, f, indent=2, sort_keys=True, default=_json_default)


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return str(value)
