import keras
import numpy as np
import pytest

from tfcvr.features import keys
from tfcvr.layers.backbones import BACKBONES
from tfcvr.models import ESM2
from tfcvr.models import get_estimator
from tfcvr.models.estimators.esm2 import ACTION
from tfcvr.models.estimators.esm2 import BUY_GIVEN_DACTION
from tfcvr.models.estimators.esm2 import BUY_GIVEN_OACTION
from tfcvr.models.estimators.esm2 import CTAVR
from tfcvr.models.estimators.esm2 import DACTION_GIVEN_CLICK
from tfcvr.testing import TINY_BACKBONES
from tfcvr.testing import TestCase
from tfcvr.testing import np_bce

CLICK = np.array([1, 0, 1, 1, 0, 0, 1, 1], "float32")
ACTIONS = np.array([1, 0, 0, 1, 0, 1, 1, 0], "float32")  # row 5: noise
CONVERSION = np.array([1, 0, 0, 1, 0, 0, 0, 1], "float32")
Y1 = np.array([0.9, 0.2, 0.6, 0.7, 0.1, 0.3, 0.55, 0.4], "float32")
Y2 = np.array([0.5, 0.1, 0.3, 0.8, 0.6, 0.2, 0.45, 0.35], "float32")
Y3 = np.array([0.7, 0.4, 0.2, 0.9, 0.3, 0.5, 0.15, 0.6], "float32")
Y4 = np.array([0.2, 0.05, 0.1, 0.3, 0.25, 0.1, 0.05, 0.5], "float32")


def np_esm2(y1, y2, y3, y4):
    """ESM2's derived probabilities from its four heads."""
    cvr = y2 * y3 + (1 - y2) * y4
    return {keys.CTR: y1, CTAVR: y1 * y2, keys.CVR: cvr, keys.CTCVR: y1 * cvr}


def np_esm2_loss(click, action, conversion, out, w=(1.0, 1.0, 1.0)):
    return (
        w[0] * np_bce(click, out[keys.CTR]).mean(),
        w[1] * np_bce(click * action, out[CTAVR]).mean(),
        w[2] * np_bce(click * conversion, out[keys.CTCVR]).mean(),
    )


def logit(p):
    p = p.astype("float64")
    return (np.log(p) - np.log(1 - p)).astype("float32")[:, None]


def to_np(x):
    return keras.ops.convert_to_numpy(x)


def action_schema(schema, name=ACTION):
    return schema.replace(labels=tuple(keys.LABEL_KEYS) + (name,))


