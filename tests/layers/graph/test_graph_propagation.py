import keras
import numpy as np
import pytest

from tfcvr.layers.graph import GraphPropagation
from tfcvr.testing import TestCase


def to_np(x):
    return keras.ops.convert_to_numpy(x)


def np_propagate(table, indices, weights, ids, self_weight, hops, combination):
    """Dense NumPy reference: Â = w_self I + A, e^(h) = Â^h e at `ids`."""
    n = len(table)
    a = np.zeros((n, n))
    for i in range(n):
        for j, w in zip(indices[i], weights[i]):
            a[i, j] += w
    a_hat = self_weight * np.eye(n) + a
    levels = [np.asarray(table, "float64")]
    for _ in range(hops):
        levels.append(a_hat @ levels[-1])
    out = levels[-1] if combination == "last" else np.mean(levels, axis=0)
    return out[ids]


def random_graph(n, k, seed=0):
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, n, (n, k)).astype("int32")
    weights = rng.uniform(0, 1, (n, k)).astype("float32")
    weights[rng.random((n, k)) < 0.2] = 0.0
    return indices, weights


class GraphPropagationTest(TestCase):
    def layer(self, n=9, k=3, **kwargs):
        layer = GraphPropagation(num_nodes=n, num_neighbours=k, **kwargs)
        layer.set_graph(*random_graph(n, k))
        return layer

    def test_matches_dense_reference(self):
        n, k = 9, 3
        table = np.random.default_rng(1).normal(size=(n, 4)).astype("float32")
        indices, weights = random_graph(n, k)
        ids = np.array([0, 3, 3, 8, 5], "int32")
        for self_weight in (1.0, 0.5):
            for hops in (1, 2, 3):
                for combination in ("last", "mean"):
                    with self.subTest(w=self_weight, hops=hops, c=combination):
                        layer = self.layer(n, k, self_weight=self_weight,
                                           hops=hops,
                                           layer_combination=combination)
                        out = layer([table, ids])
                        expected = np_propagate(table, indices, weights, ids,
                                                self_weight, hops, combination)
                        self.assertAllClose(out, expected, atol=1e-5,
                                            rtol=1e-5)

    def test_any_id_shape(self):
        table = np.random.default_rng(2).normal(size=(9, 2)).astype("float32")
        layer = self.layer()
        ids = np.array([[1, 2, 3], [4, 0, 8]], "int32")
        out = layer([table, ids])
        self.assertEqual(tuple(out.shape), (2, 3, 2))
        self.assertAllClose(out[1], layer([table, ids[1]]))

    def test_row_offset_reads_the_nodes_out_of_a_larger_table(self):
        table = np.random.default_rng(7).normal(size=(15, 3)).astype("float32")
        ids = np.array([0, 4, 8, 8], "int32")
        for hops in (1, 2):
            with self.subTest(hops=hops):
                layer = self.layer(hops=hops)
                self.assertAllClose(
                    layer([table, ids], row_offset=5),
                    layer([table[5:14], ids]),
                )

    def test_no_graph_is_w_self_times_the_table(self):
        table = np.random.default_rng(3).normal(size=(5, 2)).astype("float32")
        layer = GraphPropagation(5, 2, self_weight=0.5, hops=2)
        self.assertAllClose(layer([table, np.arange(5)]), 0.25 * table)

    def test_permuting_the_nodes_permutes_the_output(self):
        n, k = 12, 4
        rng = np.random.default_rng(4)
        table = rng.normal(size=(n, 3)).astype("float32")
        indices, weights = random_graph(n, k, seed=5)
        perm = rng.permutation(n)
        inverse = np.argsort(perm)
        layer = GraphPropagation(n, k, hops=2)
        layer.set_graph(indices, weights)
        permuted = GraphPropagation(n, k, hops=2)
        permuted.set_graph(inverse[indices[perm]], weights[perm])
        ids = np.arange(n)
        self.assertAllClose(permuted([table[perm], ids]),
                            to_np(layer([table, ids]))[perm], atol=1e-5)

    def test_gradient_reaches_the_neighbours_rows(self):
        if keras.backend.backend() != "tensorflow":
            self.skipTest("uses tf.GradientTape")
        import tensorflow as tf

        layer = GraphPropagation(4, 2)
        layer.set_graph(np.array([[1, 2], [0, 0], [0, 0], [0, 0]]),
                        np.array([[0.25, 0.75], [0, 0], [0, 0], [0, 0]]))
        table = tf.Variable(np.ones((4, 2), "float32"))
        with tf.GradientTape() as tape:
            total = tf.reduce_sum(layer([table, np.array([0])]))
        grad = tape.gradient(total, table)
        self.assertAllClose(grad, [[1, 1], [0.25, 0.25], [0.75, 0.75], [0, 0]])

    def test_set_graph_validation(self):
        layer = GraphPropagation(4, 2)
        with self.assertRaisesRegex(ValueError, r"two \(4, 2\) arrays"):
            layer.set_graph(np.zeros((4, 3)), np.zeros((4, 3)))
        with self.assertRaisesRegex(ValueError, r"lie in \[0, 4\)"):
            layer.set_graph(np.full((4, 2), 4), np.zeros((4, 2)))
        with self.assertRaisesRegex(ValueError, "finite"):
            layer.set_graph(np.zeros((4, 2)), np.full((4, 2), np.nan))
        for kwargs, message in (
            ({"hops": 0}, "hops=0"),
            ({"layer_combination": "sum"}, "layer_combination='sum'"),
            ({"self_weight": "1"}, "self_weight='1'"),
        ):
            with self.subTest(**kwargs):
                with self.assertRaisesRegex(ValueError, message):
                    GraphPropagation(4, 2, **kwargs)

    def test_serialization(self):
        self.run_serialization_test(
            GraphPropagation(7, 3, self_weight=0.2, hops=2,
                             layer_combination="mean"))

    @pytest.mark.jax
    def test_matches_reference_on_current_backend(self):
        n, k = 9, 3
        table = np.random.default_rng(6).normal(size=(n, 4)).astype("float32")
        indices, weights = random_graph(n, k)
        ids = np.array([2, 7, 0], "int32")
        out = self.layer(n, k, hops=2)([table, ids])
        self.assertAllClose(
            out, np_propagate(table, indices, weights, ids, 1.0, 2, "last"),
            atol=1e-5, rtol=1e-5)
