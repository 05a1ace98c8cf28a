"""The Ali-CCP lines of PaddleRec's ESMM/ESCM2 examples."""

import os

from apache_beam.metrics import Metrics

from beam_jobs.readers import dead_letter as dl
from beam_jobs.readers.aliccp import fields as fields_lib
from beam_jobs.readers.aliccp.fixed_format_reader import FixedLineFn
from beam_jobs.readers.aliccp.fixed_format_reader import FixedLineReader
from beam_jobs.readers.aliccp.fixed_format_reader import build_spec
from beam_jobs.readers.aliccp.fixed_format_reader import check_choice
from beam_jobs.readers.aliccp.fixed_format_reader import check_labels
from beam_jobs.readers.aliccp.fixed_format_reader import check_max_len
from beam_jobs.readers.aliccp.fixed_format_reader import parse_label
from beam_jobs.readers.input_files import read_first_line
from tfcvr.features import keys

_METRICS = "tfcvr.readers.paddlerec"


def check_paddlerec_line(line, source="the first line"):
    """One-line ValueError unless `line` looks like a PaddleRec ESMM line."""
    columns = line.split(",")
    if (
        len(columns) < 4
        or parse_label(columns[1]) is None
        or parse_label(columns[2]) is None
        or not any(":" in c for c in columns[3:])
    ):
        raise ValueError(
            f"{source} is not a PaddleRec line "
            f"(sample_id,click,ctcvr,<unused>,field:feasign,...). "
            f"Received: {line[:80]!r}"
        )


class ReadPaddleRec(FixedLineReader):
    """Reads the Ali-CCP lines of PaddleRec's ESMM/ESCM2 examples.

    Each line is `sample_id,click,ctcvr,<unused>,field:feasign,...` with no
    header. A field may repeat (multi-valued, e.g. `150_14`); feasigns are
    global integer ids. Fields outside `fields` are skipped, as PaddleRec's
    reader does. Like PaddleRec's reader the fourth column is skipped by
    default, although in the published samples it holds a real
    `field:feasign` pair (sometimes a row's only item id `205`):
    `keep_fourth_column=True` parses it as a feature.

    Rows: field `F` becomes column `fF`; a field in `multi_valued_fields`
    is a list of ints (log order, at most `max_len`, possibly empty) even
    when it occurs once in a line; any other field is an int or None when
    absent. `click` is the second column; `conversion` is the third column
    (PaddleRec's ctcvr label = click AND conversion, which is the
    entire-space conversion label). `__key__` = `"<file name>:<sample_id>"`;
    with `split_by_filename` a `__split__` of `"train"`/`"eval"`. User id
    `f101`, item id `f205` when selected. Every non-blank line is counted
    as read and gives one row or one dead letter: `non_utf8`,
    `wrong_field_count` (fewer than 4 columns), `missing_label`,
    `bad_label`, `click0_conversion1`, `bad_feature_list` (an entry without
    `:`, with an empty field or a non-integer feasign) and, with
    `on_repeated_field="reject"`, `repeated_single_valued_field`.

    Args:
        file_pattern: str. A file, directory or glob.
        spec: must be None; see `column_overrides` and `vocab`.
        fields: `"esmm"` (PaddleRec's 23 fields), `"aitm"` or a list of
            field ids.
        multi_valued_fields: field ids typed `multi_categorical`, or None
            for the default of `fields` (`*_14`, 210, 853 for "esmm").
        max_len: int. Ids kept per multi-valued field. Defaults to 20
            (PaddleRec's dygraph reader keeps 3).
        keep_fourth_column: bool. Parse the fourth column as a feature.
            Defaults to False (PaddleRec's reader skips it).
        drop_click0_conversion1: bool. Reject click=0, ctcvr=1 lines.
            Defaults to True.
        on_repeated_field: `"first"`, `"last"` or `"reject"` for a
            single-valued field that occurs more than once in a line.
        split_by_filename: bool. Take the split from the file names.
        column_overrides: dict or None. Per-column spec settings.
        vocab: dict or None. The spec's vocabulary settings.
    """

    format_name = "paddlerec"

    def __init__(
        self,
        file_pattern,
        spec=None,
        *,
        fields="esmm",
        multi_valued_fields=None,
        max_len=20,
        keep_fourth_column=False,
        drop_click0_conversion1=True,
        on_repeated_field="first",
        split_by_filename=False,
        column_overrides=None,
        vocab=None,
    ):
        check_max_len(max_len)
        check_choice(
            "on_repeated_field", on_repeated_field, fields_lib.ON_REPEATED_CHOICES
        )
        fields, multi_valued_fields = fields_lib.resolve_fields(
            fields, multi_valued_fields
        )
        super().__init__(
            file_pattern, spec, drop_click0_conversion1, split_by_filename
        )
        self.fields, self.multi_valued_fields = fields, multi_valued_fields
        self.max_len = max_len
        self.keep_fourth_column = bool(keep_fourth_column)
        self.on_repeated_field = on_repeated_field
        for path in self.files:
            first = read_first_line(path)
            if first:
                check_paddlerec_line(first, f"The first line of {path}")
        self.spec = build_spec(
            fields_lib.spec_columns(self.fields, self.multi_valued_fields, max_len),
            # The third column is the click-and-convert label PaddleRec
            # calls ctcvr.
            {keys.CLICK: keys.CLICK, keys.CONVERSION: keys.CTCVR},
            column_overrides=column_overrides,
            vocab=vocab,
            **fields_lib.id_roles(self.fields),
        )

    def line_fn(self):
        return _ParsePaddleRecLine(
            self.files,
            self.splits,
            self.drop_click0_conversion1,
            self.fields,
            self.multi_valued_fields,
            self.max_len,
            3 if self.keep_fourth_column else 4,
            self.on_repeated_field,
        )


