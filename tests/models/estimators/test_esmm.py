import keras
import numpy as np

from tfcvr.features import keys
from tfcvr.layers.backbones import BACKBONES
from tfcvr.layers.backbones import MMoE
from tfcvr.models import ESMM
from tfcvr.testing import TINY_BACKBONES
from tfcvr.testing import EstimatorTestCase
from tfcvr.testing import np_bce

# Tiny configurations so every backbone trains in a second.
# A fixed batch with hand-made predictions (no model involved).
CLICK = np.array([1, 0, 1, 1, 0, 0, 1, 0], "float32")
CONVERSION = np.array([1, 0, 0, 1, 0, 0, 0, 0], "float32")
P_CTR = np.array([0.9, 0.2, 0.6, 0.7, 0.1, 0.3, 0.55, 0.05], "float32")
P_CVR = np.array([0.8, 0.5, 0.3, 0.6, 0.2, 0.4, 0.1, 0.7], "float32")


def np_esmm_loss(click, conversion, ctr, cvr, w_ctr=1.0, w_ctcvr=1.0):
    """ESMM Eq. 3 with batch means: CTR and CTCVR log losses."""
    return (
        w_ctr * np_bce(click, ctr).mean(),
        w_ctcvr * np_bce(click * conversion, ctr * cvr).mean(),
    )


def to_np(x):
    return keras.ops.convert_to_numpy(x)


class ESMMTest(EstimatorTestCase):
    estimator = ESMM
    name = "esmm"
    venue = "SIGIR 2018"

    def test_loss_matches_numpy_reference(self):
        labels = {keys.CLICK: CLICK, keys.CONVERSION: CONVERSION}
        outputs = {
            keys.CTR: P_CTR[:, None],
            keys.CVR: P_CVR[:, None],
            keys.CTCVR: (P_CTR * P_CVR)[:, None],
        }
        for w_ctr, w_ctcvr in ((1.0, 1.0), (0.3, 2.5)):
            with self.subTest(w_ctr=w_ctr, w_ctcvr=w_ctcvr):
                model = self.model(ctr_weight=w_ctr, ctcvr_weight=w_ctcvr)
                terms = model.loss_terms(labels, outputs)
                ref_ctr, ref_ctcvr = np_esmm_loss(
                    CLICK, CONVERSION, P_CTR, P_CVR, w_ctr, w_ctcvr
                )
                self.assertEqual(set(terms), {"ctr", "ctcvr"})
                self.assertAllClose(terms["ctr"], ref_ctr, atol=1e-5, rtol=1e-5)
                self.assertAllClose(
                    terms["ctcvr"], ref_ctcvr, atol=1e-5, rtol=1e-5
                )
                total = model.compute_loss(y=labels, y_pred=outputs)
                self.assertAllClose(total, ref_ctr + ref_ctcvr, atol=1e-5,
                                    rtol=1e-5)

    def test_loss_is_finite_at_saturated_probabilities(self):
        model = self.model()
        labels = {keys.CLICK: np.array([0.0, 1.0], "float32"),
                  keys.CONVERSION: np.array([0.0, 1.0], "float32")}
        outputs = {keys.CTR: np.array([[1.0], [0.0]], "float32"),
                   keys.CVR: np.array([[1.0], [0.0]], "float32"),
                   keys.CTCVR: np.array([[1.0], [0.0]], "float32")}
        terms = model.loss_terms(labels, outputs)
        for value in terms.values():
            self.assertTrue(np.isfinite(to_np(value)))
            self.assertGreater(float(to_np(value)), 10.0)

    def test_output_contract(self):
        model = self.model()
        features, _ = self.batch(model.schema, batch_size=16)
        outputs = self.run_output_contract_test(model, features)
        self.assertEqual(set(outputs), set(keys.SERVING_OUTPUTS))
        self.assertAllClose(
            outputs[keys.CTCVR], to_np(outputs[keys.CTR]) * to_np(outputs[keys.CVR])
        )

    def test_serialization_with_named_and_instance_backbones(self):
        self.run_serialization_test(self.model(ctr_weight=0.5))
        model = ESMM(
            schema=self.tiny_schema(),
            embedding_dim=4,
            backbone=MMoE(num_tasks=2, num_experts=2, expert_units=[4]),
        )
        config = model.get_config()
        revived = ESMM.from_config(config)
        self.assertEqual(config, revived.get_config())
        self.assertIsInstance(revived.backbone, MMoE)
        self.assertEqual(revived.backbone.num_experts, 2)
        features, _ = self.batch(model.schema, batch_size=4)
        self.run_model_saving_test(model, features)

    def check_backbone(self, name):
        schema = self.tiny_schema()
        features, labels = self.batch(schema, batch_size=48)
        model = ESMM(schema=schema, embedding_dim=4, backbone=name,
                     backbone_config=TINY_BACKBONES.get(name, {}))
        self.assertIs(type(model.backbone), BACKBONES[name])
        self.run_output_contract_test(model, features)
        self.run_fit_test(model, features, labels)
        restored = self.run_model_saving_test(model, features)
        self.assertIs(type(restored.backbone), BACKBONES[name])

    def test_fit_and_save_load(self):
        # The default model is the towers one (TINY_BACKBONES' config): the
        # base check and the backbone check, on one traced fit.
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

    def test_gradients_follow_esmm(self):
        if keras.backend.backend() != "tensorflow":
            self.skipTest("uses tf.GradientTape")
        import tensorflow as tf

        model = self.model()
        features, labels = self.batch(model.schema, batch_size=32)
        model.build()
        cvr_kernel = model.heads[1].kernel
        ctr_kernel = model.heads[0].kernel
        with tf.GradientTape(persistent=True) as tape:
            outputs = model(features, training=True)
            terms = model.loss_terms(labels, outputs)
        # pCVR has no direct supervision: only the CTCVR term reaches it,
        # and the CTCVR term also trains the CTR head (no stop-gradient).
        self.assertIsNone(tape.gradient(terms["ctr"], cvr_kernel))
        self.assertGreater(
            np.abs(tape.gradient(terms["ctcvr"], cvr_kernel).numpy()).sum(), 0
        )
        self.assertGreater(
            np.abs(tape.gradient(terms["ctcvr"], ctr_kernel).numpy()).sum(), 0
        )

    def test_invalid_weights(self):
        with self.assertRaisesRegex(ValueError, "Received: ctcvr_weight=-1"):
            self.model(ctcvr_weight=-1)
