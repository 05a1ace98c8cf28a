"""Alternating imputation / prediction updates inside `train_step`."""

import contextlib

import keras
import numpy as np
from keras import ops

from tfcvr.features import keys

# Name of the loss term(s) that train the imputation model.
IMPUTATION_TERM = "imputation"
IMPUTATION_PHASE = "imputation"
PREDICTION_PHASE = "prediction"


def check_alternating(alternating, imputation_steps):
    """Validates the schedule arguments of an alternating estimator."""
    if not isinstance(alternating, bool):
        raise ValueError(
            f"alternating must be True or False. Received: "
            f"alternating={alternating!r}"
        )
    if (
        isinstance(imputation_steps, bool)
        or not isinstance(imputation_steps, int)
        or imputation_steps < 1
    ):
        raise ValueError(
            "imputation_steps must be an int >= 1. Received: "
            f"imputation_steps={imputation_steps!r}"
        )


class AlternatingTraining:
    """Mixin for a `CVRModel` with an imputation task: DR-JL's alternating
    updates done inside `train_step`, so plain `compile` + `fit` train it.

    With `self.alternating` True every batch takes `self.imputation_steps`
    gradient steps on the imputation parameters φ with the loss terms named
    in `imputation_terms`, then one step on the prediction parameters θ with
    all other terms, each on a fresh forward pass (Wang et al., ICML 2019,
    Alg. 1; ESCM2's appendix). φ is the imputation head plus every backbone
    weight that only the imputation representation depends on (its tower,
    its MMoE gate, ...); θ is everything else (embeddings, shared experts,
    CTR and CVR towers and heads). One compiled optimizer serves both: a
    step updates only its own variables and their slots, so Adam's moments
    never move frozen variables, and only the prediction step advances
    `optimizer.iterations`, so both groups see the batch count as their
    step. Runs on the TensorFlow and JAX backends. The logged `loss` is the
    sum of the steps' losses; batch-norm statistics update on each forward
    pass and `global_clipnorm` clips each step's gradients on their own.
    With `alternating` False training is the usual single step on the sum
    of all terms.

    The class mixing it in (before `CVRModel`) sets `alternating` and
    `imputation_steps` and has `keys.IMPUTATION` in its `tasks`.
    """

    imputation_terms = (IMPUTATION_TERM,)
    _update_phase = None
    _imputation_variable_ids = None

    # === Variable groups ===

    def alternating_variable_groups(self):
        """`(imputation_variables, prediction_variables)`: a split of
        `trainable_variables` into φ and θ."""
        if not self.built:
            self.build()
        if self._imputation_variable_ids is None:
            task = self.tasks.index(keys.IMPUTATION)
            own = list(self.heads[task].trainable_variables)
            own += self._backbone_variables_only_for(task)
            self._imputation_variable_ids = tuple(id(v) for v in own)
        own = set(self._imputation_variable_ids)
        imputation = [v for v in self.trainable_variables if id(v) in own]
        prediction = [v for v in self.trainable_variables if id(v) not in own]
        return imputation, prediction

    def _backbone_variables_only_for(self, task):
        """Backbone weights that move representation `task` and no other,
        found by perturbing each weight once (backbones have no common API
        naming their task-specific parts)."""
        backbone = self.backbone
        weights = list(backbone.trainable_variables)
        if not weights:
            return []
        width = ops.shape(self.embedding(self.dummy_inputs(1)))[-1]
        rng = np.random.default_rng(0)
        x = ops.convert_to_tensor(rng.normal(size=(8, width)), "float32")
        values = [v.value for v in weights]
        frozen = [v.value for v in backbone.non_trainable_variables]

        def representations(trainable_values):
            reps, _ = backbone.stateless_call(
                trainable_values, frozen, x, training=False
            )
            return [ops.convert_to_numpy(r) for r in reps]

        reference = representations(values)
        only_task = []
        for i, weight in enumerate(weights):
            moved = list(values)
            noise = rng.normal(size=tuple(weight.shape))
            moved[i] = values[i] + ops.cast(noise, weight.dtype)
            changed = [
                not np.array_equal(a, b)
                for a, b in zip(representations(moved), reference)
            ]
            if changed[task] and sum(changed) == 1:
                only_task.append(weight)
        return only_task

    def make_train_function(self, force=False):
        if self.alternating:
            self.alternating_variable_groups()
        return super().make_train_function(force=force)

    # === Objective of one phase ===

    @contextlib.contextmanager
    def _loss_phase(self, phase):
        self._update_phase = phase
        try:
            yield
        finally:
            self._update_phase = None

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        phase = self._update_phase
        if phase is None or not isinstance(y, dict) or keys.CLICK not in y:
            return super().compute_loss(
                x, y, y_pred, sample_weight, training=training
            )
        terms = self.objective_terms(y, y_pred)
        # Each group's regularisers only have gradients on that group, so
        # total_loss may add all of them.
        return self.total_loss(
            {
                name: value
                for name, value in terms.items()
                if (name in self.imputation_terms) == (phase == IMPUTATION_PHASE)
            },
            # A batch's labels count once, in its prediction step.
            labels=y if training and phase == PREDICTION_PHASE else None,
        )

    def _phases(self):
        return [IMPUTATION_PHASE] * self.imputation_steps + [PREDICTION_PHASE]

    def _apply_phase(self, grads, variables, phase):
        """One optimizer step on `variables` only; the imputation steps give
        the iteration count back so that both groups step once per batch."""
        if not self.optimizer.built:
            # Built on every variable, not on the first subset applied
            # (TF without a strategy builds it at the first update).
            with keras.name_scope(self.optimizer.name, caller=self.optimizer):
                self.optimizer.build(self.trainable_variables)
        iterations = self.optimizer.iterations
        # A copy: a bare read of the variable may run after the update.
        before = ops.copy(iterations.value)
        self.optimizer.apply(grads, variables)
        if phase == IMPUTATION_PHASE:
            iterations.assign(before)

    # === train_step ===

    def train_step(self, *args):
        if not self.alternating:
            return super().train_step(*args)
        backend = keras.backend.backend()
        if backend == "tensorflow":
            return self._tensorflow_alternating_step(*args)
        if backend == "jax":
            return self._jax_alternating_step(*args)
        raise ValueError(
            f"alternating=True trains on the TensorFlow or JAX backend. "
            f"Received: backend={backend!r} (use alternating=False)"
        )

    def _tensorflow_alternating_step(self, data):
        import tensorflow as tf

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        groups = dict(
            zip((IMPUTATION_PHASE, PREDICTION_PHASE),
                self.alternating_variable_groups())
        )
        total = 0.0
        for phase in self._phases():
            variables = groups[phase]
            with tf.GradientTape() as tape:
                y_pred = self(x, training=True)
                with self._loss_phase(phase):
                    loss = self._compute_loss(
                        x=x, y=y, y_pred=y_pred,
                        sample_weight=sample_weight, training=True,
                    )
                scaled = self.optimizer.scale_loss(loss)
            grads = tape.gradient(scaled, variables)
            self._apply_phase(grads, variables, phase)
            total = total + loss
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        first = next(i for i in tf.nest.flatten(x) if i is not None)
        self._loss_tracker.update_state(
            total * replicas, sample_weight=tf.shape(first)[0]
        )
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def _jax_alternating_step(self, state, data):
        import jax

        trainable, non_trainable, optimizer_values, metrics_values = state
        trainable = list(trainable)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        imputation, _ = self.alternating_variable_groups()
        own = {id(v) for v in imputation}
        indices = {
            IMPUTATION_PHASE: [
                i for i, v in enumerate(self.trainable_variables)
                if id(v) in own
            ],
            PREDICTION_PHASE: [
                i for i, v in enumerate(self.trainable_variables)
                if id(v) not in own
            ],
        }
        total = 0.0
        for phase in self._phases():
            index = indices[phase]

            def phase_loss(phase_values, trainable, non_trainable, metrics,
                           phase=phase, index=index):
                values = list(trainable)
                for i, value in zip(index, phase_values):
                    values[i] = value
                with self._loss_phase(phase):
                    return self.compute_loss_and_updates(
                        values, non_trainable, metrics, x, y, sample_weight,
                        training=True, optimizer_variables=optimizer_values,
                    )

            (_, aux), grads = jax.value_and_grad(phase_loss, has_aux=True)(
                [trainable[i] for i in index],
                trainable, non_trainable, metrics_values,
            )
            loss, y_pred, non_trainable, metrics_values = aux
            mapping = list(zip(self.trainable_variables, trainable)) + list(
                zip(self.optimizer.variables, optimizer_values)
            )
            with keras.StatelessScope(state_mapping=mapping) as scope:
                self._apply_phase(
                    grads, [self.trainable_variables[i] for i in index], phase
                )
            trainable = [
                scope.get_current_value(v) for v in self.trainable_variables
            ]
            optimizer_values = [
                scope.get_current_value(v) for v in self.optimizer.variables
            ]
            total = total + loss

        metrics_mapping = list(zip(self.metrics_variables, metrics_values))
        with keras.StatelessScope(state_mapping=metrics_mapping) as scope:
            first = next(i for i in jax.tree.leaves(x) if i is not None)
            self._loss_tracker.update_state(total, sample_weight=first.shape[0])
            logs = self.compute_metrics(x, y, y_pred, sample_weight)
        metrics_values = [
            scope.get_current_value(v) for v in self.metrics_variables
        ]
        state = (trainable, non_trainable, optimizer_values, metrics_values)
        return logs, state
