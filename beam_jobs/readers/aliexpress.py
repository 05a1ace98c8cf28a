import re

import apache_beam as beam

from beam_jobs.readers import aliccp_header_csv as csv_lib
from beam_jobs.readers import aliccp_io as io_lib
from beam_jobs.readers.input_files import match_files
from tfcvr.features import keys

SEARCH_ID_COLUMN = "search_id"
# The AliExpress header names its labels like the schema does.
CLICK_COLUMN = keys.CLICK
CONVERSION_COLUMN = keys.CONVERSION
_CATEGORICAL_RE = re.compile(r"categorical_[0-9]+\Z")
_NUMERICAL_RE = re.compile(r"numerical_[0-9]+\Z")


def plan_aliexpress_header(header, source="the header"):
    """`(plan, click, conversion, search_id)` indices of an AliExpress header.

    `categorical_N` columns are categorical_int, `numerical_N` numeric;
    `search_id` is the row key, not a feature. Raises a one-line ValueError
    for any other column or a missing required one.
    """
    special = (SEARCH_ID_COLUMN, CLICK_COLUMN, CONVERSION_COLUMN)
    plan = []
    for i, name in enumerate(header):
        if name in special:
            continue
        if _CATEGORICAL_RE.match(name):
            plan.append((i, name, keys.CATEGORICAL_INT))
        elif _NUMERICAL_RE.match(name):
            plan.append((i, name, keys.NUMERIC))
        else:
            raise ValueError(
                f"{source} is not an AliExpress header: unexpected column "
                f"{name!r} (expected search_id, categorical_N, numerical_N, "
                f"click, conversion)."
            )
    missing = [c for c in special if c not in header]
    if missing or not plan:
        raise ValueError(
            f"{source} is not an AliExpress header: it needs search_id, "
            f"click, conversion and at least one feature column. Missing: "
            f"{missing or ['feature columns']}"
        )
    return (
        plan,
        header.index(CLICK_COLUMN),
        header.index(CONVERSION_COLUMN),
        header.index(SEARCH_ID_COLUMN),
    )


class ReadAliExpressCsv(beam.PTransform):
    """Reads the AliExpress search-system CSVs (Tianchi dataset 74690).

    The layout of MTReclib's preprocessing as published by torch-rechub and
    FuxiCTR: `search_id,categorical_1..16,numerical_1..63,click,conversion`.
    The column set is derived from the header (read from every file when
    the reader is built), so other counts of categorical/numerical columns
    work too.

    Rows: `categorical_N` ints (categorical_int), `numerical_N` floats or
    None when empty or NaN (numeric), `click`/`conversion` ints, `__key__` =
    `"<search_id>:<hash of the line>"` (a search id is a session, shared by
    several impressions; the hash separates them), and with
    `split_by_filename` a `__split__` of `"train"`/`"eval"` from file names
    holding "train"/"test". No user or item id column is known. Every
    non-blank data line is counted as read and gives one row or one dead
    letter: `non_utf8`, `wrong_field_count`, `missing_label`, `bad_label`,
    `click0_conversion1`, `bad_categorical`, `bad_numeric`.

    Reference: Li et al., "Improving Multi-Scenario Learning to Rank in
    E-commerce by Exploiting Task Relationships in the Label Space", CIKM
    2020 (the dataset).

    Args:
        file_pattern: str. A CSV file, directory or glob.
        spec: must be None; see `column_overrides` and `vocab`.
        drop_click0_conversion1: bool. Reject click=0, conversion=1 lines.
            Defaults to True.
        split_by_filename: bool. Take the split from the file names.
            Defaults to False.
        column_overrides: dict or None. Per-column spec settings.
        vocab: dict or None. The spec's vocabulary settings.
    """

    def __init__(
        self,
        file_pattern,
        spec=None,
        *,
        drop_click0_conversion1=True,
        split_by_filename=False,
        column_overrides=None,
        vocab=None,
    ):
        super().__init__()
        io_lib.check_no_user_spec("aliexpress", spec)
        self.drop_click0_conversion1 = bool(drop_click0_conversion1)
        self.paths = match_files(file_pattern)
        self.splits = io_lib.file_splits(self.paths, split_by_filename)
        self.header = csv_lib.read_common_header(self.paths, "AliExpress")
        (
            self.plan,
            self.click_index,
            self.conversion_index,
            self.search_id_index,
        ) = plan_aliexpress_header(self.header, f"The header of {self.paths[0]}")
        self.spec = io_lib.build_spec(
            {name: {"kind": kind} for _, name, kind in self.plan},
            {keys.CLICK: CLICK_COLUMN, keys.CONVERSION: CONVERSION_COLUMN},
            column_overrides=column_overrides,
            vocab=vocab,
        )

    def expand(self, pbegin):
        lines = io_lib.read_lines(pbegin, self.paths, skip_header_lines=1)
        return csv_lib.parse_header_csv(
            lines,
            self.paths,
            self.splits,
            len(self.header),
            self.plan,
            self.click_index,
            self.conversion_index,
            self.search_id_index,
            self.drop_click0_conversion1,
        )
