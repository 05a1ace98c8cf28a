import keras
import numpy as np
import pytest
from keras import ops

from tfcvr.features import keys
from tfcvr.layers.graph import GraphPropagation
from tfcvr.models import CSTWA
from tfcvr.models.estimators.cstwa import _tower_layer
from tfcvr.testing import EstimatorTestCase
from tfcvr.testing import np_bce
from tfcvr.testing.gradients import backend_gradients
from tfcvr.testing.pretrained_tables import give_random_pretrained_tables
from tfcvr.testing.pretrained_tables import random_pretrained_tables

CLICK = np.array([1, 0, 1, 1, 0, 0, 1, 0], "float32")
CONVERSION = np.array([1, 0, 0, 1, 0, 0, 0, 0], "float32")
P_CTR = np.array([0.9, 0.2, 0.6, 0.02, 0.95, 0.3, 0.55, 0.05], "float32")
P_CVR = np.array([0.8, 0.5, 0.3, 0.6, 0.2, 0.4, 0.1, 0.7], "float32")
EPS = 1e-7


def to_np(x):
    return keras.ops.convert_to_numpy(x)


def outputs_for(ctr, cvr):
    return {keys.CTR: ctr[:, None], keys.CVR: cvr[:, None],
            keys.CTCVR: (ctr * cvr)[:, None]}


def np_curse_weights(y, ctr, rows, gamma, form, normalisation="batch"):
    gap = np.abs(y - np.clip(ctr.astype("float64"), EPS, 1 - EPS))
    raw = rows * (gap if form == "power" else 1 + gap) ** gamma
    if normalisation == "batch":
        return raw / (raw.sum() / max(rows.sum(), 1))
    weights = np.zeros_like(raw)
    for value in (0, 1):
        group = (rows > 0) & (y == value)
        if group.any():
            weights[group] = raw[group] / raw[group].mean()
    return weights


def np_cstwa_terms(click, conversion, ctr, cvr, weights=(1.0, 1.0, 0.0),
                   escaper=True, gamma=1.0, form="power", target="ctcvr",
                   normalisation="batch"):
    """The reconstructed CSTWA objective in NumPy (see the CSTWA docstring)."""
    w_ctr, w_ctcvr, w_cvr = weights
    ones = np.ones_like(click, "float64")
    label = click * conversion
    ctcvr_w = (np_curse_weights(label, ctr, ones, gamma, form, normalisation)
               if escaper and target == "ctcvr" else ones)
    terms = {
        "ctr": w_ctr * np_bce(click, ctr).mean(),
        "ctcvr": w_ctcvr * (ctcvr_w * np_bce(label, ctr * cvr)).mean(),
    }
    if w_cvr:
        cvr_w = (np_curse_weights(conversion, ctr, click, gamma, form,
                                  normalisation)
                 if escaper and target == "cvr" else click)
        terms["cvr"] = w_cvr * (cvr_w * np_bce(conversion, cvr)).sum() / max(
            click.sum(), 1)
    return terms


def gradient(fn, x):
    """d sum(fn(x)) / dx on the current backend (zeros where none flows)."""
    return backend_gradients(lambda v: ops.sum(fn(v)), x)[0]


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


