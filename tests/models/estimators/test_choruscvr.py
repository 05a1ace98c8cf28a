import numpy as np
import pytest

from tfcvr.features import keys
from tfcvr.models import ChorusCVR
from tfcvr.testing import EstimatorTestCase
from tfcvr.testing import np_bce

CLICK = np.array([1, 0, 1, 1, 0, 0, 1, 0], "float32")
CONVERSION = np.array([1, 0, 0, 1, 0, 0, 0, 0], "float32")
# 0.004 (a click) and 1 - 0.996 (a non-click) sit below the 0.01 floors.
P_CTR = np.array([0.9, 0.2, 0.004, 0.7, 0.1, 0.3, 0.55, 0.996], "float32")
P_CVR = np.array([0.8, 0.5, 0.3, 0.6, 0.2, 0.4, 0.1, 0.7], "float32")
P_UNCVR = np.array([0.15, 0.6, 0.65, 0.3, 0.7, 0.55, 0.85, 0.2], "float32")

LABELS = {keys.CLICK: CLICK, keys.CONVERSION: CONVERSION}
WEIGHT_NAMES = ("ctcvr_weight", "cvr_weight", "ctuncvr_weight",
                "uncvr_weight", "align_weight", "ctr_weight")


def outputs(ctr=P_CTR, cvr=P_CVR, uncvr=P_UNCVR):
    return {keys.CTR: ctr[:, None], keys.CVR: cvr[:, None],
            keys.UNCVR: uncvr[:, None], keys.CTCVR: (ctr * cvr)[:, None],
            keys.CTUNCVR: (ctr * uncvr)[:, None]}


def np_sam_weights(sam, normalization, floor, unclick_floor):
    """(click-space, unclick-space) SAM weights of each reading, §10."""
    o = CLICK.astype("float64")
    ctr = P_CTR.astype("float64")
    if sam == "multiplicative":
        return ctr / o.sum(), (1 - ctr) / (1 - o).sum()
    return (np_inverse(o, ctr, floor, normalization),
            np_inverse(1 - o, 1 - ctr, unclick_floor, normalization))


def np_inverse(mask, p, floor, normalization):
    raw = mask / np.clip(p, floor, 1.0)
    return raw / {"exposure": len(mask), "click": mask.sum(),
                  "snips": raw.sum()}[normalization]


def np_choruscvr(ctcvr_weight=1.0, cvr_weight=1.0, ctuncvr_weight=1.0,
                 uncvr_weight=1.0, align_weight=1.0, ctr_weight=0.0,
                 sam_weighting="inverse", click_space_alignment=True,
                 normalization="click", propensity_floor=0.01,
                 unclick_propensity_floor=0.01):
    """ChorusCVR's terms (estimators.md §10), zero-weight terms absent."""
    o, r = CLICK.astype("float64"), CONVERSION.astype("float64")
    ctr, cvr, uncvr = (a.astype("float64") for a in (P_CTR, P_CVR, P_UNCVR))
    ipw = np_inverse(o, ctr, propensity_floor, normalization)
    mutual = np_bce(1 - uncvr, cvr) + np_bce(1 - cvr, uncvr)
    a, b = np_sam_weights(sam_weighting, normalization, propensity_floor,
                          unclick_propensity_floor)
    terms = {
        keys.CTCVR: (ctcvr_weight, np_bce(o * r, ctr * cvr).mean()),
        "cvr_ipw": (cvr_weight, (ipw * np_bce(r, cvr)).sum()),
        keys.CTUNCVR: (ctuncvr_weight,
                       np_bce(o * (1 - r), ctr * uncvr).mean()),
        "uncvr_ipw": (uncvr_weight, (ipw * np_bce(1 - r, uncvr)).sum()),
        keys.CTR: (ctr_weight, np_bce(o, ctr).mean()),
        "align_unclick": (align_weight, (b * mutual).sum()),
        "align_click": (align_weight if click_space_alignment else 0.0,
                        (a * mutual).sum()),
    }
    return {name: w * value for name, (w, value) in terms.items() if w}


READING_B = dict(sam_weighting="multiplicative", ctr_weight=1.0,
                 cvr_weight=0.0, uncvr_weight=0.0, ctuncvr_weight=0.5,
                 align_weight=0.5)


