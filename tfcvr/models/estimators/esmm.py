from tfcvr.features import keys
from tfcvr.losses import functional as F
from tfcvr.models.cvr_model import CVRModel
from tfcvr.models.cvr_model import check_weights
from tfcvr.models.registry import register_estimator


@register_estimator(
    "esmm",
    paper="Ma et al., Entire Space Multi-Task Model, SIGIR 2018",
)
class ESMM(CVRModel):
    """Entire Space Multi-task Model.

    pCTCVR = pCTR * pCVR over all impressions, so pCVR is learnt in the
    entire space without direct supervision (paper Eq. 3):
    `L = w_ctr * BCE(o, pCTR) + w_ctcvr * BCE(o * r, pCTR * pCVR)`,
    both means over the batch of impressions.

    Reference: Ma et al., "Entire Space Multi-Task Model: An Effective
    Approach for Estimating Post-Click Conversion Rate", SIGIR 2018.

    Args:
        ctr_weight: float. Weight of the CTR term. Defaults to 1.0.
        ctcvr_weight: float. Weight of the CTCVR term. Defaults to 1.0.
        **kwargs: `CVRModel` arguments (schema, embedding_dim, backbone, ...).
            The paper's network is towers `[360, 200, 80]` on 18-dim
            embeddings; tfcvr's default backbone is towers `[256, 128]`.

    Example:
        model = tfcvr.models.ESMM(schema=schema)
        model.compile(optimizer="adam")
        model.fit(dataset_dir.dataset("train", 4096), epochs=1)
    """

    tasks = (keys.CTR, keys.CVR)

    def __init__(self, schema, ctr_weight=1.0, ctcvr_weight=1.0, **kwargs):
        super().__init__(schema, **kwargs)
        check_weights(ctr_weight=ctr_weight, ctcvr_weight=ctcvr_weight)
        # === Config ===
        self.ctr_weight = ctr_weight
        self.ctcvr_weight = ctcvr_weight

    def loss_terms(self, labels, outputs):
        click = labels[keys.CLICK]
        ctcvr_label = click * labels[keys.CONVERSION]
        return {
            "ctr": self.ctr_weight
            * F.batch_mean(self.bce(click, outputs[keys.CTR])),
            "ctcvr": self.ctcvr_weight
            * F.batch_mean(self.bce(ctcvr_label, outputs[keys.CTCVR])),
        }
