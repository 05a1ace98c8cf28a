import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from tfcvr.evaluation import StreamingGAUC
from tfcvr.evaluation import grouped_auc


def _reference(users, labels, scores):
    num, den, used, skipped = 0.0, 0, 0, 0
    for u in set(users.tolist()):
        rows = users == u
        if labels[rows].min() == labels[rows].max():
            skipped += 1
            continue
        num += rows.sum() * roc_auc_score(labels[rows], scores[rows])
        den += rows.sum()
        used += 1
    return num / den, used, skipped


def test_streaming_gauc_matches_reference_with_string_ids_and_mask():
    rng = np.random.default_rng(3)
    n = 3000
    users = np.array(
        [f"user{u}" for u in rng.integers(0, 200, n)], dtype=object
    )
    labels = rng.integers(0, 2, n)
    scores = rng.integers(0, 20, n) / 20.0
    mask = rng.random(n) < 0.7
    gauc = StreamingGAUC(chunk_rows=500)
    for start in range(0, n, 256):
        part = slice(start, start + 256)
        # TF string tensors come back as bytes; mix both spellings.
        ids = (
            users[part]
            if start % 512
            else np.array([u.encode() for u in users[part]], dtype=object)
        )
        gauc.update(ids, labels[part], scores[part], mask=mask[part])
    got = gauc.result()
    expected, used, skipped = _reference(
        users[mask], labels[mask], scores[mask]
    )
    assert got["gauc"] == pytest.approx(expected, abs=1e-12)
    assert (got["users_used"], got["users_skipped"]) == (used, skipped)
    assert gauc.num_rows == mask.sum()


def test_streaming_gauc_integer_ids_equal_one_shot():
    rng = np.random.default_rng(4)
    users = rng.integers(0, 2**40, 50)[rng.integers(0, 50, 1000)]
    labels = rng.integers(0, 2, 1000)
    scores = rng.random(1000).astype(np.float32)
    gauc = StreamingGAUC()
    for part in np.array_split(np.arange(1000), 7):
        gauc.update(users[part].reshape(-1, 1), labels[part], scores[part])
    one_shot = grouped_auc(users, labels, scores)
    assert gauc.result()["gauc"] == one_shot["gauc"]
    assert gauc.result()["rows_used"] == one_shot["rows_used"]


def test_streaming_gauc_rejects_mixed_id_kinds_and_reset():
    gauc = StreamingGAUC()
    gauc.update([1, 2], [0, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="changed from numeric to string"):
        gauc.update(["a", "b"], [0, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="whole numbers"):
        gauc.update([1.5, 2.0], [0, 1], [0.1, 0.2])
    gauc.reset()
    gauc.update(["a", "a"], [0, 1], [0.1, 0.2])
    assert gauc.result() == {
        "gauc": 1.0,
        "users_used": 1,
        "users_skipped": 0,
        "rows_used": 2,
    }


def test_empty_gauc_is_nan():
    result = StreamingGAUC().result()
    assert np.isnan(result["gauc"]) and result["users_used"] == 0
