import re

import apache_beam as beam

from beam_jobs.readers import aliccp_fields as fields_lib
from beam_jobs.readers import aliccp_header_csv as csv_lib
from beam_jobs.readers import aliccp_io as io_lib
from beam_jobs.readers.input_files import match_files
from tfcvr.features import keys

# The torch-rechub header names its click label like the schema does.
CLICK_COLUMN = keys.CLICK
PURCHASE_COLUMN = "purchase"
_FIELD_RE = re.compile(r"[0-9]+(_[0-9]+)?\Z")
_DENSE_RE = re.compile(r"D[0-9]+(_[0-9]+)?\Z")


def plan_aliccp_csv_header(header, source="the header"):
    """`(plan, click_index, purchase_index)` of a torch-rechub Ali-CCP header.

    A field-id column `F` (`101`, `109_14`) becomes the categorical_int
    column `fF`; a dense column `DF` (`D508`) keeps its name as a numeric
    column. Raises a one-line ValueError for any other column or missing
    labels.
    """
    plan = []
    for i, name in enumerate(header):
        if name in (CLICK_COLUMN, PURCHASE_COLUMN):
            continue
        if _FIELD_RE.match(name):
            plan.append((i, fields_lib.column_name(name), keys.CATEGORICAL_INT))
        elif _DENSE_RE.match(name):
            plan.append((i, name, keys.NUMERIC))
        else:
            raise ValueError(
                f"{source} is not a torch-rechub Ali-CCP header: unexpected "
                f"column {name!r} (expected click,purchase, field ids such "
                f"as 101 or 109_14, and dense columns such as D508)."
            )
    missing = [c for c in (CLICK_COLUMN, PURCHASE_COLUMN) if c not in header]
    if missing or not plan:
        raise ValueError(
            f"{source} is not a torch-rechub Ali-CCP header: it needs click, "
            f"purchase and at least one field column. Missing: "
            f"{missing or ['field columns']}"
        )
    return plan, header.index(CLICK_COLUMN), header.index(PURCHASE_COLUMN)


class ReadAliCCPCsv(beam.PTransform):
    """Reads the preprocessed Ali-CCP CSVs of torch-rechub.

    Header `click,purchase,101,121,...,150_14,D109_14,...,D853`: `purchase`
    is the conversion label, a field-id column `F` holds label-encoded ids
    (categorical_int column `fF`, the same names as the raw Ali-CCP reader)
    and a `D*` column a min-max scaled value (numeric column of the same
    name, None when empty or NaN). The header is read from every input file
    when the reader is built; the column set is derived from it.

    Rows: `fF` ints, `D*` floats or None, `click` and `conversion` (from
    `purchase`) ints, `__key__` = `"<file name>:<hash of the line>"` (the
    files carry no row id, so identical lines share a key), and with
    `split_by_filename` a `__split__` of `"train"` (name holds "train") or
    `"eval"` (name holds "test"). User id `f101`, item id `f205` when
    present. Every non-blank data line is counted as read and gives one row
    or one dead letter: `non_utf8`, `wrong_field_count`, `missing_label`,
    `bad_label`, `click0_conversion1`, `bad_categorical`, `bad_numeric`.

    Args:
        file_pattern: str. A CSV file, directory or glob.
        spec: must be None; see `column_overrides` and `vocab`.
        drop_click0_conversion1: bool. Reject click=0, purchase=1 lines
            (torch-rechub's preprocessing already dropped them). Defaults
            to True.
        split_by_filename: bool. Take the split from the file names (e.g.
            `ali_ccp_train.csv` and `ali_ccp_test.csv`). Defaults to False.
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
        io_lib.check_no_user_spec("aliccp_csv", spec)
        self.drop_click0_conversion1 = bool(drop_click0_conversion1)
        self.paths = match_files(file_pattern)
        self.splits = io_lib.file_splits(self.paths, split_by_filename)
        self.header = csv_lib.read_common_header(self.paths, "Ali-CCP CSV")
        self.plan, self.click_index, self.purchase_index = (
            plan_aliccp_csv_header(self.header, f"The header of {self.paths[0]}")
        )
        columns = {name: {"kind": kind} for _, name, kind in self.plan}
        fields = [n[1:] for n in columns if n.startswith("f")]
        self.spec = io_lib.build_spec(
            columns,
            {keys.CLICK: CLICK_COLUMN, keys.CONVERSION: PURCHASE_COLUMN},
            column_overrides=column_overrides,
            vocab=vocab,
            **fields_lib.id_roles(fields),
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
            self.purchase_index,
            None,
            self.drop_click0_conversion1,
        )
