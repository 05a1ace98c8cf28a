"""Ali-CCP feature fields: presets, column names, and the `\\x01\\x02\\x03` lists.

A raw Ali-CCP feature list is `field_id\\x02feature_id\\x03value` entries
joined by `\\x01` (Tianchi dataset 408, the ESMM data). `field_id` is a
string such as `101` or `109_14`, `feature_id` a global integer id and
`value` a float (1.0 for most fields; a count or weight for the behaviour
fields `*_14` and the combination fields 508/509/702/853).

Schema column names: field `F` becomes column `fF` (`101` -> `f101`,
`109_14` -> `f109_14`); a weighted multi-valued column also carries
`fF__weight`.
"""

import functools
import math
import re

from beam_jobs.readers import dead_letter as dl
from tfcvr.features import keys


# The 23 fields the PaddleRec ESMM/ESCM2 readers keep, in the column order
# of torch-rechub's preprocessed CSV.
ESMM_FIELDS = (
    "101", "121", "122", "124", "125", "126", "127", "128", "129",
    "205", "206", "207", "210", "216", "508", "509", "702", "853", "301",
    "109_14", "110_14", "127_14", "150_14",
)
# The 18 fields of the AITM preprocessing (Xi et al., KDD 2021), each
# treated as single-valued there.
AITM_FIELDS = (
    "101", "121", "122", "124", "125", "126", "127", "128", "129",
    "205", "206", "207", "216", "508", "509", "702", "853", "301",
)
FIELD_PRESETS = {"esmm": ESMM_FIELDS, "aitm": AITM_FIELDS}
# Fields that hold several ids per impression in Ali-CCP: the user
# behaviour fields (`*_14`), the item intention node 210 and its user cross
# 853 (both repeat in the published PaddleRec samples).
KNOWN_MULTI_VALUED = frozenset(
    {"109_14", "110_14", "127_14", "150_14", "210", "853"}
)
USER_ID_FIELD = "101"
ITEM_ID_FIELD = "205"

ENTRY_SEPARATOR = keys.ALICCP_ENTRY_SEPARATOR
FIELD_SEPARATOR = keys.ALICCP_FIELD_SEPARATOR
VALUE_SEPARATOR = keys.ALICCP_VALUE_SEPARATOR

# A field id: `101`, `109_14`.
FIELD_ID_RE = re.compile(r"[0-9]+(_[0-9]+)?\Z")
# Dead-letter reasons of broken feature lists and repeated fields.
REASON_BAD_FEATURE_LIST = "bad_feature_list"
REASON_BAD_NUM_FEATURES = "bad_num_features"
REASON_NUM_FEATURES_MISMATCH = "num_features_mismatch"
REASON_REPEATED_FIELD = "repeated_single_valued_field"
ON_REPEATED_CHOICES = ("first", "last", "reject")


class FeatureListError(dl.DeadLetter):
    """A broken feature list (a `DeadLetter` with the list's reason)."""


def column_name(field):
    return "f" + field


def weight_column(column):
    return column + keys.WEIGHT_SUFFIX


def id_roles(fields):
    """`{"user_id": "f101", "item_id": "f205"}`, for the selected ones."""
    roles = {}
    if USER_ID_FIELD in fields:
        roles["user_id"] = column_name(USER_ID_FIELD)
    if ITEM_ID_FIELD in fields:
        roles["item_id"] = column_name(ITEM_ID_FIELD)
    return roles


