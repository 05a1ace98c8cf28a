import keras
import numpy as np

from tfcvr.features import keys
from tfcvr.layers.backbones import BACKBONES
from tfcvr.layers.backbones import Backbone
from tfcvr.layers.backbones import MMoE
from tfcvr.models import ESMM
from tfcvr.models import CVRModel
from tfcvr.testing import TINY_BACKBONES
from tfcvr.testing import TestCase


def to_np(x):
    return keras.ops.convert_to_numpy(x)


class PenalisedBackbone(Backbone):
    """Test backbone whose kernel carries an L2 penalty of known size."""

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(input_shape[-1], 3), initializer="ones",
            regularizer=keras.regularizers.L2(0.5),
        )
        self.built = True

    def call(self, x, training=False):
        return [keras.ops.matmul(x, self.kernel)] * self.num_tasks


class CVRModelTest(TestCase):
    def test_default_outputs_are_sigmoids_and_their_product(self):
        model = CVRModel(schema=self.tiny_schema(), embedding_dim=4)
        logits = {keys.CTR: np.array([[0.0], [2.0]], "float32"),
                  keys.CVR: np.array([[-1.0], [3.0]], "float32")}
        outputs = model.outputs_from_logits(logits)
        ctr = 1 / (1 + np.exp(-logits[keys.CTR]))
        cvr = 1 / (1 + np.exp(-logits[keys.CVR]))
        self.assertAllClose(outputs[keys.CTR], ctr)
        self.assertAllClose(outputs[keys.CVR], cvr)
        self.assertAllClose(outputs[keys.CTCVR], ctr * cvr)

    def test_builds_from_the_schema_alone(self):
        schema = self.tiny_schema()
        model = ESMM(schema=schema.to_dict(), embedding_dim=4,
                     backbone_config={"hidden_units": [5]})
        self.assertFalse(model.built)
        model.build()
        self.assertTrue(model.built)
        # One fused table (user, item shared with history, cat_0: 12 rows
        # each), the numeric kernel and bias, 2 towers x (kernel, bias),
        # 2 heads x (kernel, bias).
        self.assertEqual(len(model.trainable_weights), 1 + 2 + 4 + 4)
        self.assertEqual(tuple(model.embedding.embeddings.shape), (36, 4))
        old = ESMM(schema=schema, embedding_dim=4, embedding_layout="per_table",
                   backbone_config={"hidden_units": [5]})
        old.build()
        self.assertEqual(len(old.trainable_weights), 3 + 2 + 4 + 4)
        dummy = model.dummy_inputs(batch_size=3)
        self.assertEqual(set(dummy), set(schema.feature_names)
                         | {"history" + keys.WEIGHT_SUFFIX})
        self.assertEqual(dummy["history"].shape, (3, 4))
        for head in model.heads:
            self.assertEqual(head.dtype_policy.name, "float32")

    def test_base_has_no_objective(self):
        model = CVRModel(schema=self.tiny_schema(), embedding_dim=4)
        features, labels = self.batch(model.schema, batch_size=4)
        outputs = model(features)
        with self.assertRaisesRegex(TypeError, "loss_terms"):
            model.compute_loss(y=labels, y_pred=outputs)

    def test_compute_loss_needs_a_label_dict(self):
        model = ESMM(schema=self.tiny_schema(), embedding_dim=4)
        features, labels = self.batch(model.schema, batch_size=4)
        outputs = model(features)
        with self.assertRaisesRegex(ValueError, "dict of labels"):
            model.compute_loss(y=labels[keys.CLICK], y_pred=outputs)

    def test_compute_loss_adds_layer_losses(self):
        model = ESMM(schema=self.tiny_schema(), embedding_dim=4,
                     backbone=PenalisedBackbone(num_tasks=2))
        features, labels = self.batch(model.schema, batch_size=8)
        outputs = model(features)
        terms = model.loss_terms(labels, outputs)
        total = model.compute_loss(y=labels, y_pred=outputs)
        penalty = 0.5 * np.sum(to_np(model.backbone.kernel) ** 2)
        self.assertAllClose(
            to_np(total) - sum(to_np(t) for t in terms.values()), penalty,
            rtol=1e-5,
        )

    def test_metrics_use_the_three_protocols(self):
        model = ESMM(schema=self.tiny_schema(), embedding_dim=4)
        click = np.array([1, 1, 1, 1, 0, 0, 0, 0], "float32")
        conversion = np.array([1, 0, 1, 0, 0, 0, 0, 0], "float32")
        # pCVR ranks clicked rows perfectly; unclicked rows get the highest
        # pCVR, which only a click-space AUC ignores.
        cvr = np.array([0.6, 0.2, 0.7, 0.1, 0.9, 0.95, 0.8, 0.85], "float32")
        ctr = np.array([0.9, 0.8, 0.7, 0.6, 0.1, 0.2, 0.3, 0.4], "float32")
        y_pred = {keys.CTR: ctr[:, None], keys.CVR: cvr[:, None],
                  keys.CTCVR: (ctr * cvr)[:, None]}
        results = model.compute_metrics(
            None, {keys.CLICK: click, keys.CONVERSION: conversion}, y_pred
        )
        self.assertAllClose(results["ctr_auc"], 1.0, atol=1e-3)
        self.assertAllClose(results["cvr_auc_clicked"], 1.0, atol=1e-3)
        self.assertAllClose(results["ctcvr_auc"], 1.0, atol=1e-3)

    def test_train_metrics_off_trains_the_same(self):
        schema = self.tiny_schema()
        features, labels = self.batch(schema, batch_size=64, seed=5)
        labels = {k: labels[k] for k in schema.labels}
        runs = {}
        for train_metrics in ("auc", "none"):
            keras.utils.set_random_seed(3)
            model = ESMM(schema=schema, embedding_dim=4,
                         backbone_config={"hidden_units": [8]})
            model.compile(optimizer=keras.optimizers.Adam(1e-2),
                          train_metrics=train_metrics)
            history = model.fit(features, labels, batch_size=16, epochs=2,
                                verbose=0, shuffle=False)
            runs[train_metrics] = (history.history, model.get_weights())
        (auc_logs, auc_weights), (none_logs, none_weights) = (
            runs["auc"], runs["none"])
        # Both log the loss and its terms (the loss monitor); "none" drops
        # only the AUCs.
        self.assertEqual(set(none_logs), {"loss", "ctr_loss", "ctcvr_loss"})
        self.assertEqual(set(auc_logs) - set(none_logs),
                         {"ctr_auc", "ctcvr_auc", "cvr_auc_clicked"})
        self.assertAllClose(auc_logs["loss"], none_logs["loss"], atol=1e-6)
        for a, b in zip(auc_weights, none_weights):
            self.assertAllClose(a, b, atol=1e-6)

    def test_fit_traces_its_step_once(self):
        # Variables created inside a traced step would make tf.function
        # trace it a second time; `fit` builds the optimizer first.
        if keras.backend.backend() != "tensorflow":
            self.skipTest("tf.function tracing")
        schema = self.tiny_schema()
        features, labels = self.batch(schema, batch_size=32, seed=2)
        model = ESMM(schema=schema, embedding_dim=4,
                     backbone_config={"hidden_units": [4]})
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        traced = []
        step = model.train_step
        model.train_step = lambda *a: (traced.append(1), step(*a))[1]
        history = model.fit(features, {k: labels[k] for k in schema.labels},
                            batch_size=16, epochs=2, verbose=0)
        self.assertEqual(len(traced), 1)
        self.assertEqual(len(history.history["loss"]), 2)
        self.assertTrue(model.optimizer.built)

    def test_train_metrics_are_saved_with_the_compile_config(self):
        schema = self.tiny_schema()
        features, _ = self.batch(schema, batch_size=4)
        model = ESMM(schema=schema, embedding_dim=4,
                     backbone_config={"hidden_units": [4]})
        model.compile(optimizer="adam", train_metrics="none")
        restored = self.run_model_saving_test(model, features)
        self.assertEqual(restored.train_metrics, "none")
        self.assertTrue(restored.compiled)
        with self.assertRaisesRegex(ValueError, "Received: train_metrics='roc'"):
            model.compile(optimizer="adam", train_metrics="roc")
        with self.assertRaisesRegex(ValueError, "computes its own metrics"):
            model.compile(optimizer="adam", metrics=["auc"])

    def test_invalid_arguments(self):
        schema = self.tiny_schema()
        with self.assertRaisesRegex(ValueError, "Received: epsilon"):
            ESMM(schema=schema, epsilon=0.5)
        with self.assertRaisesRegex(ValueError, "Received: backbone='moe'"):
            ESMM(schema=schema, backbone="moe")
        with self.assertRaisesRegex(ValueError, "Received: num_tasks=3"):
            ESMM(schema=schema, backbone=MMoE(num_tasks=3))
        with self.assertRaisesRegex(ValueError, "backbone_config"):
            ESMM(schema=schema, backbone=MMoE(num_tasks=2),
                 backbone_config={"num_experts": 2})
        with self.assertRaisesRegex(ValueError, "Received: num_experts=0"):
            ESMM(schema=schema, backbone="mmoe",
                 backbone_config={"num_experts": 0})

    def test_check_schema_hook_runs_at_construction(self):
        class NeedsCart(ESMM):
            def _check_schema(self, schema):
                if "cart" not in schema.labels:
                    raise ValueError("no cart label")

        with self.assertRaisesRegex(ValueError, "no cart label"):
            NeedsCart(schema=self.tiny_schema())

    def test_config_lists_the_constructor_arguments(self):
        model = ESMM(schema=self.tiny_schema(), embedding_dim=3,
                     backbone="mmoe", backbone_config={"num_experts": 2},
                     embedding_combiner="sum", epsilon=1e-6)
        config = model.get_config()
        self.assertEqual(
            set(config) - {"name", "trainable", "dtype"},
            {"schema", "embedding_dim", "backbone", "backbone_config",
             "embedding_combiner", "epsilon", "embedding_layout",
             "ctr_weight", "ctcvr_weight"},
        )
        revived = self.run_serialization_test(model)
        self.assertEqual(revived.backbone.num_experts, 2)
        self.assertEqual(revived.embedding.combiner, "sum")

    def test_every_backbone_under_mixed_precision(self):
        schema = self.tiny_schema()
        features, _ = self.batch(schema, batch_size=8)
        keras.mixed_precision.set_global_policy("mixed_float16")
        try:
            for name in sorted(BACKBONES):
                with self.subTest(backbone=name):
                    model = ESMM(schema=schema, embedding_dim=4, backbone=name,
                                 backbone_config=TINY_BACKBONES.get(name, {}))
                    outputs = model(features)
                    self.assertEqual(model.backbone.compute_dtype, "float16")
                    for key, value in outputs.items():
                        self.assertEqual(keras.backend.standardize_dtype(
                            value.dtype), "float32", key)
                        self.assertTrue(np.all(np.isfinite(to_np(value))), key)
        finally:
            keras.mixed_precision.set_global_policy("float32")
