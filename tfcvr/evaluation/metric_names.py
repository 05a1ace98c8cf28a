"""Names of the metrics `CVREvaluator` reports (the keys of its result).

Three incompatible "CVR AUC" definitions are in use; each has its own name
and they are never mixed:
- `cvr_auc_clicked`: pCVR on clicked rows vs conversion (ESMM protocol);
- `cvr_auc_exposure`: pCVR on all rows vs click*conversion (DCMT/NISE);
- `cvr_auc_true`: pCVR on all rows vs the counterfactual conversion label
  (simulated data only).
A randomised (missing-at-random) test log, where every row's outcome is
observed (e.g. items assigned at random and all rated: click = 1 on every
row), is evaluated under a protocol of its own: `cvr_auc_mar` and its log
loss and calibration replace the clicked and exposure CVR metrics, which
are not reported for it.
"""

from tfcvr.features import keys

# === Protocol ===
# `PROTOCOL` names the protocol a result was computed under (`PROTOCOL_MAR`
# or `PROTOCOL_OBSERVATIONAL`), `PROTOCOL_REASON` why; `PROTOCOL_AUTO`
# chooses MAR when every row is clicked.
PROTOCOL = "protocol"
PROTOCOL_REASON = "protocol_reason"
PROTOCOL_AUTO = "auto"
PROTOCOL_OBSERVATIONAL = "observational"
PROTOCOL_MAR = "mar"
PROTOCOLS = (PROTOCOL_AUTO, PROTOCOL_OBSERVATIONAL, PROTOCOL_MAR)

# === Counts ===
NUM_ROWS = "num_rows"
NUM_CLICKS = "num_clicks"
NUM_CONVERSIONS = "num_conversions"  # clicked and converted
NUM_UNCLICKED_CONVERSIONS = "num_unclicked_conversions"  # conversion=1, click=0
NUM_BATCHES = "num_batches"  # added by evaluate_model

# === Ranking ===
CTR_AUC = "ctr_auc"
CVR_AUC_CLICKED = "cvr_auc_clicked"
CVR_AUC_EXPOSURE = "cvr_auc_exposure"
CTCVR_AUC = "ctcvr_auc"
AUC_METRICS = (CTR_AUC, CVR_AUC_CLICKED, CVR_AUC_EXPOSURE, CTCVR_AUC)

# === Log loss ===
CTR_LOGLOSS = "ctr_logloss"
CVR_LOGLOSS_CLICKED = "cvr_logloss_clicked"
CTCVR_LOGLOSS = "ctcvr_logloss"

# === Calibration ===
CTR_PCOC = "ctr_pcoc"
CTR_ECE = "ctr_ece"
CVR_PCOC_CLICKED = "cvr_pcoc_clicked"
CVR_ECE_CLICKED = "cvr_ece_clicked"
CTCVR_PCOC = "ctcvr_pcoc"
CTCVR_ECE = "ctcvr_ece"

# === Randomised (MAR) test: every row's conversion outcome observed ===
CVR_AUC_MAR = "cvr_auc_mar"
CVR_LOGLOSS_MAR = "cvr_logloss_mar"
CVR_PCOC_MAR = "cvr_pcoc_mar"
CVR_ECE_MAR = "cvr_ece_mar"
GAUC_CVR_MAR = "gauc_cvr_mar"

# === Per-user AUC (only with user ids) ===
GAUC_CTR = "gauc_ctr"
GAUC_CVR_CLICKED = "gauc_cvr_clicked"
GAUC_CTCVR = "gauc_ctcvr"
GAUC_METRICS = (GAUC_CTR, GAUC_CVR_CLICKED, GAUC_CTCVR)
USERS_USED_SUFFIX = "_users_used"
USERS_SKIPPED_SUFFIX = "_users_skipped"

# === Against the ground truth of simulated data ===
CVR_AUC_TRUE = "cvr_auc_true"
CVR_BIAS_UNCLICKED = "cvr_bias_unclicked"
CVR_BIAS_CLICKED = "cvr_bias_clicked"
CVR_RMSE_TRUE = "cvr_rmse_true"
CVR_PCOC_UNCLICKED_TRUE = "cvr_pcoc_unclicked_true"
CVR_ECE_UNCLICKED_TRUE = "cvr_ece_unclicked_true"

# === Nested (non-scalar) entries ===
SUPPORT = "support"  # AUC name -> {"positives": int, "negatives": int}
UNDEFINED_METRICS = "undefined_metrics"  # names whose value is NaN
RELIABILITY = "reliability"  # curve name -> reliability_curve(...) lists
RELIABILITY_CTR = keys.CTR
RELIABILITY_CVR_CLICKED = "cvr_clicked"
RELIABILITY_CTCVR = keys.CTCVR
RELIABILITY_CVR_UNCLICKED_TRUE = "cvr_unclicked_true"
RELIABILITY_CVR_MAR = "cvr_mar"
CVR_BIAS_BY_CTR_BIN_UNCLICKED = "cvr_bias_by_ctr_decile_unclicked"

# Columns of the comparison table, in order, when none are chosen.
DEFAULT_TABLE_METRICS = (
    CTR_AUC,
    CVR_AUC_CLICKED,
    CVR_AUC_EXPOSURE,
    CVR_AUC_MAR,
    CVR_LOGLOSS_MAR,
    CVR_PCOC_MAR,
    CTCVR_AUC,
    GAUC_CTCVR,
    CTCVR_LOGLOSS,
    CVR_PCOC_CLICKED,
    CTCVR_ECE,
    CVR_AUC_TRUE,
    CVR_BIAS_UNCLICKED,
    CVR_RMSE_TRUE,
)
