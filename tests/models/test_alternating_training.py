import os
import tempfile

import keras
import numpy as np
import pytest

from tfcvr.features import keys
from tfcvr.models import DRJL
from tfcvr.models import MultiDR
from tfcvr.models.alternating_training import IMPUTATION_TERM
from tfcvr.testing import TestCase

TINY = {"hidden_units": [8]}
LEARNING_RATE = 0.05


def phase_gradients(model, variables, features, labels, imputation):
    """Gradients of the imputation terms (or of all the others) with
    respect to `variables`, computed directly on the backend."""

    def select(terms):
        return sum(
            value for name, value in terms.items()
            if (name == IMPUTATION_TERM) == imputation
        )

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = select(model.loss_terms(labels, model(features,
                                                          training=True)))
        return tape.gradient(loss, variables)
    import jax

    trainable = [v.value for v in model.trainable_variables]
    frozen = [v.value for v in model.non_trainable_variables]
    wanted = {id(v) for v in variables}
    index = [i for i, v in enumerate(model.trainable_variables)
             if id(v) in wanted]

    def loss_fn(values):
        full = list(trainable)
        for i, value in zip(index, values):
            full[i] = value
        outputs, _ = model.stateless_call(full, frozen, features,
                                          training=True)
        return select(model.loss_terms(labels, outputs))

    grads = jax.grad(loss_fn)([trainable[i] for i in index])
    by_id = {id(model.trainable_variables[i]): g for i, g in zip(index, grads)}
    return [by_id[id(v)] for v in variables]


def reference_alternating_training(model, features, labels, batch_size):
    """DR-JL by hand: two independent Adam optimizers on disjoint variable
    lists, one imputation step then one prediction step per batch."""
    imputation, prediction = model.alternating_variable_groups()
    optimizers = [keras.optimizers.Adam(LEARNING_RATE),
                  keras.optimizers.Adam(LEARNING_RATE)]
    size = len(labels[keys.CLICK])
    for start in range(0, size, batch_size):
        x = {k: v[start:start + batch_size] for k, v in features.items()}
        y = {k: v[start:start + batch_size] for k, v in labels.items()}
        for optimizer, variables, is_imputation in (
            (optimizers[0], imputation, True),
            (optimizers[1], prediction, False),
        ):
            grads = phase_gradients(model, variables, x, y, is_imputation)
            optimizer.apply(grads, variables)


class AlternatingTrainingTest(TestCase):
    def model(self, cls=DRJL, **kwargs):
        kwargs.setdefault("backbone_config", TINY)
        return cls(schema=self.tiny_schema(), embedding_dim=4, **kwargs)

    def data(self, batch_size=48):
        schema = self.tiny_schema()
        features, labels = self.batch(schema, batch_size=batch_size, seed=3)
        return features, {k: labels[k] for k in schema.labels}

    def test_groups_are_the_imputation_head_and_its_own_backbone_parts(self):
        model = self.model()
        imputation, prediction = model.alternating_variable_groups()
        task = model.tasks.index(keys.IMPUTATION)
        expected = (list(model.backbone.towers[task].trainable_variables)
                    + list(model.heads[task].trainable_variables))
        self.assertEqual({id(v) for v in imputation},
                         {id(v) for v in expected})
        self.assertEqual(len(imputation) + len(prediction),
                         len(model.trainable_variables))
        # MMoE: the imputation gate and tower are its own, experts shared.
        model = self.model(backbone="mmoe", backbone_config={
            "num_experts": 2, "expert_units": [4], "tower_units": [4]})
        names = sorted(v.path.split("/", 1)[1]
                       for v in model.alternating_variable_groups()[0])
        self.assertTrue(all(("gate_2" in n or "tower_2" in n
                             or "imputation_logit" in n) for n in names),
                        names)
        self.assertTrue(any("gate_2" in n for n in names), names)
        self.assertFalse(any("expert" in n for n in names), names)

    def run_equivalence_check(self):
        features, labels = self.data()
        model = self.model()
        model.build()
        initial = model.get_weights()
        model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
        model.fit(features, labels, batch_size=16, epochs=1, shuffle=False,
                  verbose=0)
        self.assertEqual(int(keras.ops.convert_to_numpy(
            model.optimizer.iterations)), 3)

        reference = self.model()
        reference.build()
        reference.set_weights(initial)
        reference_alternating_training(reference, features, labels, 16)

        imputation, prediction = model.alternating_variable_groups()
        ref_imputation, ref_prediction = reference.alternating_variable_groups()
        for group, ref_group in ((imputation, ref_imputation),
                                 (prediction, ref_prediction)):
            moved = False
            for v, ref_v, v0 in zip(group, ref_group, [
                initial[i] for i, w in enumerate(model.weights)
                if id(w) in {id(x) for x in group}
            ]):
                self.assertAllClose(v, ref_v, atol=1e-5, rtol=1e-4,
                                    msg=v.path)
                moved = moved or not np.allclose(
                    keras.ops.convert_to_numpy(v), v0)
            self.assertTrue(moved)

    def test_fit_equals_two_adams_on_disjoint_variables(self):
        self.run_equivalence_check()

    @pytest.mark.jax
    def test_fit_equals_two_adams_on_current_backend(self):
        self.run_equivalence_check()

    def test_joint_training_when_not_alternating(self):
        features, labels = self.data()
        model = self.model(alternating=False)
        model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
        model.fit(features, labels, batch_size=16, epochs=1, verbose=0)
        self.assertEqual(int(keras.ops.convert_to_numpy(
            model.optimizer.iterations)), 3)

    def test_several_imputation_steps(self):
        features, labels = self.data()
        model = self.model(cls=MultiDR, alternating=True, imputation_steps=3)
        history = self.run_fit_test(model, features, labels)
        self.assertEqual(len(history.history["loss"]), 2)

    def test_save_load_keeps_optimizer_state_and_trains_on(self):
        features, labels = self.data()
        model = self.model()
        model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
        model.fit(features, labels, batch_size=16, epochs=1, verbose=0)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            model.save(path)
            restored = keras.models.load_model(path)
        self.assertIsInstance(restored, DRJL)
        self.assertTrue(restored.alternating)
        self.assertEqual(
            [keras.ops.convert_to_numpy(v).tolist()
             for v in restored.optimizer.variables],
            [keras.ops.convert_to_numpy(v).tolist()
             for v in model.optimizer.variables],
        )
        history = restored.fit(features, labels, batch_size=16, epochs=1,
                               verbose=0)
        self.assertTrue(np.isfinite(history.history["loss"][0]))
        self.assertEqual(int(keras.ops.convert_to_numpy(
            restored.optimizer.iterations)), 6)

    def test_invalid_schedule(self):
        with self.assertRaisesRegex(ValueError, "imputation_steps=0"):
            self.model(imputation_steps=0)
        with self.assertRaisesRegex(ValueError, "alternating='yes'"):
            self.model(alternating="yes")
