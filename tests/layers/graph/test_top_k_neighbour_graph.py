import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import tfcvr
from tfcvr.layers.graph import TopKNeighbourGraph
from tfcvr.testing import TestCase

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(tfcvr.__file__)))


def to_np(x):
    return keras.ops.convert_to_numpy(x)


def np_graph(table, k, weighting="uniform", temperature=0.1, mask=None):
    """Dense NumPy reference: top-k cosine neighbours among eligible rows
    (mask and non-zero norm), self excluded, as sets of (index, weight)."""
    table = np.asarray(table, "float64")
    norms = np.linalg.norm(table, axis=1)
    valid = norms > 1e-12
    if mask is not None:
        valid &= mask
    unit = table / np.maximum(norms, 1e-12)[:, None]
    sims = unit @ unit.T
    graph = []
    for i in range(len(table)):
        if not valid[i]:
            graph.append({})
            continue
        candidates = [j for j in np.argsort(-sims[i], kind="stable")
                      if j != i and valid[j]][:k]
        s = sims[i, candidates]
        if weighting == "uniform":
            w = np.full(len(candidates), 1.0 / max(len(candidates), 1))
        else:
            e = np.exp((s - s.max()) / temperature) if len(s) else s
            w = e / e.sum() if len(s) else e
        graph.append(dict(zip(candidates, w)))
    return graph


def as_sets(indices, weights):
    indices, weights = to_np(indices), to_np(weights)
    return [
        {int(j): float(w) for j, w in zip(row_i, row_w) if w > 0}
        for row_i, row_w in zip(indices, weights)
    ]


