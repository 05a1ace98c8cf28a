"""Exact, tie-aware ROC AUC and per-group (per-user) AUC in numpy.

AUC = P(score of a random positive > score of a random negative) + 1/2 P(tie),
which is the area under the trapezoidal ROC curve (the value
`sklearn.metrics.roc_auc_score` returns). Both functions sort once and count
in int64, so the result is the exact rational number rounded once to float.

Float32 scores (what a model emits) take a fast path: the score's bits, the
label and the group are packed into one uint64 whose plain `np.sort` orders
rows by (group, score), several times faster than `argsort`/`lexsort` on
10^7 rows. Other dtypes are sorted with `argsort`/`lexsort`; both paths give
the same numbers.
"""

import numpy as np

from tfcvr.evaluation import _validation

_U32 = np.uint64(0xFFFFFFFF)


def _float32_key(scores):
    """Monotone map of float32 values to uint64 keys below 2**32."""
    # Adding +0.0 turns -0.0 into +0.0, so the two compare as a tie.
    bits = (scores + np.float32(0.0)).view(np.uint32)
    negative = bits >= np.uint32(0x80000000)
    return np.where(negative, ~bits, bits | np.uint32(0x80000000)).astype(
        np.uint64
    )


def argsort(values):
    """Indices that sort `values` ascending (order among ties unspecified)."""
    values = np.asarray(values)
    if values.dtype == np.float32 and len(values) < 2**32:
        packed = (_float32_key(values) << np.uint64(32)) | np.arange(
            len(values), dtype=np.uint64
        )
        packed.sort()
        return (packed & _U32).astype(np.intp)
    return np.argsort(values, kind="quicksort")


def _dense_codes(groups):
    """Group ids as codes in [0, 2**31) keeping their order."""
    if len(groups) == 0 or (groups.min() >= 0 and groups.max() < 2**31):
        return groups.astype(np.uint64)
    order = np.argsort(groups, kind="quicksort")
    sorted_groups = groups[order]
    new = np.empty(len(groups), dtype=bool)
    new[0] = True
    np.not_equal(sorted_groups[1:], sorted_groups[:-1], out=new[1:])
    codes = np.empty(len(groups), dtype=np.uint64)
    codes[order] = np.cumsum(new, dtype=np.uint64) - np.uint64(1)
    return codes


def _sort_rows(labels, scores, groups=None):
    """Rows sorted by (group, score): (groups or None, score keys, labels).

    Score keys compare equal exactly when the scores do.
    """
    if scores.dtype == np.float32 and (groups is None or len(groups) < 2**31):
        packed = (_float32_key(scores) << np.uint64(1)) | labels.astype(
            np.uint64
        )
        if groups is not None:
            packed |= _dense_codes(groups) << np.uint64(33)
        packed.sort()
        sorted_groups = None if groups is None else packed >> np.uint64(33)
        return (
            sorted_groups,
            (packed >> np.uint64(1)) & _U32,
            (packed & np.uint64(1)).astype(bool),
        )
    if groups is None:
        order = np.argsort(scores, kind="quicksort")
        return None, scores[order], labels[order]
    order = np.lexsort((scores, groups))
    return groups[order], scores[order], labels[order]


def _runs(sorted_groups, score_keys, labels):
    """Start, end, positives of each run of equal (group, score); cum. pos."""
    n = len(labels)
    new_run = np.empty(n, dtype=bool)
    new_run[0] = True
    np.not_equal(score_keys[1:], score_keys[:-1], out=new_run[1:])
    if sorted_groups is not None:
        new_run[1:] |= sorted_groups[1:] != sorted_groups[:-1]
    starts = np.flatnonzero(new_run)
    ends = np.append(starts[1:], n)
    cum_pos = np.concatenate(([0], np.cumsum(labels, dtype=np.int64)))
    positives = cum_pos[ends] - cum_pos[starts]
    return starts, ends, positives, cum_pos


