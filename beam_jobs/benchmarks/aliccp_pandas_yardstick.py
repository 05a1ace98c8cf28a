"""A pandas yardstick for the Ali-CCP Beam job: the same work, one process.

`run_pandas_yardstick(input_path)` reads the raw Ali-CCP files
(`sample_skeleton_{train,test}.csv`, `common_features_{train,test}.csv`),
applies the cleaning rule, joins every impression to its common features on
`(split, common_feature_index)`, keeps the selected fields (single-valued:
the first id; multi-valued: the impression's ids, then the common ones, at
most `max_len`), builds one vocabulary per column on the train split (count
>= min_count, most frequent first, ties by token ascending, at most top_k)
and encodes every id to its index (0 padding, 1 out-of-vocabulary, then the
vocabulary in order). The benchmark compares its rows/s with the Beam job's
(`ReadAliCCP` + vocabularies) on the same files.

With `--write DIR` it also serializes every row with the job's
`ExampleEncoder` and writes gzip TFRecords, so it does all of the job's
work except dead letters, numeric statistics and sharding.

It assumes clean input: it does not produce dead letters, and drops
impressions whose common row is missing (the Beam job rejects them with a
reason). Duplicate common rows keep the row whose text sorts first, and
every copy of a repeated sample id is dropped, as the Beam reader does.

    python -m beam_jobs.benchmarks.aliccp_pandas_yardstick DIR [--fields esmm] [--write OUT]
"""

import argparse
import csv
import json
import os
import sys
import time

import numpy as np
import pandas as pd

from beam_jobs.example_encoder import ExampleEncoder
from beam_jobs.readers.aliccp import fields as fields_lib
from beam_jobs.readers.aliccp.raw_logs import COMMON
from beam_jobs.readers.aliccp.raw_logs import COMMON_COLUMNS
from beam_jobs.readers.aliccp.raw_logs import COMMON_FEATURE_INDEX
from beam_jobs.readers.aliccp.raw_logs import FEATURE_LIST
from beam_jobs.readers.aliccp.raw_logs import NUM_FEATURES
from beam_jobs.readers.aliccp.raw_logs import SAMPLE_ID
from beam_jobs.readers.aliccp.raw_logs import SKELETON
from beam_jobs.readers.aliccp.raw_logs import SKELETON_COLUMNS
from beam_jobs.readers.aliccp.raw_logs import ReadAliCCP
from beam_jobs.readers.aliccp.raw_logs import classify_aliccp_file
from beam_jobs.readers.input_files import match_files
from beam_jobs.transforms.shards import TFRECORD_GZ
from beam_jobs.transforms.shards import write_file
from tfcvr.features import keys

# One out-of-vocabulary bucket (num_oov=1) after the padding index.
_OOV_INDEX = keys.PADDING_INDEX + 1
_FIRST_VOCAB_INDEX = _OOV_INDEX + 1


def _read(paths, names):
    frames = []
    for path, split in paths:
        try:
            frame = pd.read_csv(
                path,
                header=None,
                names=names,
                dtype=object,
                na_filter=False,
                quoting=csv.QUOTE_NONE,
                engine="c",
            )
        except pd.errors.EmptyDataError:
            continue
        frame["split"] = split
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=names + ["split"], dtype=object)
    return pd.concat(frames, ignore_index=True)


def _explode(lists, field_codes):
    """Arrays `(owner, field, feature_id, weight)` of the selected fields in
    log order; `owner` is the position in `lists`, `field` the field's code.
    """
    lists = pd.Series(lists.to_numpy(dtype=object), dtype=object)
    # One split on all three separators per list, then every entry is three
    # consecutive tokens (field, feature id, value), as in AITM's
    # preprocessing; much faster than splitting each entry again.
    tokens = lists[lists != ""].str.split("[\x01\x02\x03]", regex=True)
    tokens = tokens.explode()
    triples = tokens.to_numpy(dtype=object).reshape(-1, 3)
    owner = tokens.index.to_numpy()[::3].astype(np.int64)
    codes = pd.Series(triples[:, 0], dtype=object).map(field_codes)
    keep = codes.notna().to_numpy()
    return (
        owner[keep],
        codes.to_numpy()[keep].astype(np.int64),
        triples[keep, 1].astype(np.int64),
        triples[keep, 2].astype(np.float64),
    )


