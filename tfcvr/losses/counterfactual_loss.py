import abc

import keras
from keras import ops

from tfcvr.losses import functional as F
from tfcvr.serialization import subclass_config

# The keyword arguments of a call, in their order.
ROW_INPUTS = ("observed", "target", "prediction", "propensity", "imputation")


class CounterfactualLoss(keras.losses.Loss, abc.ABC):
    """Base of the propensity-weighted CVR losses (IPW, DR, imputation).

    Each estimates an entire-space risk `(1/|D|) sum_D v_i` whose per-row
    value `v_i` is only observed on the rows with `o_i = 1` (the clicks, or
    the non-clicks for a risk over the unclicked space):

        L = (1/B) sum_i d_i + (1/N) sum_i o_i * w(p_i) * v_i

    `d_i` is a direct (imputed) term known on every row (absent for IPW),
    `w(p) = 1/p` the propensity weight (overridable), `p_i` the probability
    that `o_i = 1` (through `stop_gradient` and clipped to
    `[propensity_floor, 1]`), and `N` the normaliser: the batch size B
    (`"exposure"`, the unbiased form), the observed rows (`"click"`), or
    `sum_i o_i * w(p_i)` (`"snips"`, self-normalised); the weights are
    `tfcvr.losses.functional.propensity_weights`. `B` and `N` are
    statistics of the global batch under a multi-replica strategy, and the
    value is this replica's share (see `tfcvr.losses.functional`). A
    subclass implements `row_terms(target, prediction, imputation) -> (d, v)`.

    Call with keyword arguments, each `(batch,)` or `(batch, 1)`:
    `loss(observed=o, target=r, prediction=r̂, propensity=p)`, plus
    `imputation=` for the losses of a DR estimator's imputation model. The
    result is a scalar; `call` (same arguments) gives the per-row
    contributions `(batch,)` that sum to it.

    Args:
        normalization: str. `"exposure"`, `"click"` or `"snips"` (a subclass
            may allow fewer). Defaults to `"exposure"`.
        propensity_floor: float in (0, 1). Lower clip of the propensity.
            Defaults to 1e-6.
        weight_cap: float or None. Upper clip of each normalised weight
            `o_i * w(p_i) / N` (ESCM2's official code caps it at 15).
            Defaults to None (no cap).
        stop_gradient_propensity: bool. Propensities enter through
            `stop_gradient`, so the CTR tower gets no gradient from this
            loss. Defaults to True.
        epsilon: float. Probability clip inside logs. Defaults to 1e-7.
        name: str or None.
        dtype: dtype or None.
    """

    normalizations = F.NORMALIZATIONS
    # Whether the loss reads an imputation model's output.
    uses_imputation = False

    def __init__(
        self,
        normalization="exposure",
        propensity_floor=1e-6,
        weight_cap=None,
        stop_gradient_propensity=True,
        epsilon=F.EPSILON,
        name=None,
        dtype=None,
    ):
        super().__init__(name=name, reduction="sum", dtype=dtype)
        if normalization not in self.normalizations:
            raise ValueError(
                f"{type(self).__name__} normalization must be one of "
                f"{self.normalizations}. Received: "
                f"normalization={normalization!r}"
            )
        if not isinstance(propensity_floor, (int, float)) or not (
            0.0 < propensity_floor < 1.0
        ):
            raise ValueError(
                "propensity_floor must be in (0, 1). Received: "
                f"propensity_floor={propensity_floor!r}"
            )
        if weight_cap is not None and (
            not isinstance(weight_cap, (int, float)) or weight_cap <= 0
        ):
            raise ValueError(
                "weight_cap must be None or a number > 0. Received: "
                f"weight_cap={weight_cap!r}"
            )
        if not 0.0 < epsilon < 0.5:
            raise ValueError(
                f"epsilon must be in (0, 0.5). Received: epsilon={epsilon!r}"
            )
        self.normalization = normalization
        self.propensity_floor = propensity_floor
        self.weight_cap = weight_cap
        self.stop_gradient_propensity = bool(stop_gradient_propensity)
        self.epsilon = epsilon

    @abc.abstractmethod
    def row_terms(self, target, prediction, imputation):
        """`(d, v)`: the direct term `(batch,)` or None, and the value
        `(batch,)` that counts on the observed rows."""

    def propensity_weight(self, propensity):
        return 1.0 / propensity

    def bce(self, y_true, y_prob):
        return F.binary_crossentropy(
            F.flat(y_true), F.flat(y_prob), self.epsilon
        )

    def __call__(
        self, *, observed, target, prediction, propensity, imputation=None
    ):
        return ops.sum(
            self.call(
                observed=observed,
                target=target,
                prediction=prediction,
                propensity=propensity,
                imputation=imputation,
            )
        )

    def call(
        self, *, observed, target, prediction, propensity, imputation=None
    ):
        self._check_inputs(observed, target, prediction, propensity, imputation)
        weight = F.propensity_weights(
            observed,
            propensity,
            normalization=self.normalization,
            floor=self.propensity_floor,
            cap=self.weight_cap,
            stop_gradient=self.stop_gradient_propensity,
            weight_fn=self.propensity_weight,
        )
        direct, value = self.row_terms(target, prediction, imputation)
        rows = weight * value
        if direct is not None:
            rows = rows + direct / ops.maximum(F.batch_size(weight), 1.0)
        return rows

    def _check_inputs(self, *values):
        inputs = dict(zip(ROW_INPUTS, values))
        name = type(self).__name__
        if self.uses_imputation and inputs["imputation"] is None:
            raise ValueError(
                f"{name} needs `imputation`, the imputation model's output. "
                "Received: imputation=None"
            )
        if not self.uses_imputation and inputs["imputation"] is not None:
            raise ValueError(
                f"{name} reads no imputation model. Received: an imputation"
            )
        # Rows of different batches would broadcast deep inside the
        # weighting; a batch size known before tracing is checked here.
        sizes = {
            role: _static_rows(inputs[role]) for role in ROW_INPUTS
            if inputs[role] is not None
        }
        if len({n for n in sizes.values() if n is not None}) > 1:
            received = ", ".join(f"{k}={v}" for k, v in sizes.items())
            raise ValueError(
                f"{name} needs one row per example in every input. "
                f"Received rows: {received}"
            )

    def get_config(self):
        config = {
            "name": self.name,
            "dtype": self.dtype,
            "normalization": self.normalization,
            "propensity_floor": self.propensity_floor,
            "weight_cap": self.weight_cap,
            "stop_gradient_propensity": self.stop_gradient_propensity,
            "epsilon": self.epsilon,
        }
        # A subclass's own arguments (e.g. `imputation_target`).
        config.update(subclass_config(self, CounterfactualLoss, exclude=config))
        return config


def _static_rows(x):
    """Number of elements of `x` when its shape is known, else None."""
    shape = getattr(x, "shape", None)
    if shape is None:
        shape = ops.shape(x)
    rows = 1
    for dim in tuple(shape):
        if dim is None:
            return None
        rows *= int(dim)
    return rows
