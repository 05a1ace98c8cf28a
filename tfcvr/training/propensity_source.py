"""Where the IPW/DR family's click propensity comes from (see PropensitySource)."""

import os

import numpy as np

from tfcvr.features import keys
from tfcvr.losses import functional as F
from tfcvr.models.pretraining_stage import PretrainingStage
from tfcvr.training.isotonic_calibrator import IsotonicCalibrator
from tfcvr.training.platt_calibrator import PlattCalibrator
from tfcvr.training.pretraining import PretrainingPlan

SOURCES = ("model", "ctr_model", "column")
CALIBRATORS = {"platt": PlattCalibrator, "isotonic": IsotonicCalibrator}

# The separately trained CTR model is a first stage like CSTWA's, through
# the same hook and the same four `--param`s: `propensity_model_dir`
# (reuse a trained model directory), `propensity_model` (a registry name;
# its `ctr` head is the propensity), `propensity_params`, `propensity_epochs`.
PROPENSITY_STAGE = PretrainingStage(
    name="propensity",
    estimator="naive",
    description="CTR model whose pCTR is the click propensity of the IPW/DR losses",
)


def uses_propensity(net):
    """Whether the loss of a built `CVRModel` has a propensity-weighted
    term (the IPW/DR family), found by running it once on two dummy rows."""
    x = net.dummy_inputs(2)
    labels = {name: np.array([1.0, 0.0], "float32") for name in net.schema.labels}
    with F.given_click_propensity(labels[keys.CLICK], np.full(2, 0.5, "float32")) as given:
        net.loss_terms(labels, net(x, training=False))
    return given.uses > 0