def resolve_fields(fields, multi_valued_fields):
    """`(fields, multi_valued)` from a preset name or a list of field ids.

    `multi_valued_fields=None` picks the preset's default: every field of
    `KNOWN_MULTI_VALUED` for `"esmm"` or a custom list, none for `"aitm"`
    (AITM keeps one id per field).
    """
    preset = fields if isinstance(fields, str) else None
    if preset is not None:
        if preset not in FIELD_PRESETS:
            raise ValueError(
                f"fields must be one of {sorted(FIELD_PRESETS)} or a list of "
                f"field ids. Received: fields={fields!r}"
            )
        fields = FIELD_PRESETS[preset]
    if isinstance(fields, (bytes, dict)) or not hasattr(fields, "__iter__"):
        raise ValueError(
            f"fields must be a preset name or a list of field ids. "
            f"Received: fields={fields!r}"
        )
    # Integer ids are accepted because a JSON option (`fields=[101,205]`)
    # parses to ints.
    fields = tuple(_as_field_id(f) for f in fields)
    bad = [f for f in fields if not isinstance(f, str) or not FIELD_ID_RE.match(f)]
    if not fields or bad:
        raise ValueError(
            f"fields must be non-empty Ali-CCP field ids such as '101' or "
            f"'109_14'. Received: fields={list(fields)!r}"
        )
    if len(set(fields)) != len(fields):
        raise ValueError(f"fields has duplicates. Received: fields={list(fields)}")
    if multi_valued_fields is None:
        if preset == "aitm":
            multi = frozenset()
        else:
            multi = frozenset(f for f in fields if f in KNOWN_MULTI_VALUED)
    else:
        if isinstance(multi_valued_fields, str):
            multi_valued_fields = [multi_valued_fields]
        multi = frozenset(_as_field_id(f) for f in multi_valued_fields)
        unknown = sorted(multi - set(fields))
        if unknown:
            raise ValueError(
                f"multi_valued_fields names fields that are not selected: "
                f"{unknown}. Selected fields: {list(fields)}"
            )
    return fields, multi


def _as_field_id(field):
    if isinstance(field, int) and not isinstance(field, bool):
        return str(field)
    return field


# One well-formed list: entries `field\x02digits\x03decimal` joined by
# \x01. Lists that match take the fast path (one regex check, one
# findall); anything else is parsed entry by entry for the exact error.
_NUMBER = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
_ENTRY = r"[^\x01\x02\x03]+\x02[0-9]+\x03" + _NUMBER
_WELL_FORMED_LIST = re.compile(f"{_ENTRY}(?:\x01{_ENTRY})*\\Z")
# On a well-formed list: one (field, feature id, value) per entry.
_ENTRY_PARTS = re.compile(r"([^\x01\x02\x03]+)\x02([0-9]+)\x03([^\x01]+)")


def parse_feature_list(text):
    """`[(field, feature_id, value), ...]` of a raw list, in log order.

    Raises `FeatureListError` (reason `bad_feature_list`) on a missing
    separator, an empty field id, a feature id that is not a non-negative
    integer or a value that is not a finite float.
    """
    if _WELL_FORMED_LIST.match(text):
        entries = [
            (field, int(feature), float(value))
            for field, feature, value in _ENTRY_PARTS.findall(text)
        ]
        # A literal too large for a double (1e999) passes the pattern as
        # inf; a non-finite sum sends the list to the checked parser.
        if math.isfinite(sum([e[2] for e in entries])):
            return entries
    return _parse_feature_list_checked(text)