class CSTWATest(EstimatorTestCase):
    estimator = CSTWA
    name = "cstwa"
    venue = "ECML-PKDD 2023"
    fit_variants = (
        {},
        {"use_structure_migrator": False, "use_click_perceptron": False,
         "use_curse_escaper": False},
        {"graph_hops": 2, "graph_weighting": "softmax",
         "graph_layer_combination": "mean", "gate_activation": "sigmoid",
         "gate_source": "last", "gate_embedding": True,
         "logit_reweighting": "none", "stop_gradient_click_bias": False,
         "escaper_form": "one_plus", "escaper_target": "cvr",
         "cvr_weight": 1.0},
    )

    def model(self, tables=True, **kwargs):
        kwargs.setdefault("graph_num_neighbours", 3)
        model = super().model(**kwargs)
        model.build()
        # The standard checks (fit, .keras round trip, JAX fit) run with a
        # graph, as after the first stage.
        return give_random_pretrained_tables(model) if tables else model

    # === Registration and contract ===

    def test_flagged_as_reconstructed(self):
        self.assertIn("reconstructed", CSTWA.paper)
        self.assertIn("Reconstructed", CSTWA.__doc__)
        self.assertEqual(CSTWA.pretraining.estimator, "esmm")
        self.assertEqual(CSTWA.pretraining.option("model_dir"), "ctr_model_dir")

    def test_output_contract_and_serialization(self):
        model = self.model(escaper_gamma=2.0, graph_hops=2)
        features, _ = self.batch(model.schema, batch_size=16)
        outputs = self.run_output_contract_test(model, features)
        self.assertEqual(set(outputs), set(keys.SERVING_OUTPUTS))
        self.assertAllClose(outputs[keys.CTCVR],
                            to_np(outputs[keys.CTR]) * to_np(outputs[keys.CVR]))
        revived = self.run_serialization_test(model)
        self.assertEqual(revived.graph_hops, 2)
        self.assertEqual(revived.escaper_gamma, 2.0)

    def test_graph_travels_with_the_keras_file(self):
        model = self.model()
        features, _ = self.batch(model.schema, batch_size=16)
        restored = self.run_model_saving_test(model, features)
        for name, propagation in model.propagations.items():
            self.assertGreater(to_np(propagation.neighbour_weights).sum(), 0)
            self.assertAllClose(restored.propagations[name].neighbour_indices,
                                propagation.neighbour_indices)
            self.assertAllClose(restored.propagations[name].neighbour_weights,
                                propagation.neighbour_weights)

    def test_cvr_has_embedding_tables_of_its_own(self):
        model = self.model()
        ctr = {v.path for v in model.embedding.trainable_variables}
        cvr = {v.path for v in model.cvr_embedding.trainable_variables}
        self.assertTrue(cvr)
        self.assertFalse(ctr & cvr)
        for name in model.cvr_embedding.table_rows:
            self.assertGreater(np.abs(
                to_np(model.embedding.table(name))
                - to_np(model.cvr_embedding.table(name))).max(), 0)

    # === Structure Migrator ===

    def test_structure_migrator_matches_numpy(self):
        model = self.model(graph_self_weight=0.5)
        tables = random_pretrained_tables(model, seed=3)
        model.set_pretrained_tables(tables)
        features, _ = self.batch(model.schema, batch_size=16)
        fields = to_np(model._cvr_inputs(features)).reshape(
            16, len(model.schema.features), 4)
        plain = to_np(model.cvr_embedding(features))
        for index, spec in enumerate(model.schema.features):
            if spec.name not in ("user", "item"):
                self.assertAllClose(fields[:, index], plain[:, index])
                continue
            # Reserved rows: padding 0 and the single OOV bucket 1.
            ctr_table = tables[spec.name].astype("float64")
            unit = ctr_table / np.linalg.norm(ctr_table, axis=1, keepdims=True)
            sims = unit @ unit.T
            sims[:, :2] = -np.inf
            np.fill_diagonal(sims, -np.inf)
            cvr_table = to_np(
                model.cvr_embedding.table(spec.embedding_group or spec.name))
            ids = features[spec.name]
            expected = np.stack([
                0.5 * cvr_table[i]
                + (cvr_table[np.argsort(-sims[i])[:3]].mean(0) if i >= 2 else 0)
                for i in ids
            ])
            self.assertIn(1, ids)  # an OOV row: no neighbours, w_self e
            self.assertAllClose(fields[:, index], expected, atol=1e-6)
            self.assertGreater(np.abs(expected - plain[:, index]).max(), 1e-3)

    def test_cvr_table_gradient_stays_sparse(self):
        # The Structure Migrator gathers from the fused variable itself: a
        # slice of it would copy the table and densify its gradient.
        if keras.backend.backend() != "tensorflow":
            self.skipTest("IndexedSlices are TensorFlow's sparse gradients")
        import tensorflow as tf

        model = self.model()
        features, _ = self.batch(model.schema, batch_size=8)
        table = model.cvr_embedding.embeddings
        with tf.GradientTape() as tape:
            total = tf.reduce_sum(model._cvr_inputs(features))
        self.assertIsInstance(tape.gradient(total, table.value),
                              tf.IndexedSlices)

    def test_reserved_rows_have_no_neighbours(self):
        model = self.model()
        for propagation in model.propagations.values():
            weights = to_np(propagation.neighbour_weights)
            indices = to_np(propagation.neighbour_indices)
            self.assertTrue(np.all(weights[:2] == 0))
            self.assertTrue(np.all(indices[weights > 0] >= 2))
            self.assertAllClose(weights[2:].sum(1), np.ones(len(weights) - 2),
                                atol=1e-6)

    def test_pretrained_tables_are_checked(self):
        model = self.model(tables=False)
        self.assertEqual(model.pretrained_tables_wanted(), ("user", "item"))
        with self.assertRaisesRegex(ValueError, "table of `item`"):
            model.set_pretrained_tables({"user": np.ones((12, 2))})
        with self.assertRaisesRegex(ValueError, "must have 12 rows"):
            model.set_pretrained_tables({"user": np.ones((11, 2)),
                                         "item": np.ones((12, 2))})

    # === Click Perceptron ===

    def np_cvr(self, model, features):
        """The conversion tower with the Click Perceptron in NumPy (one
        hidden layer, ReLU), from the model's own weights and inputs."""
        ctr_x = to_np(model.embedding(features)).astype("float64")
        cvr_x = to_np(model._cvr_inputs(features)).astype("float64")
        ctr_tower, cvr_tower = model.backbone.towers

        def dense(layer, x):
            kernel, bias = (to_np(w) for w in layer.weights)
            return x @ kernel + bias

        h_ctr = np.maximum(dense(ctr_tower.dense_layers[0], ctr_x), 0)
        sources = {0: ctr_x, 1: h_ctr}
        if model.gate_source == "last":
            sources = {0: h_ctr, 1: h_ctr}

        def gate(layer, level):
            s = sigmoid(dense(layer, sources[level]))
            return 2 * s if model.gate_activation == "lhuc" else s

        if model.use_click_perceptron and model.gate_embedding:
            cvr_x = cvr_x * gate(model.embedding_gate, 0)
        h = np.maximum(dense(cvr_tower.dense_layers[0], cvr_x), 0)
        if model.use_click_perceptron:
            h = h * gate(model.layer_gates[0], 1)
        z = dense(model.heads[1], h)
        if model.use_click_perceptron and model.logit_reweighting == "lhuc":
            z = z * 2 * sigmoid(dense(model.logit_gate, h_ctr))
        return sigmoid(z)

    def test_click_perceptron_matches_numpy_for_every_option(self):
        # Every value of every option, each pair of values at least once.
        options = (("lhuc", "layer", False, "lhuc"),
                   ("sigmoid", "last", True, "none"),
                   ("lhuc", "last", True, "lhuc"),
                   ("sigmoid", "layer", True, "lhuc"),
                   ("lhuc", "layer", True, "none"),
                   ("sigmoid", "last", False, "lhuc"))
        for activation, source, embedding_gate, reweighting in options:
            kwargs = dict(gate_activation=activation, gate_source=source,
                          gate_embedding=embedding_gate,
                          logit_reweighting=reweighting)
            with self.subTest(**kwargs):
                model = self.model(**kwargs)
                # Away from the neutral zero initialisation.
                rng = np.random.default_rng(5)
                gates = model.layer_gates + [model.embedding_gate,
                                             model.logit_gate]
                for layer in gates:
                    if layer is not None:
                        layer.set_weights([rng.normal(size=w.shape) * 0.5
                                           for w in layer.get_weights()])
                features, _ = self.batch(model.schema, batch_size=8)
                outputs = model(features)
                self.assertAllClose(outputs[keys.CVR],
                                    self.np_cvr(model, features), atol=1e-5)
        model = self.model(use_click_perceptron=False)
        self.assertEqual(model.layer_gates, [])
        self.assertIsNone(model.logit_gate)
        self.assertAllClose(model(features)[keys.CVR],
                            self.np_cvr(model, features), atol=1e-5)

    def test_gates_start_neutral(self):
        # Zero kernels and biases: every LHUC gate is exactly 1 at init.
        model = self.model(gate_embedding=True)
        rng = np.random.default_rng(8)
        for layer in model.layer_gates + [model.embedding_gate,
                                          model.logit_gate]:
            source = rng.normal(size=(2, layer.kernel.shape[0]))
            self.assertAllClose(2 * to_np(ops.sigmoid(layer(source))), 1.0)

    def test_stop_gradient_keeps_cvr_out_of_the_ctr_tower(self):
        if keras.backend.backend() != "tensorflow":
            self.skipTest("uses tf.GradientTape")
        import tensorflow as tf

        for stop in (True, False):
            with self.subTest(stop_gradient_click_bias=stop):
                model = self.model(stop_gradient_click_bias=stop,
                                   gate_embedding=True)
                rng = np.random.default_rng(6)
                for layer in model.layer_gates + [model.embedding_gate,
                                                  model.logit_gate]:
                    layer.set_weights([rng.normal(size=w.shape)
                                       for w in layer.get_weights()])
                features, _ = self.batch(model.schema, batch_size=16)
                ctr_kernel = model.backbone.towers[0].dense_layers[0].kernel
                # Every CTR table (one fused variable), the CVR tower's
                # way into the CTR side when the click bias is not stopped.
                ctr_table = model.embedding.embeddings
                with tf.GradientTape(persistent=True) as tape:
                    cvr = model(features, training=True)[keys.CVR]
                for variable in (ctr_kernel, ctr_table):
                    grad = tape.gradient(cvr, variable)
                    size = 0.0 if grad is None else float(
                        np.abs(tf.convert_to_tensor(grad).numpy()).sum())
                    if stop:
                        self.assertEqual(size, 0.0)
                    else:
                        self.assertGreater(size, 0.0)

    def test_tower_layers_in_lock_step_equal_the_tower(self):
        for config in ({"hidden_units": [8, 4]},
                       {"hidden_units": [8, 4], "batch_norm": True},
                       {"hidden_units": [6], "dropout": 0.3}):
            with self.subTest(**config):
                model = self.model(backbone_config=config)
                tower = model.backbone.towers[1]
                x = np.random.default_rng(7).normal(
                    size=(5, len(model.schema.features) * 4)).astype("float32")
                h = x
                for i in range(len(tower.dense_layers)):
                    h = _tower_layer(tower, i, h, training=False)
                self.assertAllClose(h, tower(x, training=False), atol=1e-6)

    # === Curse Escaper and the objective ===

    def test_loss_matches_numpy_for_every_option(self):
        labels = {keys.CLICK: CLICK, keys.CONVERSION: CONVERSION}
        outputs = outputs_for(P_CTR, P_CVR)
        cases = [
            {"use_curse_escaper": False},
            {"escaper_gamma": 0.0},
            {"escaper_gamma": 1.0},
            {"escaper_gamma": 2.5, "escaper_form": "one_plus"},
            {"escaper_gamma": 2.0, "ctr_weight": 0.3, "ctcvr_weight": 1.7},
            {"escaper_target": "cvr", "cvr_weight": 0.7},
            {"escaper_target": "cvr", "cvr_weight": 0.7, "escaper_gamma": 2.0,
             "escaper_form": "one_plus"},
            {"escaper_target": "ctcvr", "cvr_weight": 0.4},
            {"escaper_target": "cvr", "cvr_weight": 1.0,
             "use_curse_escaper": False},
            {"escaper_normalisation": "per_label"},
            {"escaper_normalisation": "per_label", "escaper_gamma": 2.0,
             "escaper_form": "one_plus"},
            {"escaper_normalisation": "per_label", "escaper_target": "cvr",
             "cvr_weight": 0.7},
        ]
        for kwargs in cases:
            with self.subTest(**kwargs):
                model = self.model(tables=False, **kwargs)
                terms = model.loss_terms(labels, outputs)
                expected = np_cstwa_terms(
                    CLICK, CONVERSION, P_CTR, P_CVR,
                    weights=(model.ctr_weight, model.ctcvr_weight,
                             model.cvr_weight),
                    escaper=model.use_curse_escaper, gamma=model.escaper_gamma,
                    form=model.escaper_form, target=model.escaper_target,
                    normalisation=model.escaper_normalisation)
                self.assertEqual(set(terms), set(expected))
                for name, value in expected.items():
                    self.assertAllClose(terms[name], value, atol=1e-5,
                                        rtol=1e-5, msg=name)
                self.assertAllClose(
                    model.compute_loss(y=labels, y_pred=outputs),
                    sum(expected.values()), atol=1e-5, rtol=1e-5)

    def test_gamma_zero_is_exactly_unweighted(self):
        labels = {keys.CLICK: CLICK, keys.CONVERSION: CONVERSION}
        outputs = outputs_for(P_CTR, P_CVR)
        for target, cvr_weight in (("ctcvr", 0.0), ("cvr", 1.0)):
            model = self.model(tables=False, escaper_gamma=0.0,
                               escaper_target=target, cvr_weight=cvr_weight)
            off = self.model(tables=False, use_curse_escaper=False,
                             escaper_target=target, cvr_weight=cvr_weight)
            rows = CLICK if target == "cvr" else np.ones(8, "float32")
            label = CONVERSION if target == "cvr" else CLICK * CONVERSION
            np.testing.assert_array_equal(
                to_np(model.curse_weights(label, P_CTR, rows)), rows)
            on_terms = model.loss_terms(labels, outputs)
            off_terms = off.loss_terms(labels, outputs)
            for name in on_terms:
                np.testing.assert_array_equal(to_np(on_terms[name]),
                                              to_np(off_terms[name]))

    def test_curse_weights_emphasise_contradictions(self):
        model = self.model(tables=False, escaper_gamma=1.0)
        ones = np.ones(8, "float32")
        weights = to_np(model.curse_weights(CLICK * CONVERSION, P_CTR, ones))
        self.assertAlmostEqual(weights.mean(), 1.0, places=5)
        # Row 4: pCTR 0.95 without conversion (false positive); row 3:
        # pCTR 0.02 with conversion (false negative); row 7: an agreeing
        # low-pCTR negative.
        self.assertGreater(weights[4], 5 * weights[7])
        self.assertGreater(weights[3], 5 * weights[7])

    def test_per_label_weights_keep_each_label_total(self):
        # "batch" moves weight from the many negatives to the few positives
        # (a purchase weighs about 1 - pCTR, a negative about pCTR), which
        # re-balances the classes; "per_label" keeps each label's total.
        label = CLICK * CONVERSION
        ones = np.ones(8, "float32")
        batch = to_np(self.model(tables=False).curse_weights(
            label, P_CTR, ones))
        model = self.model(tables=False, escaper_normalisation="per_label")
        weights = to_np(model.curse_weights(label, P_CTR, ones))
        for value in (0, 1):
            group = label == value
            self.assertAlmostEqual(weights[group].sum(), group.sum(),
                                   places=4)
        self.assertGreater(abs(batch[label == 1].sum() - (label == 1).sum()),
                           0.1)
        # Within a label the contradiction still decides: the pCTR 0.95
        # negative outweighs the agreeing low-pCTR one.
        self.assertGreater(weights[4], 5 * weights[7])

    @pytest.mark.jax
    def test_curse_weights_are_stop_gradient(self):
        for kwargs in ({"escaper_gamma": 1.0},
                       {"escaper_gamma": 2.0, "escaper_form": "one_plus"}):
            with self.subTest(**kwargs):
                model = self.model(tables=False, **kwargs)
                label = CLICK * CONVERSION
                ones = np.ones(8, "float32")
                grad = gradient(
                    lambda ctr: model.curse_weights(label, ctr, ones), P_CTR)
                np.testing.assert_array_equal(grad, np.zeros(8))
                # The loss still trains pCTR through the CTR and CTCVR terms.
                labels = {keys.CLICK: CLICK, keys.CONVERSION: CONVERSION}
                grad = gradient(
                    lambda ctr: model.loss_terms(
                        labels, outputs_for(ctr, P_CVR))["ctcvr"], P_CTR)
                self.assertGreater(np.abs(grad).sum(), 0)

    @pytest.mark.jax
    def test_batches_without_clicks_or_conversions_are_finite(self):
        zeros = np.zeros(8, "float32")
        for kwargs in ({}, {"escaper_target": "cvr", "cvr_weight": 1.0},
                       {"escaper_gamma": 3.0, "escaper_form": "one_plus",
                        "cvr_weight": 1.0}):
            model = self.model(tables=False, **kwargs)
            for click, conversion in ((zeros, zeros), (CLICK, zeros),
                                      (np.ones(8, "float32"), zeros)):
                with self.subTest(clicks=int(click.sum()), **kwargs):
                    terms = model.loss_terms(
                        {keys.CLICK: click, keys.CONVERSION: conversion},
                        outputs_for(P_CTR, P_CVR))
                    for value in terms.values():
                        self.assertTrue(np.isfinite(to_np(value)))
            # The gradient a training step takes is finite too.
            for click in (zeros, CLICK):
                labels = {keys.CLICK: click, keys.CONVERSION: zeros}
                grad = gradient(lambda ctr: model.compute_loss(
                    y=labels, y_pred=outputs_for(ctr, P_CVR)), P_CTR)
                self.assertTrue(np.all(np.isfinite(grad)))

    # === Ablations and validation ===

    def test_ablation_switches(self):
        model = self.model(use_structure_migrator=False)
        self.assertEqual(model.propagations, {})
        self.assertEqual(model.pretrained_tables_wanted(), ())
        self.assertFalse(any(isinstance(layer, GraphPropagation)
                             for layer in model._flatten_layers()))
        model = self.model(use_curse_escaper=False)
        np.testing.assert_array_equal(
            to_np(model.curse_weights(CONVERSION, P_CTR, CLICK)), CLICK)

    def test_invalid_arguments(self):
        for kwargs, message in (
            ({"escaper_gamma": -1}, "escaper_gamma=-1"),
            ({"escaper_target": "cvr"}, "cvr_weight=0"),
            ({"escaper_form": "focal"}, "escaper_form='focal'"),
            ({"gate_source": "first"}, "gate_source='first'"),
            ({"use_click_perceptron": "false"}, "use_click_perceptron='false'"),
            ({"graph_weighting": "dot"}, "graph_weighting='dot'"),
            ({"backbone": "mmoe", "backbone_config": {"num_experts": 2}},
             "backbone=.towers."),
        ):
            with self.subTest(**kwargs):
                with self.assertRaisesRegex(ValueError, message):
                    self.model(tables=False, **kwargs)
        no_ids = self.tiny_schema().replace(user_id=None, item_id=None)
        with self.assertRaisesRegex(ValueError, "user_id or an item_id"):
            self.model(schema=no_ids, tables=False)
        model = self.model(schema=no_ids, use_structure_migrator=False)
        self.assertEqual(model.pretrained_tables_wanted(), ())
