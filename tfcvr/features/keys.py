"""The one place where label, output and special column names are spelled.

Every other module imports these constants; no other string literal names a
label, an output or a ground-truth column.
"""

# === Labels (columns of the logs and of the TFRecords) ===
CLICK = "click"
CONVERSION = "conversion"
LABEL_KEYS = (CLICK, CONVERSION)

# === Ground truth, present only in simulated data ===
TRUE_CTR = "true_ctr"
TRUE_CVR = "true_cvr"
CONVERSION_IF_CLICKED = "conversion_if_clicked"
GROUND_TRUTH_KEYS = (TRUE_CTR, TRUE_CVR, CONVERSION_IF_CLICKED)

# === Other non-feature columns ===
ROW_ID = "row_id"
TIMESTAMP = "timestamp"
# The label a trainer adds to the batches when the IPW/DR family's click
# propensity comes from outside the model (a separately trained CTR model
# or a logged propensity column); models never compute it themselves.
PROPENSITY = "propensity"

# === Model outputs (also the TF Serving output names) ===
CTR = "ctr"
CVR = "cvr"
CTCVR = "ctcvr"
SERVING_OUTPUTS = (CTR, CVR, CTCVR)

# === Feature kinds (schema.json "kind") ===
CATEGORICAL_INT = "categorical_int"
CATEGORICAL_STRING = "categorical_string"
MULTI_CATEGORICAL = "multi_categorical"
NUMERIC = "numeric"
CATEGORICAL_KINDS = (CATEGORICAL_INT, CATEGORICAL_STRING, MULTI_CATEGORICAL)
FEATURE_KINDS = (CATEGORICAL_INT, CATEGORICAL_STRING, MULTI_CATEGORICAL, NUMERIC)

# === Index layout of every encoded categorical feature ===
# 0 is padding / missing value, 1 .. num_oov are out-of-vocabulary buckets,
# vocabulary entries follow in vocab-file order.
PADDING_INDEX = 0
# A weighted multi-valued feature `f` carries its per-value weights in the
# column `f + WEIGHT_SUFFIX`.
WEIGHT_SUFFIX = "__weight"

# === Files of a preprocessed dataset directory ===
SCHEMA_FILE = "schema.json"
# Rows in, written and rejected, per split (the Beam job's accounting).
SUMMARY_FILE = "summary.json"
VOCAB_DIR = "vocab"
TRAIN_SPLIT = "train"
EVAL_SPLIT = "eval"
REJECTED_DIR = "rejected"
# Model inputs already encoded for training (`tfcvr.data.encode_splits`):
# ENCODED_DIR/<split>/part-*.tfrecord and its ENCODED_MANIFEST_FILE.
ENCODED_DIR = "encoded"
ENCODED_MANIFEST_FILE = "manifest.json"

# === The raw Ali-CCP log format (Tianchi dataset 408) ===
# Written by tfcvr.simulation, read by beam_jobs.readers.aliccp. A feature
# list is `field_id \x02 feature_id \x03 value` entries joined by \x01.
ALICCP_SKELETON_FILE = "sample_skeleton_{}.csv"
ALICCP_COMMON_FILE = "common_features_{}.csv"
ALICCP_ENTRY_SEPARATOR = "\x01"
ALICCP_FIELD_SEPARATOR = "\x02"
ALICCP_VALUE_SEPARATOR = "\x03"

# === Auxiliary outputs ===
# Imputation head of the doubly robust estimators: the imputed CVR error, or
# a pseudo CVR label for MRDR's double learning.
IMPUTATION = "imputation"
# DCMT's counterfactual twin: P(conversion | do(click = 1)) read as the
# flipped label of the factual tower.
COUNTERFACTUAL_CVR = "counterfactual_cvr"
# ESM2's post-click action (DAction: add-to-cart, wishlist, ...) label
# column, its default name, and the P(click & DAction) output.
ACTION = "action"
CTAVR = "ctavr"
# ChorusCVR's unCVR tower, P(no conversion | click), and the CTunCVR task it
# forms with the CTR tower, P(click & no conversion) = ctr * uncvr.
UNCVR = "uncvr"
CTUNCVR = "ctuncvr"
# DDPO's conversion propensity tower, P(conversion | click) learnt on clicks
# only; its output is the pseudo conversion label of the unclicked rows.
CONVERSION_PROPENSITY = "conversion_propensity"
