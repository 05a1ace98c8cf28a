import keras
import numpy as np
import pytest

from tfcvr.features import keys
from tfcvr.layers.backbones import BACKBONES
from tfcvr.models import NaiveCVR
from tfcvr.testing import TINY_BACKBONES
from tfcvr.testing import EstimatorTestCase
from tfcvr.testing import np_bce

CLICK = np.array([1, 0, 1, 1, 0, 0, 1, 0], "float32")
CONVERSION = np.array([1, 0, 0, 1, 0, 0, 0, 0], "float32")
P_CTR = np.array([0.9, 0.2, 0.6, 0.7, 0.1, 0.3, 0.55, 0.05], "float32")
P_CVR = np.array([0.8, 0.5, 0.3, 0.6, 0.2, 0.4, 0.1, 0.7], "float32")


def np_naive_loss(click, conversion, ctr, cvr, normalization, w_ctr=1.0,
                  w_cvr=1.0):
    """ESCM2 Eq. 3 (divide by |O|) or NISE's MMoE baseline (divide by |D|)."""
    clicked_errors = (click * np_bce(conversion, cvr)).sum()
    if normalization == "click":
        cvr_loss = clicked_errors / max(click.sum(), 1.0)
    else:
        cvr_loss = clicked_errors / len(click)
    return w_ctr * np_bce(click, ctr).mean(), w_cvr * cvr_loss


def to_np(x):
    return keras.ops.convert_to_numpy(x)


def outputs_for(ctr, cvr):
    return {keys.CTR: ctr[:, None], keys.CVR: cvr[:, None],
            keys.CTCVR: (ctr * cvr)[:, None]}


