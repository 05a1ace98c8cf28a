import keras
import numpy as np
import pytest

from tfcvr.features import keys
from tfcvr.layers.backbones import BACKBONES
from tfcvr.layers.backbones import Backbone
from tfcvr.layers.core.ait_module import AITModule
from tfcvr.models import AITM
from tfcvr.testing import TINY_BACKBONES
from tfcvr.testing import EstimatorTestCase
from tfcvr.testing import np_bce

CLICK = np.array([1, 0, 1, 1, 0, 0, 1, 0], "float32")
CONVERSION = np.array([1, 0, 0, 1, 0, 0, 0, 0], "float32")
Y1 = np.array([0.9, 0.2, 0.6, 0.7, 0.1, 0.3, 0.55, 0.05], "float32")
# Rows 1, 4 and 7 break the funnel (y2 > y1): the calibrator sees them.
Y2 = np.array([0.5, 0.35, 0.1, 0.6, 0.3, 0.02, 0.2, 0.25], "float32")


def np_aitm_loss(click, conversion, y1, y2, alpha=0.6, reduction="mean",
                 w_ctr=1.0, w_ctcvr=1.0):
    """AITM (KDD 2021, official code): log losses plus alpha * calibrator."""
    excess = np.maximum(y2.astype("float64") - y1, 0.0)
    calibrator = excess.mean() if reduction == "mean" else excess.sum()
    return (
        w_ctr * np_bce(click, y1).mean(),
        w_ctcvr * np_bce(click * conversion, y2).mean(),
        alpha * calibrator,
    )


def logit(p):
    p = p.astype("float64")
    return (np.log(p) - np.log(1 - p)).astype("float32")[:, None]


def to_np(x):
    return keras.ops.convert_to_numpy(x)


class UnevenBackbone(Backbone):
    """Task representations of widths 5 (click) and 3 (purchase)."""

    def build(self, input_shape):
        self.click = keras.layers.Dense(5, name="click")
        self.purchase = keras.layers.Dense(3, name="purchase")
        self.click.build(input_shape)
        self.purchase.build(input_shape)
        self.built = True

    def call(self, x, training=False):
        return [self.click(x), self.purchase(x)]


