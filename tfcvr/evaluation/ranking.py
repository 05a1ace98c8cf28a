"""Exact, tie-aware ROC AUC and per-group (per-user) AUC in numpy.

AUC = P(score of a random positive > score of a random negative) + 1/2 P(tie),
which is the area under the trapezoidal ROC curve (the value
`sklearn.metrics.roc_auc_score` returns). Both functions sort once and count
in int64, so the result is the exact rational number rounded once to float.
"""

import numpy as np

from tfcvr.evaluation import _validation


def _tie_runs(new_run, labels):
    """Start, end and positive count of each run of equal sort keys."""
    starts = np.flatnonzero(new_run)
    ends = np.append(starts[1:], len(new_run))
    cum_pos = np.concatenate(([0], np.cumsum(labels, dtype=np.int64)))
    positives = cum_pos[ends] - cum_pos[starts]
    return starts, ends, positives, cum_pos


def roc_auc(labels, scores):
    """Exact ROC AUC with ties counted 1/2.

    Args:
        labels: array of 0/1 (or bool), shape (n,) or (n, 1).
        scores: array of finite floats, same length.

    Returns:
        float; NaN when the rows hold no positive or no negative.
    """
    labels = _validation.binary("labels", labels)
    scores = _validation.scores("scores", scores, len(labels), dtype=None)
    return _roc_auc(labels, scores)[0]


def _roc_auc(labels, scores):
    """AUC, positives and negatives of validated bool labels and scores."""
    order = np.argsort(scores, kind="stable")
    return _roc_auc_sorted(labels[order], scores[order])


def _roc_auc_sorted(labels, scores):
    """AUC, positives and negatives of rows already sorted by score."""
    n = len(labels)
    if n == 0:
        return float("nan"), 0, 0
    new_run = np.empty(n, dtype=bool)
    new_run[0] = True
    np.not_equal(scores[1:], scores[:-1], out=new_run[1:])
    starts, ends, pos, cum_pos = _tie_runs(new_run, labels)
    neg = (ends - starts) - pos
    neg_below = starts - cum_pos[starts]
    num_pos = int(cum_pos[-1])
    num_neg = n - num_pos
    if num_pos == 0 or num_neg == 0:
        return float("nan"), num_pos, num_neg
    # Twice the Mann-Whitney count, in integers: each positive beats the
    # negatives below its run and ties with half of those in its run.
    twice_wins = int(np.sum(pos * (2 * neg_below + neg), dtype=np.int64))
    return twice_wins / (2.0 * num_pos * num_neg), num_pos, num_neg


def grouped_auc(groups, labels, scores):
    """Impression-weighted mean of per-group AUC (GAUC).

    GAUC = sum_u n_u AUC_u / sum_u n_u over groups u (users) whose rows hold
    both classes, n_u being the group's row count; single-class groups have
    no AUC and are skipped (and counted). Vectorised: one lexsort by
    (group, score), no Python loop over groups.

    Args:
        groups: integer array of group ids, shape (n,).
        labels: array of 0/1, shape (n,).
        scores: array of finite floats, shape (n,).

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
    return _grouped_auc(groups, labels, scores)


def _grouped_auc(groups, labels, scores):
    n = len(groups)
    if n == 0:
        return {
            "gauc": float("nan"),
            "groups_used": 0,
            "groups_skipped": 0,
            "rows_used": 0,
        }
    order = np.lexsort((scores, groups))
    groups = groups[order]
    scores = scores[order]
    labels = labels[order]
    new_group = np.empty(n, dtype=bool)
    new_group[0] = True
    np.not_equal(groups[1:], groups[:-1], out=new_group[1:])
    new_run = new_group.copy()
    new_run[1:] |= scores[1:] != scores[:-1]

    starts, ends, pos, cum_pos = _tie_runs(new_run, labels)
    neg = (ends - starts) - pos
    neg_before_run = starts - cum_pos[starts]

    group_starts = np.flatnonzero(new_group)
    group_ends = np.append(group_starts[1:], n)
    group_pos = cum_pos[group_ends] - cum_pos[group_starts]
    group_rows = group_ends - group_starts
    group_neg = group_rows - group_pos
    # Runs never straddle groups, so each group's runs are contiguous and
    # its first run starts where the group starts.
    first_run = np.searchsorted(starts, group_starts)
    run_group = np.repeat(np.arange(len(group_starts)), np.diff(
        np.append(first_run, len(starts))
    ))
    neg_below = neg_before_run - (group_starts - cum_pos[group_starts])[run_group]
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
