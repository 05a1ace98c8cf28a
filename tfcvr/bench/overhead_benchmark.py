"""`tfcvr bench overhead`: what each suspected model overhead costs per
batch, on `tfcvr bench train`'s 16-field schema.

Pieces, each compiled (`tf.function` / `jax.jit`) and timed alone:
`embedding_per_table` and `embedding_fused` (FeatureEmbedding forward and
backward in each table layout), `three_aucs` (the approximate AUC updates
of `train_metrics="auc"`). Whole training steps (`fit`, in-memory encoded
rows): tfcvr's ESMM in each layout with and without the AUCs, and the
yardstick (`tfcvr.bench.yardstick`) fed one matrix or one input per field
(the dict plumbing). Everything is alternated round by round and each
figure is the median over rounds of milliseconds per batch, wall and
process CPU time (the machine may be shared: CPU time is the steadier).
Runs on any backend; on JAX it imports no TensorFlow.
"""

import json
import time

import keras
import numpy as np
from keras import ops

from tfcvr.bench import train_benchmark
from tfcvr.bench import yardstick
from tfcvr.features import keys
from tfcvr.layers.embedding.feature_embedding import FeatureEmbedding
from tfcvr.models import build_estimator

PIECES = ("embedding_per_table", "embedding_fused", "three_aucs")
STEPS = ("step_per_table_auc", "step_per_table_none", "step_fused_auc",
         "step_fused_none", "step_yardstick_matrix", "step_yardstick_dict")


def add_arguments(parser):
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--batches", type=int, default=8,
                        help="batches per timed whole-step round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=20,
                        help="calls per timed piece round")
    parser.add_argument("--precision", default="float32",
                        choices=("float32", "mixed_bfloat16", "mixed_float16"))
    parser.add_argument("--steps-per-execution", type=int, default=8)
    parser.add_argument("--out", default=None, help="append the results as JSON lines")


def _jit(fn):
    if keras.backend.backend() == "jax":
        import jax

        return jax.jit(fn)
    import tensorflow as tf  # only on the TensorFlow backend

    return tf.function(fn)


def _block(x):
    for leaf in keras.tree.flatten(x):
        ops.convert_to_numpy(leaf)


def _piece_timer(fn, args, calls):
    _block(fn(*args))

    def one_round():
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(calls):
            out = fn(*args)
        _block(out)
        return ((time.perf_counter() - wall) / calls * 1e3,
                (time.process_time() - cpu) / calls * 1e3)

    return one_round


def embedding_piece(schema, layout, batch, dim=16):
    """Forward and backward of FeatureEmbedding in `layout`."""
    layer = FeatureEmbedding(schema, dim, table_layout=layout)
    layer.build()
    if keras.backend.backend() == "jax":
        import jax

        def loss(values, x):
            y, _ = layer.stateless_call(values, [], x)
            return ops.sum(ops.square(ops.cast(y, "float32")))

        values = [v.value for v in layer.trainable_variables]
        return jax.jit(jax.grad(loss)), (values, batch)
    import tensorflow as tf  # only on the TensorFlow backend

    def grads(x):
        with tf.GradientTape() as tape:
            y = ops.sum(ops.square(ops.cast(layer(x), "float32")))
        return tape.gradient(y, layer.trainable_variables)

    return tf.function(grads), (batch,)


def auc_piece(labels, size):
    """CVRModel's three AUC updates (and results) on one batch."""
    aucs = [keras.metrics.AUC() for _ in range(3)]
    click, conversion = labels[keys.CLICK][:size], labels[keys.CONVERSION][:size]
    targets = (click, click * conversion, conversion)
    weights = (None, None, click)
    probs = np.random.default_rng(0).random((3, size)).astype("float32")

    def update(values, p):
        new = [a.stateless_update_state(v, t, p[i], sample_weight=w)
               for i, (a, v, t, w) in enumerate(zip(aucs, values, targets, weights))]
        return [a.stateless_result(v) for a, v in zip(aucs, new)], new

    values = [[v.value for v in a.variables] for a in aucs]
    return _jit(update), (values, probs)


def step_timer(args, model, x, y):
    """One timed `fit` pass over `args.batches` batches per round."""
    fit = {"y": y, "batch_size": args.batch_size, "epochs": 1, "verbose": 0}
    model.fit(x, **fit)

    def one_round():
        wall, cpu = time.perf_counter(), time.process_time()
        model.fit(x, **fit)
        return ((time.perf_counter() - wall) / args.batches * 1e3,
                (time.process_time() - cpu) / args.batches * 1e3)

    return one_round


def build_steps(args, schema, features, labels):
    names = [spec.name for spec in schema.features]
    dims = [spec.input_dim for spec in schema.features]
    timers = {}
    for layout in ("per_table", "fused"):
        for metrics in ("auc", "none"):
            model = build_estimator("esmm", schema, {
                "embedding_dim": 16, "embedding_layout": layout,
                "backbone_config": {"hidden_units": [256, 128]}})
            model.build()
            model.compile(optimizer=keras.optimizers.Adam(1e-3),
                          steps_per_execution=args.steps_per_execution,
                          train_metrics=metrics)
            timers[f"step_{layout}_{metrics}"] = step_timer(args, model, features, labels)
    for inputs in yardstick.INPUT_KINDS:
        model = yardstick.compile_yardstick(
            yardstick.yardstick_esmm(dims, names, inputs=inputs),
            steps_per_execution=args.steps_per_execution)
        x, y = yardstick.yardstick_arrays(features, labels, names, inputs=inputs)
        timers[f"step_yardstick_{inputs}"] = step_timer(args, model, x, y)
    return timers


def run(args):
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy(args.precision)
    try:
        schema = train_benchmark.bench_schema()
        features, labels = train_benchmark.synthetic_encoded(args.batch_size * args.batches)
        batch = {k: v[: args.batch_size] for k, v in features.items()}
        timers = {
            "embedding_per_table": _piece_timer(
                *embedding_piece(schema, "per_table", batch), args.calls),
            "embedding_fused": _piece_timer(
                *embedding_piece(schema, "fused", batch), args.calls),
            "three_aucs": _piece_timer(*auc_piece(labels, args.batch_size), args.calls),
        }
        timers.update(build_steps(args, schema, features, labels))
        times = {name: [] for name in timers}
        for _ in range(args.rounds):
            for name, timer in timers.items():
                times[name].append(timer())
    finally:
        keras.mixed_precision.set_global_policy("float32")
    for name, values in times.items():
        values = np.array(values)
        result = {"benchmark": "overhead", "piece": name,
                  "backend": keras.backend.backend(), "precision": args.precision,
                  "batch_size": args.batch_size,
                  "wall_ms_per_batch": round(float(np.median(values[:, 0])), 2),
                  "cpu_ms_per_batch": round(float(np.median(values[:, 1])), 2),
                  "rounds": args.rounds}
        print(json.dumps(result), flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(json.dumps(result) + "\n")
    return 0
