import math

import numpy as np

from tfcvr.evaluation import _validation
from tfcvr.evaluation import calibration
from tfcvr.evaluation import metric_names as m
from tfcvr.evaluation import pointwise
from tfcvr.evaluation import ranking
from tfcvr.evaluation._column_buffer import ColumnBuffer
from tfcvr.evaluation._user_ids import UserIdEncoder
from tfcvr.features import keys


def _present(column):
    """False for a missing ground-truth column or one that is all NaN.

    The TFRecord parser fills an absent extra column with NaN, so a schema
    that declares ground truth the data lacks yields all-NaN batches.
    """
    if column is None:
        return False
    array = _validation.to_numpy(column)
    if array.dtype.kind == "f" and array.size and np.isnan(array).all():
        return False
    return True


class CVREvaluator:
    """Every CTR/CVR/CTCVR metric of an entire-space model, over batches.

    Reports each protocol under its own name (see `metric_names`):
    - ranking: `ctr_auc` (pCTR vs click, all rows), `cvr_auc_clicked` (pCVR
      vs conversion on clicked rows, the ESMM protocol), `cvr_auc_exposure`
      (pCVR vs click*conversion on all rows, the DCMT/NISE protocol),
      `ctcvr_auc` (the model's pCTCVR vs click*conversion on all rows);
    - log loss (probabilities clipped to [eps, 1 - eps]): `ctr_logloss`,
      `cvr_logloss_clicked`, `ctcvr_logloss`;
    - calibration: PCOC = mean prediction / observed rate, ECE over
      equal-mass bins, reliability curves (`calibration` module) for pCTR,
      pCVR on clicked rows and pCTCVR;
    - with user ids: `gauc_ctr`, `gauc_cvr_clicked`, `gauc_ctcvr` (per-user
      AUC weighted by impressions) with `<name>_users_used/_users_skipped`;
    - with simulated ground truth (`true_cvr`, `conversion_if_clicked` in the
      labels): `cvr_auc_true` (pCVR vs conversion_if_clicked on all rows),
      `cvr_bias_unclicked` / `cvr_bias_clicked` (mean pCVR - mean true CVR),
      `cvr_rmse_true` (all rows), `cvr_pcoc_unclicked_true`,
      `cvr_ece_unclicked_true`, and the unclicked-row bias per equal-mass pCTR
      bin (deciles by default), which shows selection bias: the rows a
      model rarely sees clicked are where a naive CVR model is wrong.

    - on a randomised (missing-at-random) test, where every row's
      conversion outcome is observed: `cvr_auc_mar`, `cvr_logloss_mar`,
      `cvr_pcoc_mar`, `cvr_ece_mar` (and `gauc_cvr_mar`, reliability
      `cvr_mar`) of pCVR against the conversion label on every row,
      instead of the clicked and exposure CVR metrics, which are then not
      reported; `protocol` says which protocol a result used and
      `protocol_reason` why.

    A metric with no defined value (e.g. no clicked conversion) is NaN, is
    listed under `undefined_metrics`, and its AUC support counts say why.
    Rows are stored once, columnar (about 16 bytes per row, 5 more with
    ground truth, 8 more with user ids), and every metric is computed
    exactly by `result()`.

    Args:
        num_bins: int. Equal-mass bins of the ECE and reliability curves.
            Defaults to 10.
        num_ctr_bins: int. Equal-mass pCTR bins of the unclicked-row CVR
            bias breakdown. Defaults to 10 (deciles).
        epsilon: float. Log-loss clip. Defaults to 1e-7.
        score_dtype: str. Storage dtype of predictions and true CVR.
            Defaults to `"float32"`, what the model emits.
        chunk_rows: int. Rows per storage chunk. Defaults to 2**20.
        protocol: str. `"mar"` (every row's outcome observed, e.g. a
            randomised test log), `"observational"` (a logged policy's
            impressions: clicked-row and exposure CVR metrics) or `"auto"`
            (MAR exactly when every row is clicked, the shape of a
            randomised test where all assigned items were rated; a log that
            keeps only the clicked rows of a logged policy looks the same,
            so say `"observational"` for one). Defaults to `"auto"`.

    Inputs of `update` have shape (B,) or (B, 1).
    """

    def __init__(
        self,
        num_bins=10,
        num_ctr_bins=10,
        epsilon=pointwise.DEFAULT_EPSILON,
        score_dtype="float32",
        chunk_rows=2**20,
        protocol=m.PROTOCOL_AUTO,
    ):
        calibration._check_num_bins(num_bins)
        calibration._check_num_bins(num_ctr_bins)
        pointwise._check_epsilon(epsilon)
        if score_dtype not in ("float32", "float64"):
            raise ValueError(
                "`score_dtype` must be 'float32' or 'float64'. Received: "
                f"score_dtype={score_dtype!r}"
            )
        if isinstance(chunk_rows, bool) or int(chunk_rows) < 1:
            raise ValueError(
                "`chunk_rows` must be positive. Received: "
                f"chunk_rows={chunk_rows}"
            )
        if protocol not in m.PROTOCOLS:
            raise ValueError(
                f"`protocol` must be one of {list(m.PROTOCOLS)}. Received: "
                f"protocol={protocol!r}"
            )
        self.num_bins = num_bins
        self.num_ctr_bins = num_ctr_bins
        self.epsilon = epsilon
        self.score_dtype = score_dtype
        self.chunk_rows = chunk_rows
        self.protocol = protocol
        self.reset()

    def get_config(self):
        return {
            "num_bins": self.num_bins,
            "num_ctr_bins": self.num_ctr_bins,
            "epsilon": self.epsilon,
            "score_dtype": self.score_dtype,
            "chunk_rows": self.chunk_rows,
            "protocol": self.protocol,
        }

    def _resolve_protocol(self, click):
        """`(is_mar, reason)` for the rows seen."""
        if self.protocol == m.PROTOCOL_MAR:
            return True, "requested"
        if self.protocol == m.PROTOCOL_OBSERVATIONAL:
            return False, "requested"
        if len(click) and click.all():
            return True, f"every row has {keys.CLICK} = 1"
        return False, f"some rows have {keys.CLICK} = 0"

    def reset(self):
        self._buffer = None
        self._has_users = None
        self._truth_keys = None
        self._encoder = UserIdEncoder()
        self._unclicked_conversions = 0

    @property
    def num_rows(self):
        return 0 if self._buffer is None else len(self._buffer)

    def _new_buffer(self, has_users, truth_keys):
        columns = {
            keys.CTR: self.score_dtype,
            keys.CVR: self.score_dtype,
            keys.CTCVR: self.score_dtype,
            keys.CLICK: np.uint8,
            keys.CONVERSION: np.uint8,
        }
        if has_users:
            columns["user"] = np.int64
        if keys.TRUE_CVR in truth_keys:
            columns[keys.TRUE_CVR] = self.score_dtype
        if keys.CONVERSION_IF_CLICKED in truth_keys:
            columns[keys.CONVERSION_IF_CLICKED] = np.uint8
        return ColumnBuffer(columns, chunk_rows=self.chunk_rows)

    def update(self, predictions, labels, user_ids=None):
        """Adds a batch.

        Args:
            predictions: dict with probabilities under `keys.CTR`, `keys.CVR`
                and `keys.CTCVR` (other keys are ignored).
            labels: dict with 0/1 `keys.CLICK` and `keys.CONVERSION`, and
                optionally `keys.TRUE_CVR` (probabilities) and
                `keys.CONVERSION_IF_CLICKED` (0/1) on simulated data; a
                ground-truth column that is entirely NaN counts as absent,
                a partly NaN one is an error. Other keys are ignored.
            user_ids: optional int or string array of the batch's users.
        """
        for name, given, needed in (
            ("predictions", predictions, (keys.CTR, keys.CVR, keys.CTCVR)),
            ("labels", labels, (keys.CLICK, keys.CONVERSION)),
        ):
            if not hasattr(given, "keys"):
                raise ValueError(
                    f"`{name}` must be a dict with keys {list(needed)}. "
                    f"Received: {type(given).__name__}"
                )
            missing = [k for k in needed if k not in given]
            if missing:
                raise ValueError(
                    f"`{name}` is missing {missing}. Received keys: "
                    f"{sorted(given.keys())}"
                )
        click = _validation.binary(keys.CLICK, labels[keys.CLICK])
        n = len(click)
        row = {
            keys.CLICK: click,
            keys.CONVERSION: _validation.binary(
                keys.CONVERSION, labels[keys.CONVERSION], n
            ),
        }
        for key in (keys.CTR, keys.CVR, keys.CTCVR):
            row[key] = _validation.probabilities(
                f"predictions[{key!r}]",
                predictions[key],
                n,
                dtype=self.score_dtype,
            )
        truth_keys = tuple(
            k
            for k in (keys.TRUE_CVR, keys.CONVERSION_IF_CLICKED)
            if _present(labels.get(k))
        )
        if keys.TRUE_CVR in truth_keys:
            row[keys.TRUE_CVR] = _validation.probabilities(
                keys.TRUE_CVR, labels[keys.TRUE_CVR], n, dtype=self.score_dtype
            )
        if keys.CONVERSION_IF_CLICKED in truth_keys:
            row[keys.CONVERSION_IF_CLICKED] = _validation.binary(
                keys.CONVERSION_IF_CLICKED,
                labels[keys.CONVERSION_IF_CLICKED],
                n,
            )
        has_users = user_ids is not None
        if self._buffer is not None and (
            has_users != self._has_users or truth_keys != self._truth_keys
        ):
            raise ValueError(
                "Every batch must carry the same optional inputs. First batch: "
                f"user_ids={'yes' if self._has_users else 'no'}, ground truth="
                f"{list(self._truth_keys)}; this batch: user_ids="
                f"{'yes' if has_users else 'no'}, ground truth="
                f"{list(truth_keys)}"
            )
        if has_users:
            row["user"] = self._encoder.encode(user_ids, n)
        if self._buffer is None:
            self._buffer = self._new_buffer(has_users, truth_keys)
            self._has_users = has_users
            self._truth_keys = truth_keys
        self._unclicked_conversions += int(
            np.count_nonzero(row[keys.CONVERSION] & ~click)
        )
        self._buffer.append(**row)

    # === Result ===

    def result(self):
        """Every metric as a JSON-ready dict (floats, ints, nested lists).

        Ground-truth and GAUC entries appear only when those inputs were
        given. NaN marks an undefined metric.
        """
        buffer = self._buffer
        if buffer is None:
            buffer = self._new_buffer(False, ())
        has_users = bool(self._has_users)
        truth_keys = self._truth_keys or ()
        col = buffer.column
        click = col(keys.CLICK).view(bool)
        purchase = click & col(keys.CONVERSION).view(bool)
        ctr, cvr, ctcvr = col(keys.CTR), col(keys.CVR), col(keys.CTCVR)
        clicked_cvr = cvr[click]
        clicked_purchase = purchase[click]

        mar, reason = self._resolve_protocol(click)
        out = {
            m.PROTOCOL: m.PROTOCOL_MAR if mar else m.PROTOCOL_OBSERVATIONAL,
            m.PROTOCOL_REASON: reason,
            m.NUM_ROWS: self.num_rows,
            m.NUM_CLICKS: int(np.count_nonzero(click)),
            m.NUM_CONVERSIONS: int(np.count_nonzero(purchase)),
            m.NUM_UNCLICKED_CONVERSIONS: self._unclicked_conversions,
        }
        support = {}

        def auc(name, labels, scores):
            value, positives, negatives = ranking._roc_auc(labels, scores)
            out[name] = float(value)
            support[name] = {"positives": positives, "negatives": negatives}

        if mar:
            # Every row's outcome is observed: the conversion label itself,
            # on every row, whatever the click column says.
            observed = col(keys.CONVERSION).view(bool)
            cvr_curve = (
                m.RELIABILITY_CVR_MAR, m.CVR_PCOC_MAR, m.CVR_ECE_MAR,
                observed, cvr,
            )
        else:
            cvr_curve = (
                m.RELIABILITY_CVR_CLICKED, m.CVR_PCOC_CLICKED,
                m.CVR_ECE_CLICKED, clicked_purchase, clicked_cvr,
            )

        auc(m.CTR_AUC, click, ctr)
        if mar:
            auc(m.CVR_AUC_MAR, observed, cvr)
        else:
            auc(m.CVR_AUC_CLICKED, clicked_purchase, clicked_cvr)
            auc(m.CVR_AUC_EXPOSURE, purchase, cvr)
        auc(m.CTCVR_AUC, purchase, ctcvr)

        eps = self.epsilon
        out[m.CTR_LOGLOSS] = pointwise._log_loss(click, ctr, eps)
        if mar:
            out[m.CVR_LOGLOSS_MAR] = pointwise._log_loss(observed, cvr, eps)
        else:
            out[m.CVR_LOGLOSS_CLICKED] = pointwise._log_loss(
                clicked_purchase, clicked_cvr, eps
            )
        out[m.CTCVR_LOGLOSS] = pointwise._log_loss(purchase, ctcvr, eps)

        reliability = {}
        for curve_name, pcoc_name, ece_name, targets, preds in (
            (m.RELIABILITY_CTR, m.CTR_PCOC, m.CTR_ECE, click, ctr),
            cvr_curve,
            (m.RELIABILITY_CTCVR, m.CTCVR_PCOC, m.CTCVR_ECE, purchase, ctcvr),
        ):
            curve = calibration._reliability_curve(
                targets, preds, self.num_bins
            )
            reliability[curve_name] = curve
            out[pcoc_name] = calibration._pcoc(targets, preds)
            out[ece_name] = calibration.ece_from_reliability(curve)

        if has_users:
            users = col("user")
            for name, mask, labels, scores in (
                (m.GAUC_CTR, None, click, ctr),
                (m.GAUC_CVR_MAR, None, observed, cvr) if mar
                else (m.GAUC_CVR_CLICKED, click, purchase, cvr),
                (m.GAUC_CTCVR, None, purchase, ctcvr),
            ):
                if mask is None:
                    g = ranking._grouped_auc(users, labels, scores)
                else:
                    g = ranking._grouped_auc(
                        users[mask], labels[mask], scores[mask]
                    )
                out[name] = g["gauc"]
                out[name + m.USERS_USED_SUFFIX] = g["groups_used"]
                out[name + m.USERS_SKIPPED_SUFFIX] = g["groups_skipped"]

        if keys.CONVERSION_IF_CLICKED in truth_keys:
            auc(m.CVR_AUC_TRUE, col(keys.CONVERSION_IF_CLICKED).view(bool), cvr)
        bias_by_ctr_bin = None
        if keys.TRUE_CVR in truth_keys:
            true_cvr = col(keys.TRUE_CVR)
            unclicked = ~click
            cvr_u, true_u = cvr[unclicked], true_cvr[unclicked]
            out[m.CVR_BIAS_UNCLICKED] = pointwise._mean_bias(true_u, cvr_u)
            out[m.CVR_BIAS_CLICKED] = pointwise._mean_bias(
                true_cvr[click], clicked_cvr
            )
            out[m.CVR_RMSE_TRUE] = pointwise._rmse(true_cvr, cvr)
            out[m.CVR_PCOC_UNCLICKED_TRUE] = calibration._pcoc(true_u, cvr_u)
            curve = calibration._reliability_curve(true_u, cvr_u, self.num_bins)
            reliability[m.RELIABILITY_CVR_UNCLICKED_TRUE] = curve
            out[m.CVR_ECE_UNCLICKED_TRUE] = calibration.ece_from_reliability(
                curve
            )
            bias_by_ctr_bin = self._bias_by_ctr_bin(
                ctr[unclicked], cvr_u, true_u
            )

        out[m.UNDEFINED_METRICS] = sorted(
            name
            for name, value in out.items()
            if isinstance(value, float) and math.isnan(value)
        )
        out[m.SUPPORT] = support
        out[m.RELIABILITY] = reliability
        if bias_by_ctr_bin is not None:
            out[m.CVR_BIAS_BY_CTR_BIN_UNCLICKED] = bias_by_ctr_bin
        return out

    def _bias_by_ctr_bin(self, ctr, cvr, true_cvr):
        bins = calibration._binned_means(
            ctr,
            {"mean_ctr": ctr, "mean_cvr": cvr, "mean_true_cvr": true_cvr},
            self.num_ctr_bins,
        )
        return {
            "mean_ctr": bins["mean_ctr"].tolist(),
            "mean_cvr": bins["mean_cvr"].tolist(),
            "mean_true_cvr": bins["mean_true_cvr"].tolist(),
            "bias": (bins["mean_cvr"] - bins["mean_true_cvr"]).tolist(),
            "count": [int(c) for c in bins["count"]],
            "lower_ctr": bins["lower"].tolist(),
            "upper_ctr": bins["upper"].tolist(),
        }