class ESM2Test(TestCase):
    def schema(self, name=ACTION):
        return action_schema(self.tiny_schema(), name)

    def model(self, **kwargs):
        kwargs.setdefault("backbone_config", TINY_BACKBONES["towers"])
        kwargs.setdefault("schema", self.schema())
        return ESM2(embedding_dim=4, **kwargs)

    def batch_with_action(self, schema, batch_size=48, name=ACTION, seed=0):
        features, labels = self.batch(schema, batch_size=batch_size, seed=seed)
        rng = np.random.default_rng(seed + 1)
        labels[name] = labels[keys.CLICK] * (rng.random(batch_size) < 0.5)
        labels[name] = np.maximum(labels[name], labels[keys.CONVERSION])
        return features, labels

    def test_registered(self):
        self.assertIs(get_estimator("esm2"), ESM2)

    def test_outputs_and_loss_match_numpy_reference(self):
        logits = {
            keys.CTR: logit(Y1),
            DACTION_GIVEN_CLICK: logit(Y2),
            BUY_GIVEN_DACTION: logit(Y3),
            BUY_GIVEN_OACTION: logit(Y4),
        }
        reference = np_esm2(Y1, Y2, Y3, Y4)
        labels = {keys.CLICK: CLICK, keys.CONVERSION: CONVERSION,
                  ACTION: ACTIONS}
        for weights in ((1.0, 1.0, 1.0), (0.5, 2.0, 1.5)):
            with self.subTest(weights=weights):
                model = self.model(ctr_weight=weights[0],
                                   ctavr_weight=weights[1],
                                   ctcvr_weight=weights[2])
                outputs = model.outputs_from_logits(logits)
                self.assertEqual(
                    set(outputs), {keys.CTR, keys.CVR, keys.CTCVR, CTAVR}
                )
                for key in (keys.CTR, keys.CVR, keys.CTCVR, CTAVR):
                    self.assertAllClose(outputs[key], reference[key][:, None],
                                        atol=1e-6)
                terms = model.loss_terms(labels, outputs)
                expected = np_esm2_loss(CLICK, ACTIONS, CONVERSION, reference,
                                        weights)
                self.assertEqual(set(terms), {"ctr", "ctavr", "ctcvr"})
                for name, value in zip(("ctr", "ctavr", "ctcvr"), expected):
                    self.assertAllClose(terms[name], value, atol=1e-5,
                                        rtol=1e-5)
                self.assertAllClose(
                    model.compute_loss(y=labels, y_pred=outputs),
                    sum(expected), atol=1e-5, rtol=1e-5,
                )

    def test_action_on_unclicked_rows_is_ignored(self):
        model = self.model()
        outputs = {keys.CTR: Y1[:, None], keys.CVR: Y3[:, None],
                   keys.CTCVR: (Y1 * Y3)[:, None], CTAVR: (Y1 * Y2)[:, None]}
        labels = {keys.CLICK: CLICK, keys.CONVERSION: CONVERSION,
                  ACTION: ACTIONS}
        clean = dict(labels, **{ACTION: ACTIONS * CLICK})
        self.assertAllClose(model.loss_terms(labels, outputs)["ctavr"],
                            model.loss_terms(clean, outputs)["ctavr"])

    def test_missing_action_label_fails_at_construction(self):
        with self.assertRaisesRegex(ValueError, "add a label column `action`"):
            ESM2(schema=self.tiny_schema())
        with self.assertRaisesRegex(ValueError, "`cart`"):
            ESM2(schema=self.schema(), action_label="cart")
        model = ESM2(schema=self.schema("cart"), action_label="cart",
                     embedding_dim=4)
        self.assertEqual(model.action_label, "cart")
        for bad in ("", keys.CLICK, 3):
            with self.assertRaisesRegex(ValueError, "Received: action_label"):
                ESM2(schema=self.schema(), action_label=bad)

    def test_missing_action_label_in_fit_labels(self):
        model = self.model()
        outputs = model(self.batch(model.schema, batch_size=4)[0])
        with self.assertRaisesRegex(ValueError, "`action`"):
            model.compute_loss(
                y={keys.CLICK: CLICK[:4], keys.CONVERSION: CONVERSION[:4]},
                y_pred=outputs,
            )

    def test_contract_serialization_and_saving(self):
        model = self.model(action_label="cart", schema=self.schema("cart"),
                           ctavr_weight=0.5)
        features, _ = self.batch(model.schema, batch_size=16)
        outputs = self.run_output_contract_test(model, features)
        self.assertIn(CTAVR, outputs)
        # CTAVR <= CTR and CTCVR <= CTR hold by construction.
        self.assertTrue(np.all(to_np(outputs[CTAVR]) <= to_np(outputs[keys.CTR])))
        self.assertAllClose(
            outputs[keys.CTCVR],
            to_np(outputs[keys.CTR]) * to_np(outputs[keys.CVR]),
        )
        revived = self.run_serialization_test(model)
        self.assertEqual(revived.action_label, "cart")
        self.run_model_saving_test(model, features)

    def test_fit(self):
        model = self.model(backbone="mmoe",
                           backbone_config=TINY_BACKBONES["mmoe"])
        features, labels = self.batch_with_action(model.schema)
        self.run_fit_test(model, features, labels)

    def test_every_backbone_gives_four_heads(self):
        schema = self.schema()
        features, _ = self.batch(schema, batch_size=8)
        for name in sorted(BACKBONES):
            with self.subTest(backbone=name):
                model = ESM2(schema=schema, embedding_dim=4, backbone=name,
                             backbone_config=TINY_BACKBONES.get(name, {}))
                self.assertEqual(model.backbone.num_tasks, 4)
                self.run_output_contract_test(model, features)

    def test_each_term_reaches_only_its_heads(self):
        if keras.backend.backend() != "tensorflow":
            self.skipTest("uses tf.GradientTape")
        import tensorflow as tf

        model = self.model()
        features, labels = self.batch_with_action(model.schema, 32)
        model.build()
        kernels = [head.kernel for head in model.heads]
        with tf.GradientTape(persistent=True) as tape:
            terms = model.loss_terms(labels, model(features, training=True))

        def reached(term):
            grads = tape.gradient(terms[term], kernels)
            return [g is not None and np.abs(g.numpy()).sum() > 0 for g in grads]

        self.assertEqual(reached("ctr"), [True, False, False, False])
        self.assertEqual(reached("ctavr"), [True, True, False, False])
        self.assertEqual(reached("ctcvr"), [True, True, True, True])

    def test_invalid_weights(self):
        with self.assertRaisesRegex(ValueError, "Received: ctavr_weight"):
            self.model(ctavr_weight=-1.0)

    @pytest.mark.jax
    def test_fit_step_on_current_backend(self):
        model = self.model()
        features, labels = self.batch_with_action(model.schema, 32)
        history = self.run_fit_test(model, features, labels, steps=2)
        self.assertEqual(len(history.history["loss"]), 2)