class ChorusCVRTest(EstimatorTestCase):
    estimator = ChorusCVR
    name = "choruscvr"
    venue = "WSDM 2026"

    def test_paper_string_says_reconstructed(self):
        self.assertIn("reconstructed", ChorusCVR.paper)
        self.assertIn("reconstructed", ChorusCVR.__doc__.lower())

    def test_loss_matches_numpy_reference(self):
        cases = [
            {},
            {"click_space_alignment": False},
            {"sam_weighting": "multiplicative"},
            {"sam_weighting": "multiplicative",
             "click_space_alignment": False},
            {"ctr_weight": 1.0},
            {"align_weight": 0.0},
            {"align_weight": 0.3, "normalization": "exposure"},
            {"normalization": "snips", "propensity_floor": 0.1,
             "unclick_propensity_floor": 0.001},
            {"ctcvr_weight": 0.5, "cvr_weight": 2.0, "ctuncvr_weight": 0.0,
             "uncvr_weight": 0.7},
            READING_B,
        ]
        for case in cases:
            with self.subTest(**case):
                self.assertLossTermsClose(
                    self.model(**case).loss_terms(LABELS, outputs()),
                    np_choruscvr(**case))

    def test_reading_b_total(self):
        """Reading B's objective: e(o, ô) + e(o r, ô r̂) + λ (L_ctuncvr +
        four alignment terms over all rows, weights sg(ô)/|O| and
        (1 - sg(ô))/|N|)."""
        lam = READING_B["align_weight"]
        o, r = CLICK.astype("float64"), CONVERSION.astype("float64")
        ctr, cvr, uncvr = (a.astype("float64") for a in (P_CTR, P_CVR, P_UNCVR))
        align = sum(
            (w * (np_bce(1 - uncvr, cvr) + np_bce(1 - cvr, uncvr))).sum()
            for w in (ctr / o.sum(), (1 - ctr) / (1 - o).sum()))
        expected = (np_bce(o, ctr).mean() + np_bce(o * r, ctr * cvr).mean()
                    + lam * (np_bce(o * (1 - r), ctr * uncvr).mean() + align))
        model = self.model(**READING_B)
        self.assertAllClose(model.compute_loss(y=LABELS, y_pred=outputs()),
                            expected, atol=1e-5, rtol=1e-5)

    def test_zero_align_weight_disables_sam_exactly(self):
        for sam in ("inverse", "multiplicative"):
            with self.subTest(sam=sam):
                on = self.model(sam_weighting=sam).loss_terms(
                    LABELS, outputs())
                off_model = self.model(sam_weighting=sam, align_weight=0.0)
                off = off_model.loss_terms(LABELS, outputs())
                self.assertEqual(
                    set(off), set(on) - {"align_click", "align_unclick"})
                for name, value in off.items():
                    np.testing.assert_array_equal(np.asarray(value),
                                                  np.asarray(on[name]))
                self.assertAllClose(
                    off_model.compute_loss(y=LABELS, y_pred=outputs()),
                    sum(np_choruscvr(sam_weighting=sam,
                                     align_weight=0.0).values()),
                    atol=1e-5, rtol=1e-5)

    def output_gradients(self, model, term=None):
        return super().output_gradients(
            model, LABELS, outputs,
            {keys.CTR: P_CTR, keys.CVR: P_CVR, keys.UNCVR: P_UNCVR}, term)

    def check_stop_gradients(self):
        only_sam = {name: 0.0 for name in WEIGHT_NAMES}
        for sam in ("inverse", "multiplicative"):
            a, b = np_sam_weights(sam, "click", 0.01, 0.01)
            for space, w in (("align_click", a), ("align_unclick", b)):
                with self.subTest(sam=sam, space=space):
                    model = self.model(sam_weighting=sam, **dict(
                        only_sam, align_weight=1.0))
                    grads = self.output_gradients(model, space)
                    # Soft labels are constants: each tower's gradient is
                    # that of its own BCE against the other's complement.
                    cvr, uncvr = P_CVR.astype("float64"), P_UNCVR.astype(
                        "float64")
                    self.assertAllClose(
                        grads[keys.CVR],
                        w * (cvr - (1 - uncvr)) / (cvr * (1 - cvr)),
                        atol=1e-5, rtol=1e-4)
                    self.assertAllClose(
                        grads[keys.UNCVR],
                        w * (uncvr - (1 - cvr)) / (uncvr * (1 - uncvr)),
                        atol=1e-5, rtol=1e-4)
                    # The propensity weights are constants too.
                    self.assertTrue(np.all(grads[keys.CTR] == 0))
        self.check_propensity_gradients(
            ("cvr_ipw", "uncvr_ipw", "align_click", "align_unclick"),
            self.output_gradients)

    def test_stop_gradients(self):
        self.check_stop_gradients()

    @pytest.mark.jax
    def test_stop_gradients_on_current_backend(self):
        self.check_stop_gradients()

    def test_outputs_and_serialization(self):
        model = self.model(**READING_B)
        features, _ = self.batch(model.schema, batch_size=16)
        out = self.run_output_contract_test(model, features)
        self.assertEqual(set(out), set(keys.SERVING_OUTPUTS)
                         | {keys.UNCVR, keys.CTUNCVR})
        self.assertEqual(model.backbone.num_tasks, 3)
        self.assertAllClose(out[keys.CTUNCVR],
                            np.asarray(out[keys.CTR]) * np.asarray(
                                out[keys.UNCVR]))
        revived = self.run_serialization_test(model)
        self.assertEqual(revived.sam_weighting, "multiplicative")

    def test_paper_network_is_a_shared_bottom(self):
        model = self.model(backbone="shared_bottom", backbone_config={
            "bottom_units": [8], "tower_units": [4]})
        features, labels = self.batch(model.schema, batch_size=16)
        out = self.run_output_contract_test(model, features)
        self.assertEqual(type(model.backbone).__name__, "SharedBottom")
        terms = model.loss_terms(labels, out)
        self.assertTrue(all(np.isfinite(np.asarray(v)) for v in terms.values()))

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "sam_weighting='B'"):
            self.model(sam_weighting="B")
        with self.assertRaisesRegex(ValueError, "align_weight=-1"):
            self.model(align_weight=-1)
        with self.assertRaisesRegex(ValueError, "normalization='batch'"):
            self.model(normalization="batch")
        with self.assertRaisesRegex(ValueError, "propensity_floor=0"):
            self.model(propensity_floor=0)
        with self.assertRaisesRegex(ValueError,
                                    "click_space_alignment='no'"):
            self.model(click_space_alignment="no")
