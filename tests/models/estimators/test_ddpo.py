import keras
import numpy as np
import pytest

from tfcvr.features import keys
from tfcvr.models import DDPO
from tfcvr.testing import EstimatorTestCase
from tfcvr.testing import np_bce

CLICK = np.array([1, 0, 1, 1, 0, 0, 1, 0], "float32")
CONVERSION = np.array([1, 0, 0, 1, 0, 0, 0, 0], "float32")
# Row 2 (clicked) and row 7 (1 - 0.9999995, unclicked) reach the 1e-6
# floor once it is raised; rows 2 and 6 are clicked and unconverted, so
# their CVR target is ĉ.
P_CTR = np.array([0.9, 0.2, 0.004, 0.7, 0.1, 0.3, 0.55, 0.9999995], "float32")
P_CVR = np.array([0.8, 0.5, 0.3, 0.6, 0.2, 0.4, 0.1, 0.7], "float32")
P_CONV = np.array([0.7, 0.05, 0.3, 0.45, 0.15, 0.35, 0.25, 0.6], "float32")

LABELS = {keys.CLICK: CLICK, keys.CONVERSION: CONVERSION}


def outputs(ctr=P_CTR, cvr=P_CVR, conversion_propensity=P_CONV):
    return {keys.CTR: ctr[:, None], keys.CVR: cvr[:, None],
            keys.CTCVR: (ctr * cvr)[:, None],
            keys.CONVERSION_PROPENSITY: conversion_propensity[:, None]}


def np_snips(mask, propensity, floor):
    raw = mask / np.maximum(propensity, floor)
    return raw / raw.sum()


def np_ddpo(ctr_weight=1.0, ctcvr_weight=1.0, conversion_weight=1.0,
            cvr_weight=1.0, unclicked_weight=1.0,
            ips_scaling="snips_batch_mean", propensity_floor=1e-6,
            unclick_propensity_floor=1e-6, soft_click_labels=True):
    """The official `train` loop (TL-UESTC/DDPO, main.py), step by step:
    BCE per row, IPS = 1/max(ô, floor) normalised over the clicks (and
    1/max(1 - ô, floor) over the non-clicks), then `torch.mean`."""
    o, r = CLICK.astype("float64"), CONVERSION.astype("float64")
    ctr, cvr, conv = (a.astype("float64") for a in (P_CTR, P_CVR, P_CONV))
    target = np.minimum(r + conv, 1.0) if soft_click_labels else r
    scale = 1.0 / len(o) if ips_scaling == "snips_batch_mean" else 1.0
    click_ips = np_snips(o, ctr, propensity_floor)
    unclick_ips = np_snips(1 - o, 1 - ctr, unclick_propensity_floor)
    terms = {
        keys.CTR: (ctr_weight, np_bce(o, ctr).mean()),
        keys.CTCVR: (ctcvr_weight, np_bce(o * r, ctr * cvr).mean()),
        keys.CONVERSION_PROPENSITY: (conversion_weight,
                                     (o * np_bce(r, conv)).mean()),
        "cvr_click": (cvr_weight,
                      scale * (click_ips * np_bce(target, cvr)).sum()),
        "cvr_unclick": (cvr_weight * unclicked_weight,
                        scale * (unclick_ips * np_bce(conv, cvr)).sum()),
    }
    return {name: w * value for name, (w, value) in terms.items() if w}


def np_dense(x, layer):
    kernel, bias = (np.asarray(w, "float64") for w in layer.get_weights())
    return x @ kernel + bias


def np_ctm(module, items):
    q_k, k_k, v_k = (np.asarray(module.get_weights()[i], "float64")
                     for i in range(3))
    stacked = np.stack(items, axis=1)
    scores = ((stacked @ q_k) * (stacked @ k_k)).sum(-1) / np.sqrt(
        q_k.shape[1])
    weights = np.exp(scores - scores.max(1, keepdims=True))
    weights /= weights.sum(1, keepdims=True)
    return (weights[..., None] * (stacked @ v_k)).sum(1)


