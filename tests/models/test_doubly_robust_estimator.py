import numpy as np

from tfcvr.features import keys
from tfcvr.losses import DoublyRobustLoss
from tfcvr.losses import ImputationLoss
from tfcvr.losses import MRDRImputationLoss
from tfcvr.models import DRJL
from tfcvr.models import ESCM2DR
from tfcvr.models import MRDR
from tfcvr.models import MultiDR
from tfcvr.models.doubly_robust_estimator import DoublyRobustEstimator
from tfcvr.testing import TestCase

BASE_ARGUMENTS = {"name", "trainable", "dtype", "schema", "embedding_dim",
                  "backbone", "backbone_config", "embedding_combiner",
                  "embedding_layout", "epsilon"}
DR_ARGUMENTS = {"imputation_weight", "normalization",
                "imputation_normalization", "propensity_floor",
                "stop_gradient_propensity", "stop_gradient_imputation",
                "imputation_target", "alternating", "imputation_steps"}

# Each estimator's own arguments and the papers' defaults of the shared
# ones, as the estimators had them before the base class existed.
FAMILY = {
    MultiDR: ({"ctr_weight", "cvr_weight"},
              {"propensity_floor": 0.01, "alternating": False,
               "imputation_target": "error"}),
    DRJL: ({"ctr_weight", "cvr_weight"},
           {"propensity_floor": 0.01, "alternating": True,
            "imputation_target": "error"}),
    MRDR: ({"ctr_weight", "cvr_weight", "imputation_weighting"},
           {"propensity_floor": 0.01, "alternating": True,
            "imputation_target": "label", "imputation_weighting": "mrdr"}),
    ESCM2DR: ({"ctr_weight", "counterfactual_weight", "global_weight"},
              {"propensity_floor": 1e-6, "alternating": False,
               "imputation_target": "error", "counterfactual_weight": 0.5,
               "global_weight": 0.5}),
}


class DoublyRobustEstimatorTest(TestCase):
    def model(self, cls, **kwargs):
        return cls(schema=self.tiny_schema(), embedding_dim=4,
                   backbone_config={"hidden_units": [4]}, **kwargs)

    def test_config_lists_exactly_the_constructor_arguments(self):
        for cls, (own, defaults) in FAMILY.items():
            with self.subTest(estimator=cls.__name__):
                config = self.model(cls).get_config()
                self.assertEqual(set(config), BASE_ARGUMENTS | DR_ARGUMENTS | own)
                for name, value in defaults.items():
                    self.assertEqual(config[name], value, name)

    def test_shared_arguments_reach_both_losses(self):
        model = self.model(
            ESCM2DR, normalization="snips", imputation_normalization="click",
            propensity_floor=0.05, stop_gradient_propensity=False,
            stop_gradient_imputation=False, imputation_target="label",
        )
        self.assertIsInstance(model.dr_loss, DoublyRobustLoss)
        self.assertIs(type(model.imputation_loss), ImputationLoss)
        dr, imputation = (model.dr_loss.get_config(),
                          model.imputation_loss.get_config())
        self.assertEqual(dr["normalization"], "snips")
        self.assertEqual(imputation["normalization"], "click")
        for config in (dr, imputation):
            self.assertEqual(config["propensity_floor"], 0.05)
            self.assertFalse(config["stop_gradient_propensity"])
            self.assertEqual(config["imputation_target"], "label")
            self.assertEqual(config["epsilon"], model.epsilon)
        self.assertFalse(dr["stop_gradient_imputation"])
        self.assertFalse(imputation["stop_gradient_prediction"])

    def test_subclass_picks_the_imputation_loss(self):
        self.assertIs(type(self.model(MRDR).imputation_loss),
                      MRDRImputationLoss)
        self.assertIs(type(self.model(MRDR, imputation_weighting="dr")
                           .imputation_loss), ImputationLoss)

    def test_dr_risks_read_clicks_conversions_and_three_towers(self):
        model = self.model(MultiDR, propensity_floor=0.1)
        click = np.array([1, 0, 1, 0], "float32")
        conversion = np.array([1, 0, 0, 0], "float32")
        ctr = np.array([[0.5], [0.2], [0.05], [0.9]], "float32")
        cvr = np.array([[0.7], [0.4], [0.2], [0.6]], "float32")
        imputed = np.array([[0.3], [0.1], [0.2], [0.5]], "float32")
        dr, imputation = model.dr_risks(
            {keys.CLICK: click, keys.CONVERSION: conversion},
            {keys.CTR: ctr, keys.CVR: cvr, keys.IMPUTATION: imputed},
        )
        p = np.maximum(ctr[:, 0], 0.1)
        e = -(conversion * np.log(cvr[:, 0])
              + (1 - conversion) * np.log(1 - cvr[:, 0]))
        e_hat = imputed[:, 0]
        self.assertAllClose(dr, e_hat.mean() + (click * (e - e_hat) / p).mean(),
                            atol=1e-6)
        self.assertAllClose(imputation, (click * (e_hat - e) ** 2 / p).mean(),
                            atol=1e-6)

    def test_base_has_no_objective_of_its_own(self):
        model = self.model(DoublyRobustEstimator)
        self.assertEqual(model.tasks, (keys.CTR, keys.CVR, keys.IMPUTATION))
        with self.assertRaisesRegex(TypeError, "loss_terms"):
            model.loss_terms({}, {})

    def test_invalid_shared_arguments(self):
        for cls in FAMILY:
            with self.subTest(estimator=cls.__name__):
                with self.assertRaisesRegex(ValueError, "imputation_weight=-1"):
                    self.model(cls, imputation_weight=-1)
                with self.assertRaisesRegex(ValueError, "imputation_steps=0"):
                    self.model(cls, imputation_steps=0)
                with self.assertRaisesRegex(ValueError,
                                            "propensity_floor=1.5"):
                    self.model(cls, propensity_floor=1.5)
