import numpy as np

from tfcvr.features import keys
from tfcvr.testing.gradients import backend_gradients
from tfcvr.testing.test_case import TestCase

try:
    import pytest

    _jax_marked = pytest.mark.jax
except ImportError:  # users' estimator tests may run without pytest
    def _jax_marked(test):
        return test


class EstimatorTestCase(TestCase):
    """`TestCase` of one registered estimator, with the checks every
    estimator runs: registration, fit + `.keras` round trip, and a short fit
    on the current Keras backend (marked `jax`, so it also runs under JAX).

    Subclasses set `estimator` (the class), `name` (its registry name) and
    `venue` (a string its `paper` contains), and optionally `fit_variants`
    (constructor kwargs the fit checks run with, one model each) and
    `fit_batch` (a batch with extra labels).
    """

    estimator = None
    name = None
    venue = ""
    backbone_config = {"hidden_units": [8]}
    fit_variants = ({},)
    # The base class itself holds no estimator: pytest collects subclasses.
    __test__ = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.__test__ = cls.estimator is not None

    def model(self, **kwargs):
        kwargs.setdefault("backbone_config", self.backbone_config)
        kwargs.setdefault("schema", self.tiny_schema())
        return self.estimator(embedding_dim=4, **kwargs)

    def fit_batch(self, schema, batch_size):
        return self.batch(schema, batch_size=batch_size)

    def output_gradients(self, model, labels, outputs_fn, arrays, term=None):
        """`{name: d loss / d arrays[name]}` on the current backend, the loss
        being the term `term` of `model.loss_terms` (or the whole objective
        when None) at the outputs `outputs_fn(**arrays)`."""
        names = list(arrays)

        def loss(*values):
            y_pred = outputs_fn(**dict(zip(names, values)))
            if term is None:
                return model.compute_loss(y=labels, y_pred=y_pred)
            return model.loss_terms(labels, y_pred)[term]

        return dict(zip(names, backend_gradients(loss, *arrays.values())))

    def check_propensity_gradients(self, terms, gradients):
        """Each of `terms` sends a gradient to the `ctr` output exactly when
        the model is built with `stop_gradient_propensity=False`;
        `gradients(model, term)` is a dict output name -> gradient."""
        for stop in (True, False):
            model = self.model(stop_gradient_propensity=stop)
            for term in terms:
                with self.subTest(term=term, stop_gradient_propensity=stop):
                    grads = gradients(model, term)
                    self.assertEqual(bool(np.any(grads[keys.CTR] != 0)),
                                     not stop)

    def assertLossTermsClose(self, terms, expected, atol=1e-5):
        """`loss_terms` has exactly the `expected` names and values (a
        NumPy reference), each to `atol` absolute and relative."""
        self.assertEqual(set(terms), set(expected))
        for name, value in expected.items():
            self.assertAllClose(terms[name], value, atol=atol, rtol=atol,
                                msg=name)

    def test_registered(self):
        from tfcvr.models import get_estimator

        self.assertIs(get_estimator(self.name), self.estimator)
        self.assertIn(self.venue, self.estimator.paper)

    def test_fit_and_save_load(self):
        for variant in self.fit_variants:
            with self.subTest(**variant):
                model = self.model(**variant)
                features, labels = self.fit_batch(model.schema, 48)
                self.run_fit_test(model, features, labels)
                self.run_model_saving_test(model, features)

    @_jax_marked
    def test_fit_step_on_current_backend(self):
        for variant in self.fit_variants:
            with self.subTest(**variant):
                model = self.model(**variant)
                features, labels = self.fit_batch(model.schema, 32)
                history = self.run_fit_test(model, features, labels, steps=2)
                self.assertEqual(len(history.history["loss"]), 2)