class DDPOTest(EstimatorTestCase):
    estimator = DDPO
    name = "ddpo"
    venue = "SIGIR 2024"

    def test_loss_matches_the_official_training_loop(self):
        cases = [
            {},
            {"ips_scaling": "snips"},
            {"soft_click_labels": False},
            {"unclicked_weight": 0.0},
            {"propensity_floor": 0.01, "unclick_propensity_floor": 0.5},
            {"ips_scaling": "snips", "ctr_weight": 0.5, "ctcvr_weight": 2.0,
             "conversion_weight": 0.0, "cvr_weight": 3.0},
        ]
        for case in cases:
            with self.subTest(**case):
                self.assertLossTermsClose(
                    self.model(**case).loss_terms(LABELS, outputs()),
                    np_ddpo(**case))

    def test_official_scaling_is_snips_over_the_batch(self):
        official = self.model().loss_terms(LABELS, outputs())
        plain = self.model(ips_scaling="snips").loss_terms(LABELS, outputs())
        for name in ("cvr_click", "cvr_unclick"):
            self.assertAllClose(np.asarray(official[name]) * len(CLICK),
                                plain[name], atol=1e-6, rtol=1e-6)

    def output_gradients(self, model, term):
        return super().output_gradients(
            model, LABELS, outputs,
            {keys.CTR: P_CTR, keys.CVR: P_CVR,
             keys.CONVERSION_PROPENSITY: P_CONV}, term)

    def check_stop_gradients(self):
        o, r = CLICK.astype("float64"), CONVERSION.astype("float64")
        cvr, conv = P_CVR.astype("float64"), P_CONV.astype("float64")
        scale = 1.0 / len(o)
        for soft in (True, False):
            target = np.minimum(r + conv, 1.0) if soft else r
            spaces = {
                "cvr_click": (np_snips(o, P_CTR.astype("float64"), 1e-6),
                              target),
                "cvr_unclick": (np_snips(1 - o, 1 - P_CTR.astype("float64"),
                                         1e-6), conv),
            }
            for term, (weights, labels) in spaces.items():
                with self.subTest(term=term, soft_click_labels=soft):
                    grads = self.output_gradients(
                        self.model(soft_click_labels=soft), term)
                    # Pseudo labels and IPS weights are constants.
                    self.assertTrue(np.all(
                        grads[keys.CONVERSION_PROPENSITY] == 0))
                    self.assertTrue(np.all(grads[keys.CTR] == 0))
                    self.assertAllClose(
                        grads[keys.CVR],
                        scale * weights * (cvr - labels) / (cvr * (1 - cvr)),
                        atol=1e-6, rtol=1e-4)
        grads = self.output_gradients(self.model(),
                                      keys.CONVERSION_PROPENSITY)
        self.assertTrue(np.all(grads[keys.CONVERSION_PROPENSITY][o == 0] == 0))
        self.assertTrue(np.all(grads[keys.CONVERSION_PROPENSITY][o == 1] != 0))
        self.check_propensity_gradients(("cvr_click", "cvr_unclick"),
                                        self.output_gradients)

    def test_stop_gradients(self):
        self.check_stop_gradients()

    @pytest.mark.jax
    def test_stop_gradients_on_current_backend(self):
        self.check_stop_gradients()

    def test_causal_transfer_modules_follow_eqs_12_to_14(self):
        model = self.model()
        features, _ = self.batch(model.schema, batch_size=8)
        cvr = np.asarray(model(features)[keys.CVR], "float64")[:, 0]
        x = model.embedding(features)
        f_click, f_cvr, f_conv = (np.asarray(keras.ops.convert_to_numpy(f),
                                             "float64")
                                  for f in model.backbone(x))
        relu = lambda z: np.maximum(z, 0.0)  # noqa: E731
        fused_click = np_ctm(model.click_ctm,
                             [relu(np_dense(f_click, model.click_transfer)),
                              f_cvr])
        fused_conv = np_ctm(
            model.conversion_ctm,
            [relu(np_dense(f_conv, model.conversion_transfer)), f_cvr])
        fused = relu(np_dense(np.concatenate([fused_click, fused_conv], -1),
                              model.fusion))
        expected = 1.0 / (1.0 + np.exp(-np_dense(fused, model.heads[1])[:, 0]))
        self.assertAllClose(cvr, expected, atol=1e-5, rtol=1e-5)

    def test_cvr_reads_the_other_towers_only_through_the_ctms(self):
        features, _ = self.batch(self.tiny_schema(), batch_size=8)
        for transfer in (True, False):
            with self.subTest(causal_transfer=transfer):
                model = self.model(causal_transfer=transfer)
                before = np.asarray(model(features)[keys.CVR])
                for tower in (model.backbone.towers[0],
                              model.backbone.towers[2]):
                    tower.set_weights([w + 0.5 for w in tower.get_weights()])
                after = np.asarray(model(features)[keys.CVR])
                self.assertEqual(bool(np.abs(after - before).max() > 1e-6),
                                 transfer)

    def test_outputs_and_serialization(self):
        for case in ({}, {"causal_transfer": False, "ips_scaling": "snips",
                          "soft_click_labels": False}):
            with self.subTest(**case):
                model = self.model(**case)
                features, _ = self.batch(model.schema, batch_size=16)
                out = self.run_output_contract_test(model, features)
                self.assertEqual(set(out), set(keys.SERVING_OUTPUTS)
                                 | {keys.CONVERSION_PROPENSITY})
                self.assertEqual(model.backbone.num_tasks, 3)
                self.assertEqual(model.click_ctm is not None,
                                 model.causal_transfer)
                revived = self.run_serialization_test(model)
                for name, value in case.items():
                    self.assertEqual(getattr(revived, name), value)

    def test_invalid_arguments(self):
        with self.assertRaisesRegex(ValueError, "ips_scaling='mean'"):
            self.model(ips_scaling="mean")
        with self.assertRaisesRegex(ValueError, "unclicked_weight=-1"):
            self.model(unclicked_weight=-1)
        with self.assertRaisesRegex(ValueError, "propensity_floor=1.0"):
            self.model(propensity_floor=1.0)
        with self.assertRaisesRegex(ValueError, "causal_transfer=1"):
            self.model(causal_transfer=1)