def _parse_feature_list_checked(text):
    if not text:
        return []
    entries = []
    for position, entry in enumerate(text.split(ENTRY_SEPARATOR)):
        field, sep, rest = entry.partition(FIELD_SEPARATOR)
        feature_text, sep2, value_text = rest.partition(VALUE_SEPARATOR)
        if not sep or not sep2 or not field:
            raise FeatureListError(
                REASON_BAD_FEATURE_LIST,
                f"entry {position} {entry[:80]!r} is not "
                f"field\\x02feature\\x03value",
            )
        if not (feature_text.isdigit() and feature_text.isascii()):
            raise FeatureListError(
                REASON_BAD_FEATURE_LIST,
                f"entry {position} of field {field!r} has a non-integer "
                f"feature id {feature_text[:40]!r}",
            )
        try:
            value = float(value_text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise FeatureListError(
                REASON_BAD_FEATURE_LIST,
                f"entry {position} of field {field!r} has a non-numeric or "
                f"non-finite value {value_text[:40]!r}",
            )
        entries.append((field, int(feature_text), value))
    return entries


def parse_counted_feature_list(num_features_text, feature_list_text):
    """Parses a feature list and checks it against its `num_features`."""
    if not (num_features_text.isdigit() and num_features_text.isascii()):
        raise FeatureListError(
            REASON_BAD_NUM_FEATURES,
            f"num_features {num_features_text[:40]!r} is not a "
            f"non-negative integer",
        )
    entries = parse_feature_list(feature_list_text)
    if len(entries) != int(num_features_text):
        raise FeatureListError(
            REASON_NUM_FEATURES_MISMATCH,
            f"num_features says {int(num_features_text)} but the feature "
            f"list has {len(entries)} entries",
        )
    return entries


def group_by_field(entries, selected):
    """`{field: [(feature_id, value), ...]}` of the selected fields."""
    grouped = {}
    for field, feature_id, value in entries:
        if field in selected:
            grouped.setdefault(field, []).append((feature_id, value))
    return grouped


def build_columns(
    groups, fields, multi_valued, weighted, max_len, on_repeated
):
    """Schema columns of one row from per-field `(id, value)` lists.

    Args:
        groups: sequence of `{field: [(id, value), ...]}`, concatenated in
            order (the impression's own features, then its common ones).
        fields: the selected field ids.
        multi_valued: set of field ids typed `multi_categorical`.
        weighted: bool. Also emit `f<id>__weight` for multi-valued fields.
        max_len: int. Values kept per multi-valued field (log order).
        on_repeated: `"first"`, `"last"` or `"reject"`: what a single-valued
            field that occurs more than once keeps.

    Returns:
        `(columns, repeated)`: the column dict, and the single-valued fields
        that occurred more than once (empty unless a repeat happened). With
        `on_repeated="reject"` and a repeat, `columns` is None.
    """
    columns = {}
    repeated = []
    pick = -1 if on_repeated == "last" else 0
    for field, name, weight_name, multi in _column_plan(
        tuple(fields), frozenset(multi_valued), weighted
    ):
        values = None
        for group in groups:
            found = group.get(field)
            if found:
                values = found if values is None else values + found
        if multi:
            values = values[:max_len] if values else ()
            columns[name] = [v[0] for v in values]
            if weight_name:
                columns[weight_name] = [v[1] for v in values]
        elif not values:
            columns[name] = None
        else:
            if len(values) > 1:
                repeated.append(field)
            columns[name] = values[pick][0]
    if repeated and on_repeated == "reject":
        return None, repeated
    return columns, repeated


def build_row(
    groups, fields, multi_valued, weighted, max_len, on_repeated, repeats
):
    """The columns of one row (`build_columns`); a repeated single-valued
    field is counted in `repeats` (a Beam counter) and, with
    `on_repeated="reject"`, raises a `DeadLetter`."""
    columns, repeated = build_columns(
        groups, fields, multi_valued, weighted, max_len, on_repeated
    )
    if repeated:
        repeats.inc()
    if columns is None:
        raise dl.DeadLetter(
            REASON_REPEATED_FIELD,
            f"single-valued fields {repeated} occur more than once "
            f"(on_repeated_field='reject')",
        )
    return columns


def spec_columns(fields, multi_valued, max_len, **multi_settings):
    """The `InputSpec` columns of the selected fields: `multi_categorical`
    int64 lists of at most `max_len` ids (plus `multi_settings`) for the
    multi-valued ones, `categorical_int` for the others."""
    columns = {}
    for field in fields:
        if field in multi_valued:
            columns[column_name(field)] = {
                "kind": keys.MULTI_CATEGORICAL,
                "value_dtype": "int64",
                "max_len": max_len,
                **multi_settings,
            }
        else:
            columns[column_name(field)] = {"kind": keys.CATEGORICAL_INT}
    return columns


@functools.lru_cache(maxsize=64)
def _column_plan(fields, multi_valued, weighted):
    """`(field, column, weight column or None, multi)` of each field."""
    plan = []
    for field in fields:
        name = column_name(field)
        multi = field in multi_valued
        weight_name = weight_column(name) if multi and weighted else None
        plan.append((field, name, weight_name, multi))
    return tuple(plan)


def format_feature_list(entries):
    """Inverse of `parse_feature_list`: `[(field, id, value), ...]` -> str."""
    return ENTRY_SEPARATOR.join(
        f"{field}{FIELD_SEPARATOR}{feature_id}{VALUE_SEPARATOR}{float(value)!r}"
        for field, feature_id, value in entries
    )


def format_skeleton_line(sample_id, click, conversion, common_index, entries):
    """One `sample_skeleton_*.csv` line (no newline)."""
    return ",".join(
        [
            str(sample_id),
            str(click),
            str(conversion),
            common_index,
            str(len(entries)),
            format_feature_list(entries),
        ]
    )


def format_common_line(common_index, entries):
    """One `common_features_*.csv` line (no newline)."""
    return ",".join(
        [common_index, str(len(entries)), format_feature_list(entries)]
    )
