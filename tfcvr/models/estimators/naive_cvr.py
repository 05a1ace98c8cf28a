from tfcvr.features import keys
from tfcvr.losses import functional as F
from tfcvr.models.cvr_model import CVRModel
from tfcvr.models.cvr_model import check_weights
from tfcvr.models.registry import register_estimator


@register_estimator(
    "naive",
    paper="Click-space baseline (ESMM's BASE; ESCM2 Eq. 3)",
)
class NaiveCVR(CVRModel):
    """The click-space baseline: pCVR is fitted on clicked rows only.

    `L = w_ctr * mean_D BCE(o, pCTR) + w_cvr * sum_D o * BCE(r, pCVR) / N`,
    with `N = |O|` (clicks in the batch, the ESCM2 Eq. 3 form) or `N = |D|`
    (batch size, NISE's MMoE baseline). Trained on a selected sample, its
    pCVR is biased on the unclicked rows where it is served.

    Args:
        ctr_weight: float. Weight of the CTR term. Defaults to 1.0.
        cvr_weight: float. Weight of the click-space CVR term. Defaults to 1.0.
        cvr_normalization: str. `"click"` (divide by clicks) or `"exposure"`
            (divide by batch size). Defaults to `"click"`.
        **kwargs: `CVRModel` arguments.
    """

    tasks = (keys.CTR, keys.CVR)

    def __init__(
        self,
        schema,
        ctr_weight=1.0,
        cvr_weight=1.0,
        cvr_normalization="click",
        **kwargs,
    ):
        super().__init__(schema, **kwargs)
        check_weights(ctr_weight=ctr_weight, cvr_weight=cvr_weight)
        if cvr_normalization not in ("click", "exposure"):
            raise ValueError(
                "cvr_normalization must be 'click' or 'exposure'. Received: "
                f"cvr_normalization={cvr_normalization!r}"
            )
        # === Config ===
        self.ctr_weight = ctr_weight
        self.cvr_weight = cvr_weight
        self.cvr_normalization = cvr_normalization

    def loss_terms(self, labels, outputs):
        click = F.flat(labels[keys.CLICK])
        cvr_errors = self.bce(labels[keys.CONVERSION], outputs[keys.CVR])
        if self.cvr_normalization == "click":
            cvr_loss = F.masked_mean(cvr_errors, click)
        else:
            cvr_loss = F.batch_mean(click * cvr_errors)
        return {
            "ctr": self.ctr_weight
            * F.batch_mean(self.bce(click, outputs[keys.CTR])),
            "cvr": self.cvr_weight * cvr_loss,
        }