class TopKNeighbourGraphTest(TestCase):
    def check_against_reference(self, table, k, mask=None, **kwargs):
        layer = TopKNeighbourGraph(num_neighbours=k, **kwargs)
        indices, weights = layer(table, node_mask=mask)
        self.assertEqual(tuple(indices.shape), (len(table), k))
        self.assertEqual(keras.backend.standardize_dtype(indices.dtype), "int32")
        expected = np_graph(table, k, layer.weighting, layer.temperature, mask)
        actual = as_sets(indices, weights)
        for i, (got, want) in enumerate(zip(actual, expected)):
            self.assertEqual(set(got), set(want), f"row {i}")
            for j in want:
                self.assertAlmostEqual(got[j], want[j], places=5)
        # Empty slots point at the row itself with weight 0.
        rows = np.arange(len(table))[:, None]
        empty = to_np(weights) == 0
        np.testing.assert_array_equal(
            to_np(indices)[empty], np.broadcast_to(rows, empty.shape)[empty])
        return indices, weights

    def test_hand_made_table(self):
        # Two tight clusters on the unit circle, one zero-norm row.
        table = np.array([
            [1.0, 0.0], [0.99, 0.14], [0.95, 0.31],   # near angle 0
            [0.0, 1.0], [-0.2, 0.98], [0.1, 0.99],    # near angle 90
            [0.0, 0.0],
        ], "float32")
        indices, weights = self.check_against_reference(table, 2)
        sets = as_sets(indices, weights)
        self.assertEqual(sets[0], {1: 0.5, 2: 0.5})
        self.assertEqual(sets[3], {5: 0.5, 4: 0.5})
        self.assertEqual(set(sets[2]), {0, 1})
        self.assertEqual(sets[6], {})  # zero norm: no cosine, no neighbours

    def test_random_tables_every_option_and_tiny_blocks(self):
        rng = np.random.default_rng(0)
        table = rng.normal(size=(97, 5)).astype("float32")
        mask = rng.random(97) > 0.15
        for kwargs in (
            {},
            {"weighting": "softmax", "temperature": 0.3},
            {"weighting": "softmax", "block_size": 7, "column_block_size": 8},
        ):
            for k in (1, 4, 10):
                with self.subTest(k=k, **kwargs):
                    _, weights = self.check_against_reference(
                        table, k, mask=mask, **kwargs)
                    sums = to_np(weights).sum(1)
                    self.assertAllClose(sums[mask], np.ones(mask.sum()),
                                        atol=1e-5)
                    self.assertTrue(np.all(sums[~mask] == 0))

    def test_fewer_eligible_rows_than_k(self):
        table = np.random.default_rng(1).normal(size=(6, 3)).astype("float32")
        mask = np.array([False, True, True, True, False, True])
        _, weights = self.check_against_reference(table, 5, mask=mask)
        # Three other eligible rows each: weight 1/3, two empty slots.
        self.assertAllClose(to_np(weights)[1], [1 / 3] * 3 + [0, 0],
                            atol=1e-6)

    def test_permuting_the_nodes_permutes_the_graph(self):
        rng = np.random.default_rng(2)
        table = rng.normal(size=(60, 4)).astype("float32")
        perm = rng.permutation(60)
        layer = TopKNeighbourGraph(5, weighting="softmax", block_size=16)
        indices, weights = map(to_np, layer(table))
        p_indices, p_weights = map(to_np, layer(table[perm]))
        # Row i of the permuted table is row perm[i] of the original, and
        # original node j is node inverse[j] of the permuted one.
        inverse = np.argsort(perm)
        expected = as_sets(inverse[indices[perm]], weights[perm])
        for got, want in zip(as_sets(p_indices, p_weights), expected):
            self.assertEqual(set(got), set(want))
            for j in want:
                self.assertAlmostEqual(got[j], want[j], places=6)

    def test_invalid_arguments(self):
        for kwargs, message in (
            ({"num_neighbours": 0}, "num_neighbours=0"),
            ({"weighting": "dot"}, "weighting='dot'"),
            ({"temperature": 0}, "temperature=0"),
            ({"block_size": 1.5}, "block_size=1.5"),
        ):
            with self.subTest(**kwargs):
                with self.assertRaisesRegex(ValueError, message):
                    TopKNeighbourGraph(**kwargs)
        with self.assertRaisesRegex(ValueError, "node_mask must have shape"):
            TopKNeighbourGraph(2)(np.ones((4, 2)), node_mask=np.ones(3, bool))

    def test_serialization(self):
        self.run_serialization_test(
            TopKNeighbourGraph(7, weighting="softmax", temperature=0.5,
                               block_size=64, column_block_size=128))

    @pytest.mark.jax
    def test_matches_reference_on_current_backend(self):
        table = np.random.default_rng(3).normal(size=(40, 3)).astype("float32")
        # Equal blocks: each op compiles for one shape under JAX.
        self.check_against_reference(table, 6, weighting="softmax",
                                     block_size=10)


_MEMORY_PROBE = r"""
import json, resource, sys, time
import numpy as np
from tfcvr.layers.graph import TopKNeighbourGraph
n, dim = int(sys.argv[1]), int(sys.argv[2])
table = np.random.default_rng(0).normal(size=(n, dim)).astype("float32")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
indices, weights = TopKNeighbourGraph(10)(table)
indices, weights = np.asarray(indices), np.asarray(weights)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"before_kib": before, "after_kib": after,
                  "shape": list(indices.shape),
                  "max_row_sum_error": float(np.abs(weights.sum(1) - 1).max()),
                  "self_loops": int((indices == np.arange(n)[:, None]).sum())}))
"""


@pytest.mark.large
def test_a_100k_node_build_stays_far_below_a_dense_matrix():
    n = 100_000
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(n), "4"],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["shape"] == [n, 10]
    assert result["max_row_sum_error"] < 1e-4
    assert result["self_loops"] == 0
    dense_kib = n * n * 4 / 1024  # one float32 N x N matrix: ~38 GiB
    growth_kib = result["after_kib"] - result["before_kib"]
    # The build's own peak is blocks of rows, not N x N: well under 1 GiB,
    # more than 40 times below a dense similarity matrix.
    assert growth_kib < 1024 * 1024, growth_kib
    assert growth_kib < dense_kib / 40
