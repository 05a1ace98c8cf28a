from tfcvr.features import keys
from tfcvr.losses import DoublyRobustLoss
from tfcvr.losses import ImputationLoss
from tfcvr.models.alternating_training import AlternatingTraining
from tfcvr.models.alternating_training import check_alternating
from tfcvr.models.cvr_model import CVRModel
from tfcvr.models.cvr_model import check_weights


class DoublyRobustEstimator(AlternatingTraining, CVRModel):
    """Base of the doubly robust estimators (Multi-DR, DR-JL, MRDR, ESCM²-DR).

    Three towers on one embedding: CTR (the propensity `ô`), CVR (`r̂`) and
    an imputation tower (`ê`, the imputed CVR error, or a pseudo label `r̃`
    with `ê = e(r̃, r̂)`). The base owns the two losses every DR estimator
    combines, over the clicks `o` with `p̂ = clip(sg(ô), propensity_floor, 1)`
    and `e = e(r, r̂)`:
    `L_DR = (1/B) sum_D ê + (1/N) sum_D o (e - ê) / p̂` (`dr_loss`) and
    `L_IMP = (1/N') sum_D o w(p̂) l` (`imputation_loss`, `l = (ê - e)^2` or
    `e(r, r̃)`, `w(p̂) = 1/p̂` unless a subclass's `imputation_loss_class`
    says otherwise), their arguments, and the choice between joint and
    alternating (DR-JL) training. A subclass declares its weights and
    `loss_terms`, taking `(L_DR, L_IMP)` from `dr_risks`; the imputation
    term must be named `IMPUTATION_TERM` for the alternating steps.

    Args:
        imputation_weight: float. Weight of `L_IMP`. Defaults to 1.0.
        normalization: str. `N` of `L_DR`: `"exposure"` (`|D|`) or
            `"snips"` (`sum o / p̂`). Defaults to `"exposure"`.
        imputation_normalization: str. `N'` of `L_IMP`: `"exposure"`,
            `"click"` or `"snips"`. Defaults to `"exposure"`.
        propensity_floor: float. Lower clip of `ô`. Defaults to 0.01.
        stop_gradient_propensity: bool. `ô` enters both losses through
            `stop_gradient`. Defaults to True.
        stop_gradient_imputation: bool. `ê` enters `L_DR` and `e` enters
            `L_IMP` through `stop_gradient`, so each loss trains its own
            model. Defaults to True.
        imputation_target: str. `"error"` (the tower predicts `e`) or
            `"label"` (a pseudo label `r̃`). Defaults to `"error"`.
        alternating: bool. Alternating imputation / prediction updates in
            each batch (`AlternatingTraining`) instead of one joint step.
            Defaults to False.
        imputation_steps: int. Imputation steps per batch when
            alternating. Defaults to 1.
        **kwargs: `CVRModel` arguments (schema, embedding_dim, backbone, ...).

    Outputs add `imputation` (`ê` or `r̃`, a sigmoid), `(batch, 1)`.
    """

    tasks = (keys.CTR, keys.CVR, keys.IMPUTATION)

    def __init__(
        self,
        schema,
        imputation_weight=1.0,
        normalization="exposure",
        imputation_normalization="exposure",
        propensity_floor=0.01,
        stop_gradient_propensity=True,
        stop_gradient_imputation=True,
        imputation_target="error",
        alternating=False,
        imputation_steps=1,
        **kwargs,
    ):
        super().__init__(schema, **kwargs)
        check_weights(imputation_weight=imputation_weight)
        check_alternating(alternating, imputation_steps)
        shared = dict(
            propensity_floor=propensity_floor,
            stop_gradient_propensity=stop_gradient_propensity,
            imputation_target=imputation_target,
            epsilon=self.epsilon,
        )

        # === Losses ===
        self.dr_loss = DoublyRobustLoss(
            normalization=normalization,
            stop_gradient_imputation=stop_gradient_imputation,
            **shared,
        )
        self.imputation_loss = self.imputation_loss_class()(
            normalization=imputation_normalization,
            stop_gradient_prediction=stop_gradient_imputation,
            **shared,
        )

        # === Config ===
        self.imputation_weight = imputation_weight
        self.normalization = normalization
        self.imputation_normalization = imputation_normalization
        self.propensity_floor = propensity_floor
        self.stop_gradient_propensity = stop_gradient_propensity
        self.stop_gradient_imputation = stop_gradient_imputation
        self.imputation_target = imputation_target
        self.alternating = alternating
        self.imputation_steps = imputation_steps

    def imputation_loss_class(self):
        """The class of `L_IMP`: DR-JL's `1/p̂`-weighted `ImputationLoss`."""
        return ImputationLoss

    def dr_risks(self, labels, outputs):
        """`(L_DR, L_IMP)`, two scalars, on a batch of labels and outputs."""
        rows = dict(
            observed=labels[keys.CLICK],
            target=labels[keys.CONVERSION],
            prediction=outputs[keys.CVR],
            propensity=outputs[keys.CTR],
            imputation=outputs[keys.IMPUTATION],
        )
        return self.dr_loss(**rows), self.imputation_loss(**rows)
