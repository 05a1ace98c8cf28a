"""One SGD step of every registered estimator on 2 logical CPU devices
(`MirroredStrategy`) and on one device, on the same global batches.

Run as a script in a process of its own (TensorFlow fixes its devices at
start-up): `python two_replica_step.py OUT.json`. Writes, per estimator and
batch, both logged losses, the largest weight difference between the two
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

BATCH = 16
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
    """`{case: (features, labels)}`; MirroredStrategy gives replica 0 the
    first half of a batch and replica 1 the rest (checked by
    `replica_click_counts`)."""
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
        "uneven split (8 + 7 rows)": (
            odd_features, {k: v[:odd] for k, v in mixed.items()}
        ),
    }


def replica_click_counts(strategy, labels):
    dataset = tf.data.Dataset.from_tensor_slices(labels[keys.CLICK]).batch(
        len(labels[keys.CLICK])
    )
    for batch in strategy.experimental_distribute_dataset(dataset):
        return [
            float(tf.reduce_sum(t))
            for t in strategy.experimental_local_results(batch)
        ]


def compiled(name, schema, strategy):
    with strategy.scope():
        model = get_estimator(name)(
            schema=schema, embedding_dim=4,
            backbone_config={"hidden_units": [8]},
        )
        model.build()
        model.compile(
            optimizer=keras.optimizers.SGD(LEARNING_RATE), jit_compile=False
        )
    return model


def one_step(model, weights, features, labels):
    model.set_weights(weights)
    history = model.fit(
        features, labels, batch_size=len(labels[keys.CLICK]), epochs=1,
        shuffle=False, verbose=0,
    )
    return history.history["loss"][0], model.get_weights()


def compare(name, schema, mirrored, cases):
    one = compiled(name, schema, tf.distribute.get_strategy())
    two = compiled(name, schema, mirrored)
    initial = one.get_weights()
    results = {}
    for case, (features, labels) in cases.items():
        loss_one, after_one = one_step(one, initial, features, labels)
        loss_two, after_two = one_step(two, initial, features, labels)
        values = [loss_one, loss_two, *after_one, *after_two]
        results[case] = {
            "loss_one_replica": float(loss_one),
            "loss_two_replicas": float(loss_two),
            "max_weight_difference": max(
                float(np.max(np.abs(a - b)))
                for a, b in zip(after_one, after_two)
            ),
            "max_weight_change": max(
                float(np.max(np.abs(a - b)))
                for a, b in zip(after_one, initial)
            ),
            "finite": bool(all(np.all(np.isfinite(v)) for v in values)),
        }
    return results


def main(out_path):
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    schema = schema_with_every_label()
    cases = batches(schema)
    report = {
        "replicas": mirrored.num_replicas_in_sync,
        "replica_clicks": {
            case: replica_click_counts(mirrored, labels)
            for case, (_, labels) in cases.items()
        },
        "estimators": {},
    }
    for name in estimator_names():
        keras.utils.set_random_seed(0)
        report["estimators"][name] = compare(name, schema, mirrored, cases)
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
    main(sys.argv[1])