class NaiveCVRTest(EstimatorTestCase):
    estimator = NaiveCVR
    name = "naive"

    def test_loss_matches_numpy_reference_for_both_normalizations(self):
        labels = {keys.CLICK: CLICK, keys.CONVERSION: CONVERSION}
        outputs = outputs_for(P_CTR, P_CVR)
        for normalization in ("click", "exposure"):
            for w_ctr, w_cvr in ((1.0, 1.0), (0.4, 3.0)):
                with self.subTest(normalization=normalization, w_cvr=w_cvr):
                    model = self.model(cvr_normalization=normalization,
                                       ctr_weight=w_ctr, cvr_weight=w_cvr)
                    terms = model.loss_terms(labels, outputs)
                    ref_ctr, ref_cvr = np_naive_loss(
                        CLICK, CONVERSION, P_CTR, P_CVR, normalization,
                        w_ctr, w_cvr,
                    )
                    self.assertEqual(set(terms), {"ctr", "cvr"})
                    self.assertAllClose(terms["ctr"], ref_ctr, atol=1e-5,
                                        rtol=1e-5)
                    self.assertAllClose(terms["cvr"], ref_cvr, atol=1e-5,
                                        rtol=1e-5)
                    self.assertAllClose(
                        model.compute_loss(y=labels, y_pred=outputs),
                        ref_ctr + ref_cvr, atol=1e-5, rtol=1e-5,
                    )
        # The two normalisations differ by |D| / |O| = 8 / 4 on this batch.
        click_terms = self.model().loss_terms(labels, outputs)
        exposure_terms = self.model(cvr_normalization="exposure").loss_terms(
            labels, outputs
        )
        self.assertAllClose(
            to_np(click_terms["cvr"]) / to_np(exposure_terms["cvr"]), 2.0,
            rtol=1e-5,
        )

    def test_unclicked_rows_do_not_count(self):
        labels = {keys.CLICK: CLICK, keys.CONVERSION: CONVERSION}
        changed = np.where(CLICK == 1, P_CVR, 1.0 - P_CVR).astype("float32")
        for normalization in ("click", "exposure"):
            model = self.model(cvr_normalization=normalization)
            a = model.loss_terms(labels, outputs_for(P_CTR, P_CVR))["cvr"]
            b = model.loss_terms(labels, outputs_for(P_CTR, changed))["cvr"]
            self.assertAllClose(a, b, atol=1e-6)
        no_clicks = {keys.CLICK: np.zeros(8, "float32"),
                     keys.CONVERSION: np.zeros(8, "float32")}
        for normalization in ("click", "exposure"):
            model = self.model(cvr_normalization=normalization)
            terms = model.loss_terms(no_clicks, outputs_for(P_CTR, P_CVR))
            self.assertAllClose(terms["cvr"], 0.0)

    def test_output_contract_and_serialization(self):
        model = self.model(cvr_normalization="exposure", cvr_weight=0.5)
        features, _ = self.batch(model.schema, batch_size=16)
        outputs = self.run_output_contract_test(model, features)
        self.assertAllClose(
            outputs[keys.CTCVR],
            to_np(outputs[keys.CTR]) * to_np(outputs[keys.CVR]),
        )
        revived = self.run_serialization_test(model)
        self.assertEqual(revived.cvr_normalization, "exposure")
        restored = self.run_model_saving_test(model, features)
        self.assertEqual(restored.cvr_weight, 0.5)

    def check_backbone(self, name):
        schema = self.tiny_schema()
        features, labels = self.batch(schema, batch_size=48)
        model = NaiveCVR(schema=schema, embedding_dim=4, backbone=name,
                         backbone_config=TINY_BACKBONES.get(name, {}))
        self.assertIs(type(model.backbone), BACKBONES[name])
        self.run_output_contract_test(model, features)
        # Eager, one batch an epoch: ESMM's backbone tests fit the same
        # backbones traced, for steps; this is NaiveCVR's loss on each.
        self.run_fit_test(model, features, labels, steps=1, run_eagerly=True)

    def test_on_towers(self):
        self.check_backbone("towers")

    def test_on_shared_bottom(self):
        self.check_backbone("shared_bottom")

    def test_on_mmoe(self):
        self.check_backbone("mmoe")

    def test_on_ple(self):
        self.check_backbone("ple")

    def test_on_dcn_v2(self):
        self.check_backbone("dcn_v2")

    def test_on_any_other_registered_backbone(self):
        for name in sorted(set(BACKBONES) - set(TINY_BACKBONES)):
            with self.subTest(backbone=name):
                self.check_backbone(name)

    def test_heads_learn_from_their_own_term_only(self):
        if keras.backend.backend() != "tensorflow":
            self.skipTest("uses tf.GradientTape")
        import tensorflow as tf

        model = self.model()
        features, labels = self.batch(model.schema, batch_size=32)
        model.build()
        ctr_kernel, cvr_kernel = model.heads[0].kernel, model.heads[1].kernel
        no_clicks = dict(labels, **{keys.CLICK: np.zeros(32, "float32")})
        with tf.GradientTape(persistent=True) as tape:
            outputs = model(features, training=True)
            terms = model.loss_terms(labels, outputs)
            unclicked = model.loss_terms(no_clicks, outputs)
        self.assertIsNone(tape.gradient(terms["cvr"], ctr_kernel))
        self.assertIsNone(tape.gradient(terms["ctr"], cvr_kernel))
        self.assertGreater(
            np.abs(tape.gradient(terms["cvr"], cvr_kernel).numpy()).sum(), 0
        )
        self.assertEqual(
            np.abs(tape.gradient(unclicked["cvr"], cvr_kernel).numpy()).sum(), 0
        )

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "Received: cvr_normalization"):
            self.model(cvr_normalization="snips")
        with self.assertRaisesRegex(ValueError, "Received: cvr_weight"):
            self.model(cvr_weight=-0.5)

    @pytest.mark.jax
    def test_fit_step_on_current_backend(self):
        model = self.model(cvr_normalization="exposure")
        features, labels = self.batch(model.schema, batch_size=32)
        history = self.run_fit_test(model, features, labels, steps=2)
        self.assertEqual(len(history.history["loss"]), 2)