def _rank_within(group_key):
    """0, 1, 2, ... within each run of equal keys (keys come grouped)."""
    if len(group_key) == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, group_key[1:] != group_key[:-1]])
    lengths = np.diff(np.r_[starts, len(group_key)])
    return np.arange(len(group_key)) - np.repeat(starts, lengths)


def _first_values(owner, field, feature_id, weight, limits, num_fields):
    """Keeps the first `limits[field]` values of each (owner, field)."""
    key = owner * num_fields + field
    order = np.argsort(key, kind="stable")
    rank = np.empty(len(key), dtype=np.int64)
    rank[order] = _rank_within(key[order])
    keep = rank < limits[field]
    return owner[keep], field[keep], feature_id[keep], weight[keep], rank[keep]


def _vocabulary(field, feature_id, fields, min_count, top_k):
    """`{field: [token, ...]}` in vocabulary order (count desc, token asc)."""
    counts = (
        pd.DataFrame({"field": field, "feature_id": feature_id})
        .groupby(["field", "feature_id"], sort=False)
        .size()
        .rename("count")
        .reset_index()
    )
    counts = counts[counts["count"] >= min_count]
    counts["token"] = counts["feature_id"].astype(str)
    counts = counts.sort_values(
        ["field", "count", "token"], ascending=[True, False, True]
    )
    vocab = {f: [] for f in fields}
    for code, group in counts.groupby("field", sort=False):
        tokens = group["token"].tolist()
        vocab[fields[code]] = tokens if top_k is None else tokens[:top_k]
    return vocab


def _write_tfrecords(
    out_dir, input_path, fields, multi, max_len, skeleton,
    owner, field, feature_id, weight, position,
):
    """One Example per impression (raw ids, weights, labels, as the Beam
    job writes them), one gzip TFRecord file per split."""
    schema = ReadAliCCP(
        input_path, fields=list(fields), multi_valued_fields=sorted(multi),
        max_len=max_len, ground_truth=False,
    ).spec.to_schema()
    encoder = ExampleEncoder(schema)
    names = [fields_lib.column_name(f) for f in fields]
    multi_flags = [f in multi for f in fields]
    order = np.lexsort((position, field, owner))
    owner = owner[order]
    bounds = np.searchsorted(owner, np.arange(len(skeleton) + 1)).tolist()
    field = field[order].tolist()
    feature_id = feature_id[order].tolist()
    weight = weight[order].tolist()
    clicks = skeleton[keys.CLICK].astype(int).tolist()
    conversions = skeleton[keys.CONVERSION].astype(int).tolist()
    splits = skeleton["split"].tolist()
    records = {split: [] for split in set(splits)}
    for r, split in enumerate(splits):
        row = {}
        for code, name in enumerate(names):
            if multi_flags[code]:
                row[name] = []
                row[fields_lib.weight_column(name)] = []
        for j in range(bounds[r], bounds[r + 1]):
            code = field[j]
            name = names[code]
            if multi_flags[code]:
                row[name].append(feature_id[j])
                row[fields_lib.weight_column(name)].append(weight[j])
            else:
                row[name] = feature_id[j]
        row[keys.CLICK] = clicks[r]
        row[keys.CONVERSION] = conversions[r]
        records[split].append(encoder.encode(row))
    os.makedirs(out_dir, exist_ok=True)
    for split, payloads in records.items():
        write_file(os.path.join(out_dir, f"{split}.tfrecord.gz"), payloads, TFRECORD_GZ)


