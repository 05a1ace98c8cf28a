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