class PropensitySource:
    """The click propensity of every propensity-weighted loss term.

    - `"model"` (default): the estimator's own pCTR (its shared CTR tower),
      trained jointly, as in the papers. Nothing is added to the batches.
    - `"ctr_model"`: the pCTR of a CTR model trained first on the same
      training split (the `PROPENSITY_STAGE` first stage; `naive`'s CTR
      tower unless `--param propensity_model=...`), optionally calibrated
      on the eval split (`"platt"` or `"isotonic"`). It helps when the
      joint CTR tower is a poor propensity: shared with the CVR tower,
      under-trained when the CVR terms dominate, or mis-calibrated (an
      inverse propensity needs the level right, not only the ranking).
      It cannot carry selection the features do not show.
    - `"column"`: a logged propensity, a stored column of the dataset that
      is never a feature (`schema.extra_columns`), as randomised or
      bandit logs record the probability with which each item was shown.
      It is the right choice whenever it exists: exact, no model to fit.
      On simulated data `column:true_ctr` is the oracle propensity.

    The trainer adds the chosen propensity to the training (and eval)
    batches as the label `keys.PROPENSITY`; `CVRModel` then hands it to
    `tfcvr.losses.functional.propensity_weights` (clipping, caps and SNIPS
    as configured on the estimator), so every IPW/DR-family estimator
    takes it without any code of its own. Models never read files.

    Args:
        source: str. `"model"`, `"ctr_model"` or `"column:NAME"` (or
            `"column"` with `column=`). Defaults to `"model"`.
        column: str or None. The column of `"column"`.
        calibration: str or None. `"platt"` or `"isotonic"`, only with
            `"ctr_model"`. Defaults to None.
    """

    def __init__(self, source="model", column=None, calibration=None):
        if isinstance(source, str) and source.startswith("column:"):
            source, column = "column", source.split(":", 1)[1]
        if source not in SOURCES:
            raise ValueError(
                f"propensity must be one of {list(SOURCES[:2])} or column:NAME. "
                f"Received: propensity={source!r}"
            )
        if (source == "column") != bool(column):
            raise ValueError(
                "propensity column:NAME needs a column name, and only it. "
                f"Received: propensity={source!r}, column={column!r}"
            )
        if calibration is not None and calibration not in CALIBRATORS:
            raise ValueError(
                f"propensity calibration must be one of {sorted(CALIBRATORS)}. "
                f"Received: calibration={calibration!r}"
            )
        if calibration is not None and source != "ctr_model":
            raise ValueError(
                "propensity calibration applies to the ctr_model propensity "
                f"only. Received: propensity={source!r}, calibration={calibration!r}"
            )
        self.source = source
        self.column = column
        self.calibration = calibration
        self.ctr_model = None
        self.calibrator = None
        self.plan = None

    @property
    def external(self):
        """Whether the batches carry a propensity from outside the model."""
        return self.source != "model"

    def describe(self):
        return f"column:{self.column}" if self.source == "column" else self.source

    def plan_stage(self, model, params, say=None):
        """`params` without the stage's `propensity_*` options; for
        `"ctr_model"` also prepares the first stage (see `prepare`)."""
        params = dict(params or {})
        options = {
            name: params.pop(name)
            for name in PROPENSITY_STAGE.options if name in params
        }
        if options and self.source != "ctr_model":
            raise ValueError(
                f"{sorted(options)} configure the ctr_model propensity. "
                f"Received: propensity={self.describe()!r}"
            )
        if self.source == "ctr_model":
            self.plan = PretrainingPlan(
                model, PROPENSITY_STAGE, params, options, wanted=(), say=say)
        return params

    def prepare(self, data, train_model, model_dir=None, epochs=1,
                calibration_data=None, calibration_split=keys.EVAL_SPLIT):
        """Checks the column of `data` (a `DatasetDir`), or trains (or
        reloads) the CTR model on it with `train_model(model=, params=,
        epochs=, model_dir=)` and fits its calibration on
        `calibration_split` of `calibration_data` (default: `data`'s eval
        split; never a test set)."""
        if self.source == "column":
            if self.column not in data.schema.extra_columns:
                raise ValueError(
                    f"propensity column {self.column!r} is not a stored "
                    f"non-feature column of {data.path}; its extra columns "
                    f"are {list(data.schema.extra_columns)}"
                )
            self._check_column(data)
        elif self.source == "ctr_model":
            # A reused model must see the dataset's vocabulary of every field.
            self.plan.wanted = tuple(data.schema.feature_names)
            # Its own folder: a two-stage estimator's first stage uses
            # `pretrained/` of the model directory.
            stage_root = model_dir and os.path.join(model_dir, PROPENSITY_STAGE.name)
            self.ctr_model = self.plan.run(
                train_model, data.path, data.schema, stage_root, epochs)
            if self.calibration is not None:
                self._fit_calibration(calibration_data or data, calibration_split)

    def _check_column(self, data, batches=4):
        ds = data.dataset(keys.TRAIN_SPLIT, 4096, training=False, include_extra=True)
        for _, labels in ds.take(batches):
            values = np.asarray(labels[self.column])
            bad = ~((values >= 0.0) & (values <= 1.0))
            if bad.any():
                raise ValueError(
                    f"propensity column {self.column!r} of {data.path} must "
                    f"hold probabilities in [0, 1]; found {values[bad][0]!r}"
                )

    def _fit_calibration(self, data, split):
        if split is None:
            raise ValueError(
                f"propensity calibration is fitted on the eval split, and "
                f"{data.path} has none"
            )
        ds = data.dataset(split, 8192, training=False)
        scores, clicks = [], []
        for features, labels in ds:
            scores.append(np.asarray(self.ctr_model(features, training=False)[keys.CTR]).reshape(-1))
            clicks.append(np.asarray(labels[keys.CLICK]).reshape(-1))
        self.calibrator = CALIBRATORS[self.calibration]().fit(
            np.concatenate(scores), np.concatenate(clicks))

    def propensity(self, features, labels):
        """`(batch,)` float32 propensity of a batch (TensorFlow)."""
        import tensorflow as tf

        if self.source == "column":
            return tf.cast(tf.reshape(labels[self.column], (-1,)), tf.float32)
        p = tf.reshape(self.ctr_model(features, training=False)[keys.CTR], (-1,))
        if self.calibrator is not None:
            p = self.calibrator.tf_apply(p)
        return tf.cast(p, tf.float32)

    @property
    def include_extra(self):
        """Whether the batches must carry the stored non-feature columns (a
        logged propensity column)."""
        return self.source == "column"

    def batch_map(self, label_names):
        """None, or the `(features, labels)` map of a batch that adds
        `keys.PROPENSITY` to the labels and keeps only `label_names`
        besides it."""
        if not self.external:
            return None

        def add(features, labels):
            out = {name: labels[name] for name in label_names}
            out[keys.PROPENSITY] = self.propensity(features, labels)
            return features, out

        return add

    def dataset(self, data, split, batch_size, label_names, **kwargs):
        """`data.dataset(split, ...)` with `batch_map(label_names)` applied."""
        ds = data.dataset(split, batch_size, include_extra=self.include_extra, **kwargs)
        add = self.batch_map(label_names)
        return ds if add is None else ds.map(add)

    def check_estimator(self, net):
        """A one-line ValueError unless `net` has a propensity-weighted term
        that the given propensity would replace."""
        if self.external and not uses_propensity(net):
            raise ValueError(
                f"propensity={self.describe()} feeds the IPW/DR family's "
                f"propensity weights, and {type(net).__name__} uses none; "
                f"leave --propensity out for it"
            )

    def record(self):
        out = {"source": self.describe(), "calibration": self.calibration}
        if self.plan is not None:
            out["stage"] = self.plan.record()
        if self.calibrator is not None:
            out.update(self.calibrator.record())
        return out
