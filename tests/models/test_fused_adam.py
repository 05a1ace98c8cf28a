import os
import tempfile

import keras
import numpy as np
import pytest
from keras import ops

from tfcvr.models import ESMM
from tfcvr.testing import TestCase
from tfcvr.testing import tiny_schema
from tfcvr.models.fused_adam import FusedAdam
from tfcvr.training.optimizer import make_optimizer

ROWS, DIM = 6, 3
# Row 1 twice in the first batch; row 5 never read; row 4 only in the last.
BATCHES = ([0, 1, 1, 2], [2, 3], [0, 4, 1])
ON_TF = keras.backend.backend() == "tensorflow"


def _weights(batch):
    """A fixed per-position gradient pattern, different for every read."""
    return np.arange(1, len(batch) * DIM + 1, dtype="float32").reshape(-1, DIM) / 7.0


def np_adam(table, batches, lr, b1=0.9, b2=0.999, eps=1e-7, lazy=False,
            squares_apart=False):
    """Float64 Adam on the per-row summed gradient g; `v` takes g^2, or
    with `squares_apart` the sum of the squares of a row's reads (Keras 3's
    Adam on TensorFlow); `lazy=True` updates only the rows a batch reads."""
    w = table.astype("float64").copy()
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, batch in enumerate(batches, start=1):
        g, g2 = np.zeros_like(w), np.zeros_like(w)
        np.add.at(g, batch, _weights(batch))
        np.add.at(g2, batch, _weights(batch) ** 2)
        read = sorted(set(batch)) if lazy else list(range(len(w)))
        m[read] = b1 * m[read] + (1 - b1) * g[read]
        v[read] = b2 * v[read] + (1 - b2) * (g2 if squares_apart else g ** 2)[read]
        alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        w[read] -= alpha * m[read] / (np.sqrt(v[read]) + eps)
    return w


def _train(optimizer, table, batches, dense_gradient=False):
    """Applies one step per batch; the gradient of the gathered rows is
    `tf.IndexedSlices` on TensorFlow unless `dense_gradient`."""
    for batch in batches:
        if ON_TF and not dense_gradient:
            import tensorflow as tf

            with tf.GradientTape() as tape:
                loss = ops.sum(ops.take(table, np.asarray(batch, "int32"), axis=0)
                               * _weights(batch))
            (grad,) = tape.gradient(loss, [table.value])
            assert isinstance(grad, tf.IndexedSlices)
        else:
            grad = np.zeros((ROWS, DIM), "float32")
            np.add.at(grad, batch, _weights(batch))
        optimizer.apply([grad], [table])
    return ops.convert_to_numpy(table)


def _table(name="embeddings"):
    init = np.random.default_rng(0).normal(size=(ROWS, DIM)).astype("float32")
    return keras.Variable(init, name=name), init