def roc_auc(labels, scores):
    """Exact ROC AUC with ties counted 1/2.

    Args:
        labels: array of 0/1 (or bool), shape (n,) or (n, 1).
        scores: array of finite numbers, same length.

    Returns:
        float; NaN when the rows hold no positive or no negative.
    """
    labels = _validation.binary("labels", labels)
    scores = _validation.scores("scores", scores, len(labels), dtype=None)
    return _roc_auc(labels, scores)[0]


def _roc_auc(labels, scores):
    """(AUC, positives, negatives) of validated bool labels and scores."""
    n = len(labels)
    num_pos = int(np.count_nonzero(labels))
    num_neg = n - num_pos
    if num_pos == 0 or num_neg == 0:
        return float("nan"), num_pos, num_neg
    _, keys, sorted_labels = _sort_rows(labels, scores)
    starts, ends, pos, cum_pos = _runs(None, keys, sorted_labels)
    neg = (ends - starts) - pos
    neg_below = starts - cum_pos[starts]
    # Twice the Mann-Whitney count, in integers: each positive beats the
    # negatives below its run and ties with half of those in its run.
    twice_wins = int(np.sum(pos * (2 * neg_below + neg), dtype=np.int64))
    return twice_wins / (2.0 * num_pos * num_neg), num_pos, num_neg


def grouped_auc(groups, labels, scores):
    """Impression-weighted mean of per-group AUC (GAUC).

    GAUC = sum_u n_u AUC_u / sum_u n_u over groups u (users) whose rows hold
    both classes, n_u being the group's row count; single-class groups have
    no AUC and are skipped (and counted). Vectorised: one sort by
    (group, score), no Python loop over groups.

    Args:
        groups: integer array of group ids, shape (n,).
        labels: array of 0/1, shape (n,).
        scores: array of finite numbers, shape (n,).

    Returns:
        dict with `gauc` (float, NaN when no group has both classes),
        `groups_used`, `groups_skipped` and `rows_used` (ints).
    """
    groups = _validation.as_vector("groups", groups)
    if groups.dtype.kind not in "iub":
        raise ValueError(
            "`groups` must be integer ids (factorise strings first). "
            f"Received: dtype={groups.dtype}"
        )
    labels = _validation.binary("labels", labels, len(groups))
    scores = _validation.scores("scores", scores, len(groups), dtype=None)
    return _grouped_auc(groups.astype(np.int64), labels, scores)


def _grouped_auc(groups, labels, scores):
    n = len(groups)
    if n == 0:
        return {
            "gauc": float("nan"),
            "groups_used": 0,
            "groups_skipped": 0,
            "rows_used": 0,
        }
    sorted_groups, keys, labels = _sort_rows(labels, scores, groups)
    starts, ends, pos, cum_pos = _runs(sorted_groups, keys, labels)
    neg = (ends - starts) - pos
    neg_before_run = starts - cum_pos[starts]

    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    np.not_equal(sorted_groups[1:], sorted_groups[:-1], out=new_group[1:])
    group_starts = np.flatnonzero(new_group)
    group_ends = np.append(group_starts[1:], n)
    group_pos = cum_pos[group_ends] - cum_pos[group_starts]
    group_rows = group_ends - group_starts
    group_neg = group_rows - group_pos
    # Runs never straddle groups, so each group's runs are contiguous and
    # its first run starts where the group starts.
    first_run = np.searchsorted(starts, group_starts)
    runs_per_group = np.diff(np.append(first_run, len(starts)))
    run_group = np.repeat(np.arange(len(group_starts)), runs_per_group)
    neg_below = (
        neg_before_run - (group_starts - cum_pos[group_starts])[run_group]
    )
    twice_wins = np.add.reduceat(pos * (2 * neg_below + neg), first_run)

    used = (group_pos > 0) & (group_neg > 0)
    rows_used = int(group_rows[used].sum())
    if rows_used == 0:
        gauc = float("nan")
    else:
        auc = twice_wins[used] / (
            2.0 * group_pos[used].astype(np.float64) * group_neg[used]
        )
        gauc = float(np.sum(group_rows[used] * auc) / rows_used)
    return {
        "gauc": gauc,
        "groups_used": int(used.sum()),
        "groups_skipped": int((~used).sum()),
        "rows_used": rows_used,
    }
