from tfcvr.models.estimators.multi_dr import MultiDR
from tfcvr.models.registry import register_estimator


@register_estimator(
    "dr_jl",
    paper="Wang et al., Doubly Robust Joint Learning for Recommendation on "
    "Data Missing Not at Random, ICML 2019",
)
class DRJL(MultiDR):
    """Doubly robust joint learning (DR-JL).

    A prediction model θ (CTR and CVR towers) and an imputation model φ
    (the `imputation` tower, `ê` predicting the CVR error) learn in turns
    on every batch (paper Alg. 1): first φ on
    `L_e = (1/|D|) sum_D o * (ê - e)^2 / p̂` with θ fixed, then θ on
    `w_ctr * mean_D e(o, ô) + w_cvr * (1/|D|) sum_D [ê + o * (e - ê) / p̂]`
    with φ fixed, `e = e(r, r̂)`, `p̂ = clip(sg(ô), propensity_floor, 1)`.
    The paper estimates propensities beforehand; here the jointly trained
    CTR tower gives them, as in Multi-DR's DR-JL baseline.

    Reference: Wang et al., "Doubly Robust Joint Learning for
    Recommendation on Data Missing Not at Random", ICML 2019.

    Args:
        alternating: bool. The paper's alternating updates; False trains
            all terms jointly in one step. Defaults to True.
        imputation_target: str. `"error"` (the paper: `ê` is the imputed
            error) or `"label"` (a pseudo label `r̃`, `ê = e(r̃, r̂)`, as in
            the DR-JL baselines of MRDR's and AutoDebias' code). Defaults to
            `"error"`.
        **kwargs: `MultiDR` arguments (`ctr_weight`, `cvr_weight`), the other
            `DoublyRobustEstimator` arguments (`imputation_weight`,
            normalisations, `propensity_floor` 0.01, stop-gradients,
            `imputation_steps`) and `CVRModel` arguments (schema,
            embedding_dim, backbone, ...).
    """

    def __init__(self, schema, alternating=True, **kwargs):
        super().__init__(schema, alternating=alternating, **kwargs)