def run_pandas_yardstick(
    input_path,
    fields="esmm",
    multi_valued_fields=None,
    max_len=20,
    drop_click0_conversion1=True,
    min_count=1,
    top_k=None,
    return_frames=False,
    write_dir=None,
):
    """Joins, selects and encodes the Ali-CCP files with pandas; timed.

    Args:
        input_path: str. Directory or glob of the raw Ali-CCP files.
        fields, multi_valued_fields, max_len, drop_click0_conversion1: as in
            `beam_jobs.readers.aliccp.ReadAliCCP` (single-valued fields keep
            their first id, like `on_repeated_field="first"`).
        min_count, top_k: vocabulary settings (train split).
        return_frames: bool. Also return the vocabularies and the encoded
            values.
        write_dir: str or None. Also do the rest of the Beam job's work:
            serialize every row as the same `tf.train.Example` bytes (the
            job's `ExampleEncoder`) and write `DIR/{train,eval}.tfrecord.gz`
            with the same framing, inside the timed section.

    Returns:
        dict with `impressions_read` (skeleton lines), `rows` (per split),
        `rows_total`, `missing_common_features`, `click0_conversion1`,
        `duplicate_sample_id`, `vocab_sizes` (per column), `seconds`,
        `rows_per_second` (`rows_total / seconds`) and, with
        `return_frames`, `vocab`
        (`{column: [token, ...]}`) and `encoded`: a long frame of
        `(split, key, column, feature_id, index, weight, position)`, one
        line per kept value.
    """
    start = time.perf_counter()
    fields, multi = fields_lib.resolve_fields(fields, multi_valued_fields)
    field_codes = {f: i for i, f in enumerate(fields)}
    limits = np.array([max_len if f in multi else 1 for f in fields])
    skeleton_paths, common_paths = [], []
    for path in match_files(input_path):
        kind_split = classify_aliccp_file(path)
        if kind_split is None:
            continue
        kind, split = kind_split
        if kind == SKELETON:
            skeleton_paths.append((path, split))
        elif kind == COMMON:
            common_paths.append((path, split))
    if not skeleton_paths:
        raise ValueError(f"No sample_skeleton_* file in {input_path!r}.")

    skeleton = _read(skeleton_paths, list(SKELETON_COLUMNS))
    impressions_read = len(skeleton)
    dropped = 0
    if drop_click0_conversion1:
        bad = (skeleton[keys.CLICK] == "0") & (skeleton[keys.CONVERSION] == "1")
        dropped = int(bad.sum())
        skeleton = skeleton[~bad]
    # Every copy of a repeated (split, sample id) goes (the Beam reader
    # rejects them all as duplicate_sample_id).
    repeated = pd.DataFrame(
        {"split": skeleton["split"], "id": skeleton[SAMPLE_ID].str.strip()}
    ).duplicated(keep=False)
    duplicates = int(repeated.sum())
    skeleton = skeleton[~repeated]

    common = _read(common_paths, list(COMMON_COLUMNS))
    common["line"] = (
        common[COMMON_FEATURE_INDEX]
        + ","
        + common[NUM_FEATURES]
        + ","
        + common[FEATURE_LIST]
    )
    common = common.sort_values("line", kind="stable").drop_duplicates(
        ["split", COMMON_FEATURE_INDEX], keep="first"
    )
    common = common.reset_index(drop=True)

    # Impressions without a common row are dropped (the Beam job rejects
    # them as missing_common_features).
    skeleton = skeleton.merge(
        common[["split", COMMON_FEATURE_INDEX]].reset_index(names="common_row"),
        on=["split", COMMON_FEATURE_INDEX],
        how="inner",
    )
    missing = impressions_read - dropped - duplicates - len(skeleton)
    num_rows, num_fields = len(skeleton), len(fields)

    own = _first_values(
        *_explode(skeleton[FEATURE_LIST], field_codes), limits, num_fields
    )
    # Truncating each side before the join keeps the same first values as
    # truncating the joined lists, without materialising every behaviour id
    # of every impression.
    c_owner, c_field, c_id, c_weight, c_rank = _first_values(
        *_explode(common[FEATURE_LIST], field_codes), limits, num_fields
    )
    # The join: every impression takes its common row's slice of values
    # (values are grouped by common row after the stable sort).
    order = np.argsort(c_owner, kind="stable")
    c_owner, c_field, c_id, c_weight, c_rank = (
        a[order] for a in (c_owner, c_field, c_id, c_weight, c_rank)
    )
    slice_len = np.bincount(c_owner, minlength=len(common))
    slice_start = np.r_[0, np.cumsum(slice_len)[:-1]]
    row_common = skeleton["common_row"].to_numpy()
    lengths = slice_len[row_common]
    offsets = np.r_[0, np.cumsum(lengths)[:-1]]
    within = np.arange(lengths.sum()) - np.repeat(offsets, lengths)
    take = np.repeat(slice_start[row_common], lengths) + within
    s_owner = np.repeat(np.arange(num_rows), lengths)
    s_field = c_field[take]
    # Common values follow the impression's own values of the same field.
    own_count = np.bincount(
        own[0] * num_fields + own[1], minlength=num_rows * num_fields
    )
    s_position = own_count[s_owner * num_fields + s_field] + c_rank[take]
    keep = s_position < limits[s_field]
    owner = np.r_[own[0], s_owner[keep]]
    field = np.r_[own[1], s_field[keep]]
    feature_id = np.r_[own[2], c_id[take][keep]]
    weight = np.r_[own[3], c_weight[take][keep]]
    position = np.r_[own[4], s_position[keep]]

    is_train = (skeleton["split"] == keys.TRAIN_SPLIT).to_numpy()
    train = is_train[owner]
    vocab = _vocabulary(field[train], feature_id[train], fields, min_count, top_k)
    index = np.full(len(owner), _OOV_INDEX, dtype=np.int64)
    for code, f in enumerate(fields):
        at = np.flatnonzero(field == code)
        found = pd.Index(np.array(vocab[f], dtype=np.int64)).get_indexer(
            feature_id[at]
        )
        index[at] = np.where(found >= 0, found + _FIRST_VOCAB_INDEX, _OOV_INDEX)

    if write_dir is not None:
        _write_tfrecords(
            write_dir, input_path, fields, multi, max_len, skeleton,
            owner, field, feature_id, weight, position,
        )
    rows = skeleton["split"].value_counts().to_dict()
    seconds = time.perf_counter() - start
    result = {
        "impressions_read": int(impressions_read),
        "rows": {split: int(n) for split, n in rows.items()},
        "rows_total": int(num_rows),
        "missing_common_features": int(missing),
        "click0_conversion1": dropped,
        "duplicate_sample_id": duplicates,
        "vocab_sizes": {
            fields_lib.column_name(f): len(vocab[f]) for f in fields
        },
        "seconds": seconds,
        "rows_per_second": num_rows / seconds if seconds > 0 else 0.0,
    }
    if return_frames:
        result["vocab"] = {
            fields_lib.column_name(f): list(vocab[f]) for f in fields
        }
        splits = skeleton["split"].to_numpy(dtype=object)[owner]
        sample_ids = skeleton[SAMPLE_ID].to_numpy(dtype=object)[owner]
        columns = np.array([fields_lib.column_name(f) for f in fields])
        result["encoded"] = pd.DataFrame(
            {
                "split": splits,
                "key": [f"{s}:{i}" for s, i in zip(splits, sample_ids)],
                "column": columns[field],
                "feature_id": feature_id,
                "index": index,
                "weight": weight,
                "position": position,
            }
        )
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Time the pandas yardstick of the Ali-CCP Beam job."
    )
    parser.add_argument("input", help="directory or glob of the raw files")
    parser.add_argument("--fields", default="esmm", help="esmm or aitm")
    parser.add_argument("--max-len", type=int, default=20)
    parser.add_argument("--min-count", type=int, default=1)
    parser.add_argument("--write", default=None, metavar="DIR",
                        help="also serialize the Examples and write gzip TFRecords "
                             "to DIR, as the Beam job does (timed)")
    args = parser.parse_args(argv)
    try:
        result = run_pandas_yardstick(
            args.input,
            fields=args.fields,
            max_len=args.max_len,
            min_count=args.min_count,
            write_dir=args.write,
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
