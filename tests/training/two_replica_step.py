"""SGD steps of every registered estimator (and `FusedAdam` steps of ESMM)
on 2 logical CPU devices (`MirroredStrategy`) and on one device, on the same global batches (one
`fit` per model, one step per case, both from the same weights).

Run as a script in a process of its own (TensorFlow fixes its devices at
start-up): `python two_replica_step.py OUT.json [NAME,NAME,...]` (default:
every registered estimator). Writes, per estimator and
step, both logged losses, the largest weight difference between the two
updated models, the largest weight change of the step and whether every
value stayed finite; the test asserts on them. A control run of NaiveCVR
with `cross_replica_sum` switched off (each replica normalising by its own
clicks) shows that the comparison detects a per-replica normaliser.
"""

import json
import sys

import tensorflow as tf

_CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    _CPU, [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tfcvr.features import keys  # noqa: E402
from tfcvr.losses import functional as F  # noqa: E402
from tfcvr.models import estimator_names  # noqa: E402
from tfcvr.models import get_estimator  # noqa: E402
from tfcvr.testing import synthetic_batch  # noqa: E402
from tfcvr.testing import tiny_schema  # noqa: E402
from tfcvr.models.fused_adam import FusedAdam  # noqa: E402

BATCH = 16
UNEVEN_ESTIMATORS = ("naive", "escm2_ips", "ddpo")
LEARNING_RATE = 0.5


def schema_with_every_label():
    # ESM2 reads a post-click action label; it changes no feature.
    schema = tiny_schema()
    return schema.replace(labels=schema.labels + (keys.ACTION,))


def label_dict(click, conversion, action):
    return {
        keys.CLICK: click.astype("float32"),
        keys.CONVERSION: (click * conversion).astype("float32"),
        keys.ACTION: (click * action).astype("float32"),
    }


def batches(schema):
    """`({case: (features, labels)}, {uneven case: ...})`, trained as
    consecutive steps;
    MirroredStrategy gives replica 0 the first half of a batch and replica
    1 the rest (checked by `replica_click_counts`)."""
    features, labels = synthetic_batch(schema, BATCH, seed=0)
    rng = np.random.default_rng(1)
    action = (rng.random(BATCH) < 0.5).astype("float32")
    mixed = label_dict(labels[keys.CLICK], labels[keys.CONVERSION], action)
    first_half = (np.arange(BATCH) < BATCH // 2).astype("float32")
    click = first_half * (rng.random(BATCH) < 0.7)
    click[0] = 1.0
    conversion = (rng.random(BATCH) < 0.5).astype("float32")
    conversion[0] = 1.0
    zeros = np.zeros(BATCH, "float32")
    ones = np.ones(BATCH, "float32")
    odd = BATCH - 1
    odd_features = {k: v[:odd] for k, v in features.items()}
    return {
        "mixed": (features, mixed),
        "clicks only on replica 0": (
            features, label_dict(click, conversion, action)
        ),
        "no clicks": (features, label_dict(zeros, zeros, zeros)),
        "clicks, no conversions": (
            features, label_dict(labels[keys.CLICK], zeros, action)
        ),
        "every row clicked and converted": (
            features, label_dict(ones, ones, ones)
        ),
    }, {
        "uneven split (8 + 7 rows)": (
            odd_features, {k: v[:odd] for k, v in mixed.items()}
        ),
    }


def as_dataset(cases):
    """The cases as consecutive global batches of one `tf.data.Dataset`."""
    dataset = None
    for features, labels in cases.values():
        one = tf.data.Dataset.from_tensors((features, labels))
        dataset = one if dataset is None else dataset.concatenate(one)
    return dataset


def replica_click_counts(strategy, cases):
    """Per step, the clicks each replica receives."""
    counts = []
    for _, labels in strategy.experimental_distribute_dataset(
        as_dataset(cases)
    ):
        counts.append([
            float(tf.reduce_sum(t))
            for t in strategy.experimental_local_results(labels[keys.CLICK])
        ])
    return dict(zip(cases, counts))


def compiled(name, schema, strategy, run_eagerly=False, optimizer=None):
    with strategy.scope():
        model = get_estimator(name)(
            schema=schema, embedding_dim=4,
            backbone_config={"hidden_units": [8]},
        )
        model.build()
        model.compile(
            optimizer=(optimizer or (lambda: keras.optimizers.SGD(LEARNING_RATE)))(),
            jit_compile=False,
            run_eagerly=run_eagerly,
        )
        # As tfcvr.training.train does: Adam's slots made in the scope.
        model.optimizer.build(model.trainable_variables)
    return model


class StepRecorder(keras.callbacks.Callback):
    """The logged loss (the epoch's running mean) and the weights after
    each step."""

    def __init__(self):
        super().__init__()
        self.losses, self.weights = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(logs["loss"]))
        self.weights.append(self.model.get_weights())


def trajectory(model, strategy, weights, cases):
    """One step per case, in order, from `weights`."""
    model.set_weights(weights)
    recorder = StepRecorder()
    # As `tfcvr.training.ReplicaLayout.fit` trains: the strategy from the
    # scope, so that a batch split 8 + 7 needs no symbolic build.
    model._distribute_strategy = None
    with strategy.scope():
        model.fit(as_dataset(cases), epochs=1, verbose=0,
                  callbacks=[recorder])
    return recorder


def compare(name, schema, mirrored, cases, optimizer=None):
    default = tf.distribute.get_strategy()
    # Eager on one device: no tracing, and the same arithmetic.
    one = compiled(name, schema, default, run_eagerly=True, optimizer=optimizer)
    two = compiled(name, schema, mirrored, optimizer=optimizer)
    initial = one.get_weights()
    run_one = trajectory(one, default, initial, cases)
    run_two = trajectory(two, mirrored, initial, cases)
    results = {}
    before = initial
    for i, case in enumerate(cases):
        after_one, after_two = run_one.weights[i], run_two.weights[i]
        values = [run_one.losses[i], run_two.losses[i], *after_one, *after_two]
        results[case] = {
            "loss_one_replica": run_one.losses[i],
            "loss_two_replicas": run_two.losses[i],
            "max_weight_difference": max(
                float(np.max(np.abs(a - b)))
                for a, b in zip(after_one, after_two)
            ),
            "max_weight_change": max(
                float(np.max(np.abs(a - b)))
                for a, b in zip(after_one, before)
            ),
            "finite": bool(all(np.all(np.isfinite(v)) for v in values)),
        }
        before = after_one
    return results


def main(out_path, names=None):
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    schema = schema_with_every_label()
    cases, uneven = batches(schema)
    report = {
        "replicas": mirrored.num_replicas_in_sync,
        "replica_clicks": replica_click_counts(mirrored, cases),
        "estimators": {},
    }
    for name in names or estimator_names():
        keras.utils.set_random_seed(0)
        # A batch of another shape costs a second trace of the 2-replica
        # step; the estimators with click and SNIPS normalisers take it.
        steps = dict(cases, **uneven) if name in UNEVEN_ESTIMATORS else cases
        report["estimators"][name] = compare(name, schema, mirrored, steps)
        print(f"{name}: done", flush=True)
    # tfcvr train's optimizers: a table's rows summed over both replicas'
    # reads (and, lazy, only the rows either replica reads).
    report["optimizers"] = {}
    for name, lazy in (("adam", False), ("lazy_adam", True)):
        keras.utils.set_random_seed(0)
        report["optimizers"][name] = compare(
            "esmm", schema, mirrored, cases,
            optimizer=lambda lazy=lazy: FusedAdam(0.05, lazy_tables=lazy))
    # Control: each replica normalises by its own batch.
    F.cross_replica_sum = lambda x: x
    keras.utils.set_random_seed(0)
    control = {"clicks only on replica 0": cases["clicks only on replica 0"]}
    report["control_without_all_reduce"] = compare(
        "naive", schema, mirrored, control
    )
    with open(out_path, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2].split(",") if len(sys.argv) > 2 else None)