class FusedAdamTest(TestCase):
    # On TensorFlow the fused kernel lands within 1e-7 of float64 here;
    # Keras' op-by-op Adam (the other backends) within 2e-6.
    ATOL = 3e-6

    def test_table_update_is_keras_adams(self):
        # On TensorFlow each read's square enters v, as in Keras' Adam;
        # elsewhere the gradient arrives summed, in both. Either scatter
        # (XLA's or TensorFlow's kernels) gives the same numbers.
        keras_table, _ = _table()
        keras_adam = _train(keras.optimizers.Adam(0.1), keras_table, BATCHES)
        for xla_scatter in (True, False):
            with self.subTest(xla_scatter=xla_scatter):
                table, init = _table()
                got = _train(FusedAdam(0.1, xla_scatter=xla_scatter), table,
                             BATCHES)
                self.assertAllClose(
                    got, np_adam(init, BATCHES, 0.1, squares_apart=ON_TF),
                    atol=self.ATOL)
                self.assertAllClose(got, keras_adam, atol=2 * self.ATOL)

    def test_square_of_the_summed_reads(self):
        for xla_scatter in (True, False):
            with self.subTest(xla_scatter=xla_scatter):
                table, init = _table()
                got = _train(FusedAdam(0.1, square_reads_apart=False,
                                       xla_scatter=xla_scatter),
                             table, BATCHES)
                self.assertAllClose(got, np_adam(init, BATCHES, 0.1),
                                    atol=self.ATOL)

    @pytest.mark.skipif(not ON_TF, reason="TensorFlow's sparse gradients")
    def test_xla_scatter_sums_like_the_kernels(self):
        from tfcvr.models import fused_adam

        rng = np.random.default_rng(1)
        shape = np.array([40, 3], "int32")
        for count in (1, 3, 64, 1000):
            indices = rng.integers(0, 40, count).astype("int32")
            values = rng.normal(size=(count, 3)).astype("float32")
            for apart in (True, False):
                with self.subTest(count=count, apart=apart):
                    got = fused_adam._padded_xla_scatter(
                        indices, values, shape, apart)
                    want = fused_adam._kernel_scatter(
                        indices, values, shape, apart)
                    self.assertAllClose(got, want, atol=1e-5, rtol=1e-5)
        self.assertEqual(fused_adam.XLA_MIN_READS, 4096)

    @pytest.mark.skipif(not ON_TF, reason="TensorFlow's sparse gradients")
    def test_reads_are_padded_to_eight_sizes_per_power_of_two(self):
        from tfcvr.models import fused_adam

        sizes = {}
        for count in [1, 2, 7, 8, 9, *range(4090, 8200, 7), 65536, 65537,
                      70000, 131071]:
            indices, values = fused_adam._padded(
                np.ones(count, "int32"), np.ones((count, 2), "float32"))
            size = int(indices.shape[0])
            with self.subTest(count=count):
                self.assertGreaterEqual(size, count)
                self.assertLessEqual(size, count + count // 8 + 1)
                self.assertEqual(values.shape, (size, 2))
                # The padding reads row 0 with a zero gradient.
                self.assertEqual(float(np.abs(values[count:]).sum()), 0.0)
                self.assertEqual(int(np.abs(indices[count:]).sum()), 0)
            sizes.setdefault(int(np.log2(count)), set()).add(size)
        self.assertLessEqual(len(sizes[12]), 9)
        self.assertEqual(int(fused_adam._padded(
            np.ones(65536, "int32"), np.ones((65536, 2), "float32"))[0].shape[0]),
            65536)

    @pytest.mark.skipif(not ON_TF, reason="TensorFlow's sparse gradients")
    def test_reads_added_ahead_by_xla_equal_the_kernels(self):
        import tensorflow as tf

        from tfcvr.models import fused_adam

        rng = np.random.default_rng(3)
        start = rng.normal(size=(2, 40, 3)).astype("float32")
        for count in (1, 3, 64, 1000):
            indices = rng.integers(0, 40, count).astype("int32")
            values = rng.normal(size=(count, 3)).astype("float32")
            slots = {}
            for name, add in (("xla", fused_adam._padded_xla_add_ahead),
                              ("kernels", fused_adam._kernel_add_ahead)):
                m, v = tf.Variable(start[0]), tf.Variable(start[1])
                add(m, v, indices, values, 0.5, 0.25)
                slots[name] = (m.numpy(), v.numpy())
            want_m, want_v = start[0].copy(), start[1].copy()
            np.add.at(want_m, indices, 0.5 * values)
            np.add.at(want_v, indices, 0.25 * values ** 2)
            with self.subTest(count=count):
                for got in slots.values():
                    self.assertAllClose(got[0], want_m, atol=1e-5)
                    self.assertAllClose(got[1], want_v, atol=1e-5)

    def test_a_beta_of_zero_takes_the_dense_way(self):
        # (1 - b) / b has no value at b = 0: the reads are scattered dense.
        for beta_1, beta_2 in ((0.0, 0.999), (0.9, 0.0)):
            with self.subTest(beta_1=beta_1, beta_2=beta_2):
                table, init = _table()
                got = _train(FusedAdam(0.1, beta_1=beta_1, beta_2=beta_2),
                             table, BATCHES)
                self.assertAllClose(
                    got, np_adam(init, BATCHES, 0.1, b1=beta_1, b2=beta_2,
                                 squares_apart=ON_TF),
                    atol=self.ATOL)

    @pytest.mark.skipif(not ON_TF, reason="TensorFlow's sparse gradients")
    def test_a_step_of_many_reads_keeps_keras_numbers(self):
        # 5000 reads, over 800 per row: past XLA_MIN_READS, so the XLA
        # scatter runs, and where adding `sum g^2 - (sum g)^2` to the
        # kernel's `v` would cancel digits (2.7e-3 off here); the reads
        # added ahead into `m` and `v` are positive terms only.
        batches = [list(np.random.default_rng(2).integers(0, ROWS, 5000)),
                   [0, 1, 1, 2]]
        table, init = _table()
        want = np_adam(init, batches, 0.1, squares_apart=True)
        for name, optimizer in (("xla", FusedAdam(0.1)),
                                ("kernels", FusedAdam(0.1, xla_scatter=False)),
                                ("keras", keras.optimizers.Adam(0.1))):
            with self.subTest(name):
                table, _ = _table()
                got = _train(optimizer, table, batches)
                self.assertAllClose(got, want, atol=1e-4, rtol=1e-5)
        self.assertGreater(np.abs(want - init).max(), 1.0)

    def test_lazy_tables_move_only_the_rows_read(self):
        for dense_gradient in (False, True):
            table, init = _table()
            got = _train(FusedAdam(0.1, lazy_tables=True), table, BATCHES,
                         dense_gradient=dense_gradient)
            # A dense gradient arrives with each row's reads summed.
            apart = ON_TF and not dense_gradient
            self.assertAllClose(
                got, np_adam(init, BATCHES, 0.1, lazy=True,
                             squares_apart=apart), atol=self.ATOL)
            np.testing.assert_array_equal(got[5], init[5])

    def test_lazy_tables_square_as_told(self):
        # Reads added ahead past XLA_MIN_READS, by the kernels below it,
        # summed per row with square_reads_apart=False or a beta of 0.
        batches = [list(np.random.default_rng(4).integers(0, ROWS - 1, 5000)),
                   *BATCHES]
        for kwargs in ({}, {"xla_scatter": False},
                       {"square_reads_apart": False}, {"beta_1": 0.0}):
            with self.subTest(**kwargs):
                table, init = _table()
                got = _train(FusedAdam(0.1, lazy_tables=True, **kwargs),
                             table, batches)
                want = np_adam(
                    init, batches, 0.1, lazy=True, b1=kwargs.get("beta_1", 0.9),
                    squares_apart=ON_TF and kwargs.get("square_reads_apart", True))
                self.assertAllClose(got, want, atol=1e-4, rtol=1e-5)
                np.testing.assert_array_equal(got[5], init[5])

    def test_other_variables_are_never_lazy(self):
        kernel, init = _table(name="kernel")
        got = _train(FusedAdam(0.1, lazy_tables=True), kernel, BATCHES,
                     dense_gradient=True)
        self.assertAllClose(got, np_adam(init, BATCHES, 0.1), atol=self.ATOL)

    @pytest.mark.skipif(not ON_TF, reason="TensorFlow's sparse gradients")
    def test_how_a_row_read_twice_moves_on_step_one(self):
        # Step 1 moves a row by lr (m / sqrt(v) = sign g) when v is the
        # square of its summed reads; row 1, read twice, moves more when v
        # sums their squares.
        for apart, row_1_step in ((False, 0.1), (True, 0.13)):
            table, init = _table()
            got = _train(FusedAdam(0.1, square_reads_apart=apart), table,
                         BATCHES[:1])
            self.assertAllClose(np.abs(got[0] - init[0]), [0.1] * DIM, atol=1e-5)
            self.assertAllClose(np.abs(got[1] - init[1]), [row_1_step] * DIM,
                                atol=1e-2)

    def test_config_round_trip(self):
        optimizer = FusedAdam(0.01, beta_1=0.8, weight_decay=1e-4,
                              lazy_tables=True, square_reads_apart=False,
                              xla_scatter=False,
                              table_names=("embeddings", "extra"))
        restored = FusedAdam.from_config(optimizer.get_config())
        self.assertFalse(restored.square_reads_apart)
        self.assertFalse(restored.xla_scatter)
        self.assertEqual(restored.table_names, ("embeddings", "extra"))
        self.assertTrue(restored.lazy_tables)
        self.assertAlmostEqual(restored.beta_1, 0.8)
        self.assertAlmostEqual(restored.weight_decay, 1e-4)
        self.assertNotIn("amsgrad", optimizer.get_config())

    def test_refuses_bad_settings(self):
        with self.assertRaisesRegex(ValueError, "amsgrad=True"):
            FusedAdam(amsgrad=True)
        with self.assertRaisesRegex(ValueError, "table_names='embeddings'"):
            FusedAdam(table_names="embeddings")
        with self.assertRaisesRegex(ValueError, "lazy_tables=1"):
            FusedAdam(lazy_tables=1)
        with self.assertRaisesRegex(ValueError, "square_reads_apart=None"):
            FusedAdam(square_reads_apart=None)
        with self.assertRaisesRegex(ValueError, "xla_scatter='yes'"):
            FusedAdam(xla_scatter="yes")

    def test_make_optimizer_choices(self):
        self.assertFalse(make_optimizer(0.1).lazy_tables)
        self.assertTrue(make_optimizer(0.1, optimizer="lazy_adam").lazy_tables)
        self.assertAlmostEqual(make_optimizer(0.1, 0.5).weight_decay, 0.5)
        self.assertIs(type(make_optimizer(0.1, optimizer="keras_adam")),
                      keras.optimizers.Adam)
        with self.assertRaisesRegex(ValueError, "optimizer='sgd'"):
            make_optimizer(0.1, optimizer="sgd")

    def test_saved_model_file_reloads_the_optimizer(self):
        ids = keras.Input((2,), dtype="int32")
        x = keras.layers.Flatten()(keras.layers.Embedding(ROWS, DIM)(ids))
        model = keras.Model(ids, keras.layers.Dense(1)(x))
        model.compile(optimizer=FusedAdam(0.05, lazy_tables=True), loss="mse")
        x = np.array([[0, 1], [2, 1]], "int32")
        model.fit(x, np.ones((2, 1)), verbose=0)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "m.keras")
            model.save(path)
            # Importing tfcvr.models registers FusedAdam, as it does the estimators.
            restored = keras.saving.load_model(path)
        self.assertIsInstance(restored.optimizer, FusedAdam)
        self.assertTrue(restored.optimizer.lazy_tables)
        self.assertAllClose(restored.predict(x, verbose=0),
                            model.predict(x, verbose=0), atol=1e-6)

    @pytest.mark.jax
    def test_jax_updates(self):
        self.test_table_update_is_keras_adams()
        self.test_lazy_tables_move_only_the_rows_read()

    def test_fit_moves_only_the_table_rows_a_batch_reads(self):
        # fit on the fused table (eager: the same sparse gradients, no
        # trace): after a first step, a step whose batch reads few ids
        # changes those rows only; Adam changes more.
        schema = tiny_schema(vocab_size=50, multi=False, numeric=False)
        changed = {}
        for lazy in (True, False):
            keras.utils.set_random_seed(0)
            model = ESMM(schema=schema, embedding_dim=4,
                         backbone_config={"hidden_units": [8]})
            model.compile(optimizer=FusedAdam(0.05, lazy_tables=lazy),
                          run_eagerly=True)
            tables = []
            for rows in (64, 4):
                features, labels = self.batch(schema, batch_size=rows, seed=rows)
                model.fit(features, {k: labels[k] for k in schema.labels},
                          batch_size=rows, verbose=0)
                tables.append(ops.convert_to_numpy(model.embedding.embeddings))
            changed[lazy] = np.any(tables[0] != tables[1], axis=1).sum()
        read = sum(len(set(np.asarray(features[f.name]).ravel()))
                   for f in schema.features)
        self.assertLessEqual(changed[True], read)
        self.assertGreater(changed[True], 0)
        self.assertGreater(changed[False], 2 * read)