class _ParsePaddleRecLine(FixedLineFn):
    def __init__(
        self,
        paths,
        splits,
        drop_click0_conversion1,
        fields,
        multi_valued,
        max_len,
        first_feature_column,
        on_repeated,
    ):
        super().__init__(paths, splits, drop_click0_conversion1)
        self._fields = tuple(fields)
        self._multi = frozenset(multi_valued)
        self._max_len = max_len
        self._first = first_feature_column
        self._on_repeated = on_repeated

    def setup(self):
        super().setup()
        self._selected = frozenset(self._fields)
        self._repeats = Metrics.counter(_METRICS, fields_lib.REASON_REPEATED_FIELD)

    def parse(self, line, raw, source):
        columns = line.split(",")
        if len(columns) < 4:
            raise dl.DeadLetter(
                dl.WRONG_FIELD_COUNT,
                f"a PaddleRec line has at least 4 columns "
                f"(sample_id,click,ctcvr,<unused>), this one has "
                f"{len(columns)}",
            )
        click, conversion = check_labels(columns[1], columns[2], self._drop)
        grouped = {}
        for position in range(self._first, len(columns)):
            entry = columns[position]
            field, sep, feasign = entry.partition(":")
            field = field.strip()
            feasign = feasign.strip()
            if not sep or not field or not (
                feasign.isdigit() and feasign.isascii()
            ):
                raise dl.DeadLetter(
                    fields_lib.REASON_BAD_FEATURE_LIST,
                    f"column {position} {entry[:80]!r} is not "
                    f"field:feasign with an integer feasign",
                )
            if field in self._selected:
                grouped.setdefault(field, []).append((int(feasign), 1.0))
        row = fields_lib.build_row(
            (grouped,),
            self._fields,
            self._multi,
            False,
            self._max_len,
            self._on_repeated,
            self._repeats,
        )
        key = f"{os.path.basename(source)}:{columns[0].strip()}"
        return row, click, conversion, key