class AITMTest(EstimatorTestCase):
    estimator = AITM
    name = "aitm"
    venue = "KDD 2021"

    def test_loss_matches_numpy_reference(self):
        labels = {keys.CLICK: CLICK, keys.CONVERSION: CONVERSION}
        outputs = {keys.CTR: Y1[:, None], keys.CTCVR: Y2[:, None],
                   keys.CVR: np.clip(Y2 / Y1, 0, 1)[:, None]}
        cases = (
            {},
            {"calibrator_reduction": "sum"},
            {"calibrator_weight": 2.0, "ctr_weight": 0.5, "ctcvr_weight": 3.0},
        )
        for kwargs in cases:
            with self.subTest(**kwargs):
                model = self.model(attention_l2=0.0, **kwargs)
                terms = model.loss_terms(labels, outputs)
                expected = np_aitm_loss(
                    CLICK, CONVERSION, Y1, Y2,
                    alpha=kwargs.get("calibrator_weight", 0.6),
                    reduction=kwargs.get("calibrator_reduction", "mean"),
                    w_ctr=kwargs.get("ctr_weight", 1.0),
                    w_ctcvr=kwargs.get("ctcvr_weight", 1.0),
                )
                self.assertEqual(set(terms), {"ctr", "ctcvr", "calibrator"})
                for name, value in zip(("ctr", "ctcvr", "calibrator"),
                                       expected):
                    self.assertAllClose(terms[name], value, atol=1e-5,
                                        rtol=1e-5)
                self.assertGreater(float(to_np(terms["calibrator"])), 0.0)
                self.assertAllClose(
                    model.compute_loss(y=labels, y_pred=outputs),
                    sum(expected), atol=1e-5, rtol=1e-5,
                )

    def test_calibrator_is_zero_when_the_funnel_holds(self):
        labels = {keys.CLICK: CLICK, keys.CONVERSION: CONVERSION}
        y2 = np.minimum(Y2, Y1)
        outputs = {keys.CTR: Y1[:, None], keys.CTCVR: y2[:, None],
                   keys.CVR: (y2 / Y1)[:, None]}
        terms = self.model().loss_terms(labels, outputs)
        self.assertAllClose(terms["calibrator"], 0.0)

    def test_cvr_is_the_clipped_ratio(self):
        model = self.model()
        outputs = model.outputs_from_logits(
            {keys.CTR: logit(Y1), keys.CTCVR: logit(Y2)}
        )
        self.assertEqual(set(outputs), {keys.CTR, keys.CVR, keys.CTCVR})
        self.assertAllClose(outputs[keys.CTR], Y1[:, None], atol=1e-6)
        self.assertAllClose(outputs[keys.CTCVR], Y2[:, None], atol=1e-6)
        self.assertAllClose(outputs[keys.CVR],
                            np.clip(Y2 / Y1, 0, 1)[:, None], atol=1e-5)

    def test_forward_is_the_aitm_graph(self):
        model = self.model(attention_dim=6)
        features, _ = self.batch(model.schema, batch_size=8)
        outputs = model(features)
        x = model.embedding(features)
        q_click, q_purchase = model.backbone(x)
        p = model.transfer(q_click)
        self.assertEqual(model.transfer.units, q_purchase.shape[-1])
        z, weights = model.ait([q_purchase, p], return_weights=True)
        self.assertEqual(tuple(z.shape), (8, 6))
        self.assertAllClose(to_np(weights).sum(1), np.ones(8), atol=1e-6)
        y1 = 1 / (1 + np.exp(-to_np(model.heads[0](q_click))))
        y2 = 1 / (1 + np.exp(-to_np(model.heads[1](z))))
        self.assertAllClose(outputs[keys.CTR], y1, atol=1e-6)
        self.assertAllClose(outputs[keys.CTCVR], y2, atol=1e-6)

    def test_transfer_matches_the_purchase_width(self):
        model = AITM(schema=self.tiny_schema(), embedding_dim=4,
                     backbone=UnevenBackbone(num_tasks=2))
        features, _ = self.batch(model.schema, batch_size=4)
        self.run_output_contract_test(model, features)
        self.assertEqual(model.transfer.units, 3)
        self.assertEqual(tuple(model.transfer.kernel.shape), (5, 3))

    def test_attention_l2_term(self):
        labels = {keys.CLICK: CLICK, keys.CONVERSION: CONVERSION}
        outputs = {keys.CTR: Y1[:, None], keys.CTCVR: Y2[:, None],
                   keys.CVR: np.clip(Y2 / Y1, 0, 1)[:, None]}
        for l2 in (5e-7, 0.01):
            with self.subTest(attention_l2=l2):
                model = self.model(attention_l2=l2)
                terms = model.loss_terms(labels, outputs)
                kernels = (model.ait.query_kernel, model.ait.key_kernel,
                           model.ait.value_kernel)
                penalty = l2 * sum(np.sum(to_np(k).astype("float64") ** 2)
                                   for k in kernels)
                self.assertAllClose(terms["attention_l2"], penalty, rtol=1e-5)
                expected = sum(np_aitm_loss(CLICK, CONVERSION, Y1, Y2))
                self.assertAllClose(
                    model.compute_loss(y=labels, y_pred=outputs),
                    expected + penalty, atol=1e-5, rtol=1e-5,
                )
        self.assertNotIn(
            "attention_l2",
            self.model(attention_l2=0.0).loss_terms(labels, outputs),
        )

    def test_contract_serialization_and_saving(self):
        model = self.model(calibrator_reduction="sum", attention_dim=3,
                           transfer_dropout=0.3)
        features, _ = self.batch(model.schema, batch_size=16)
        outputs = self.run_output_contract_test(model, features)
        ratio = np.clip(to_np(outputs[keys.CTCVR]) / to_np(outputs[keys.CTR]),
                        0, 1)
        self.assertAllClose(outputs[keys.CVR], ratio, atol=1e-5)
        revived = self.run_serialization_test(model)
        self.assertEqual(revived.attention_dim, 3)
        restored = self.run_model_saving_test(model, features)
        self.assertIsInstance(restored.ait, AITModule)
        self.assertAllClose(restored.transfer.kernel, model.transfer.kernel)

    def test_fit(self):
        model = self.model(backbone="mmoe",
                           backbone_config=TINY_BACKBONES["mmoe"])
        features, labels = self.batch(model.schema, batch_size=48)
        self.run_fit_test(model, features, labels)

    def test_every_backbone(self):
        schema = self.tiny_schema()
        features, _ = self.batch(schema, batch_size=8)
        for name in sorted(BACKBONES):
            with self.subTest(backbone=name):
                model = AITM(schema=schema, embedding_dim=4, backbone=name,
                             backbone_config=TINY_BACKBONES.get(name, {}))
                self.run_output_contract_test(model, features)

    def test_mixed_precision(self):
        keras.mixed_precision.set_global_policy("mixed_float16")
        try:
            model = self.model()
            features, labels = self.batch(model.schema, batch_size=8)
            outputs = model(features)
            self.assertEqual(model.ait.compute_dtype, "float16")
            for key, value in outputs.items():
                self.assertEqual(
                    keras.backend.standardize_dtype(value.dtype), "float32"
                )
                self.assertTrue(np.all(np.isfinite(to_np(value))), key)
            loss = model.compute_loss(y=labels, y_pred=outputs)
            self.assertTrue(np.isfinite(to_np(loss)))
        finally:
            keras.mixed_precision.set_global_policy("float32")

    def test_information_flows_from_click_to_purchase_only(self):
        if keras.backend.backend() != "tensorflow":
            self.skipTest("uses tf.GradientTape")
        import tensorflow as tf

        model = self.model()
        features, labels = self.batch(model.schema, batch_size=32)
        model.build()
        click_tower = model.backbone.towers[0].trainable_weights[0]
        purchase_tower = model.backbone.towers[1].trainable_weights[0]
        ctr_head, ctcvr_head = model.heads[0].kernel, model.heads[1].kernel
        watched = [click_tower, purchase_tower, ctr_head, ctcvr_head,
                   model.transfer.kernel]
        # Push y2 above y1 so the calibrator is active.
        model.heads[1].bias.assign([5.0])
        with tf.GradientTape(persistent=True) as tape:
            terms = model.loss_terms(labels, model(features, training=True))

        def reached(term):
            grads = tape.gradient(terms[term], watched)
            return [g is not None and np.abs(g.numpy()).sum() > 0 for g in grads]

        # The purchase loss trains the click tower through the transfer
        # layer, never the click head; the click loss stays on its side.
        self.assertEqual(reached("ctcvr"), [True, True, False, True, True])
        self.assertEqual(reached("ctr"), [True, False, True, False, False])
        self.assertEqual(reached("calibrator"), [True, True, True, True, True])

    def test_invalid_arguments(self):
        for kwargs in (
            {"calibrator_reduction": "max"},
            {"calibrator_weight": -0.6},
            {"transfer_dropout": 1.0},
            {"attention_dim": 0},
            {"cvr_output": "head"},
            {"attention_l2": -1.0},
        ):
            with self.subTest(kwargs=kwargs):
                with self.assertRaisesRegex(ValueError, "Received:"):
                    self.model(**kwargs)

    @pytest.mark.jax
    def test_fit_step_on_current_backend(self):
        model = self.model(transfer_dropout=0.1)
        features, labels = self.batch(model.schema, batch_size=32)
        history = self.run_fit_test(model, features, labels, steps=2)
        self.assertEqual(len(history.history["loss"]), 2)
