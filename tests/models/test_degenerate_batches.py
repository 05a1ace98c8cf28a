"""Batches without clicks, without non-clicks or without conversions, and
saturated predictions, give every registered estimator a finite objective
and finite gradients (a batch normaliser of 0 must never reach a division).
"""

import numpy as np
import pytest
from keras import ops

from tfcvr.features import keys
from tfcvr.models import ESTIMATORS
from tfcvr.testing import TestCase
from tfcvr.testing.gradients import backend_value_and_gradients

BATCH = 8
LABEL_CASES = {
    "no clicks": (np.zeros(BATCH), np.zeros(BATCH)),
    "all clicked, none converted": (np.ones(BATCH), np.zeros(BATCH)),
    "all clicked and converted": (np.ones(BATCH), np.ones(BATCH)),
    "clicks, no conversion": (np.arange(BATCH) % 2, np.zeros(BATCH)),
}


class DegenerateBatchTest(TestCase):
    def check_every_estimator(self):
        # ESM2 reads a post-click action label; it changes no feature.
        schema = self.tiny_schema()
        schema = schema.replace(labels=schema.labels + (keys.ACTION,))
        features, _ = self.batch(schema, batch_size=BATCH)
        for name, estimator in sorted(ESTIMATORS.items()):
            model = estimator(schema=schema, embedding_dim=4,
                              backbone_config={"hidden_units": [8]})
            predicted = {k: ops.convert_to_numpy(v)
                         for k, v in model(features).items()}
            names = sorted(predicted)
            # Saturated: every output exactly 0 on the first half of the
            # rows and exactly 1 on the second.
            extremes = (np.arange(BATCH) >= BATCH // 2).astype("float32")
            for saturated in (False, True):
                y_pred = {k: np.broadcast_to(extremes[:, None], v.shape)
                          .copy() if saturated else v
                          for k, v in predicted.items()}
                for case, (click, conversion) in LABEL_CASES.items():
                    labels = {keys.CLICK: click.astype("float32"),
                              keys.CONVERSION: conversion.astype("float32"),
                              keys.ACTION: click.astype("float32")}

                    def loss(*values):
                        return model.compute_loss(
                            y=labels, y_pred=dict(zip(names, values)))

                    with self.subTest(estimator=name, labels=case,
                                      saturated=saturated):
                        value, grads = backend_value_and_gradients(
                            loss, *[y_pred[k] for k in names])
                        self.assertTrue(np.isfinite(value), value)
                        for key, grad in zip(names, grads):
                            self.assertTrue(np.all(np.isfinite(grad)), key)

    def test_finite_objective_and_gradients(self):
        self.check_every_estimator()

    @pytest.mark.jax
    def test_finite_objective_and_gradients_on_current_backend(self):
        self.check_every_estimator()
