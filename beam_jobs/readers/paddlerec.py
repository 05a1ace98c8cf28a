import os

import apache_beam as beam
from apache_beam.metrics import Metrics

from beam_jobs.readers import aliccp_fields as fields_lib
from beam_jobs.readers import aliccp_io as io_lib
from beam_jobs.readers import dead_letter as dl
from beam_jobs.readers.input_files import match_files, read_first_line
from tfcvr.features import keys

# Source names of the two label columns, for the spec's `labels` (the
# third column is the click-and-convert label PaddleRec calls ctcvr).
CLICK_COLUMN = keys.CLICK
CTCVR_COLUMN = keys.CTCVR
REASON_BAD_FEATURE_LIST = "bad_feature_list"
_METRICS = "tfcvr.readers.paddlerec"


def check_paddlerec_line(line, source="the first line"):
    """One-line ValueError unless `line` looks like a PaddleRec ESMM line."""
    columns = line.split(",")
    if (
        len(columns) < 4
        or io_lib.parse_label(columns[1]) is None
        or io_lib.parse_label(columns[2]) is None
        or not any(":" in c for c in columns[3:])
    ):
        raise ValueError(
            f"{source} is not a PaddleRec line "
            f"(sample_id,click,ctcvr,<unused>,field:feasign,...). "
            f"Received: {line[:80]!r}"
        )


class ReadPaddleRec(beam.PTransform):
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
        super().__init__()
        io_lib.check_no_user_spec("paddlerec", spec)
        io_lib.check_max_len(max_len)
        io_lib.check_choice(
            "on_repeated_field", on_repeated_field, io_lib.ON_REPEATED_CHOICES
        )
        self.fields, self.multi_valued_fields = fields_lib.resolve_fields(
            fields, multi_valued_fields
        )
        self.max_len = max_len
        self.keep_fourth_column = bool(keep_fourth_column)
        self.drop_click0_conversion1 = bool(drop_click0_conversion1)
        self.on_repeated_field = on_repeated_field
        self.paths = match_files(file_pattern)
        self.splits = io_lib.file_splits(self.paths, split_by_filename)
        for path in self.paths:
            first = read_first_line(path)
            if first:
                check_paddlerec_line(first, f"The first line of {path}")
        columns = {}
        for field in self.fields:
            name = fields_lib.column_name(field)
            if field in self.multi_valued_fields:
                columns[name] = {
                    "kind": keys.MULTI_CATEGORICAL,
                    "value_dtype": "int64",
                    "max_len": max_len,
                }
            else:
                columns[name] = {"kind": keys.CATEGORICAL_INT}
        self.spec = io_lib.build_spec(
            columns,
            {keys.CLICK: CLICK_COLUMN, keys.CONVERSION: CTCVR_COLUMN},
            column_overrides=column_overrides,
            vocab=vocab,
            **fields_lib.id_roles(self.fields),
        )

    def expand(self, pbegin):
        lines = io_lib.read_lines(pbegin, self.paths)
        parsed = lines | "ParseLines" >> beam.ParDo(
            _ParsePaddleRecLine(
                self.paths,
                self.splits,
                self.fields,
                self.multi_valued_fields,
                self.max_len,
                3 if self.keep_fourth_column else 4,
                self.drop_click0_conversion1,
                self.on_repeated_field,
            )
        ).with_outputs(io_lib.REJECTED, main=io_lib.ROWS)
        return {
            "rows": parsed[io_lib.ROWS],
            "rejected": parsed[io_lib.REJECTED],
        }


class _ParsePaddleRecLine(beam.DoFn):
    def __init__(
        self,
        paths,
        splits,
        fields,
        multi_valued,
        max_len,
        first_feature_column,
        drop_click0_conversion1,
        on_repeated,
    ):
        self._paths = list(paths)
        self._splits = list(splits)
        self._fields = tuple(fields)
        self._multi = frozenset(multi_valued)
        self._max_len = max_len
        self._first = first_feature_column
        self._drop = drop_click0_conversion1
        self._on_repeated = on_repeated

    def setup(self):
        self._index = io_lib.source_index(self._paths)
        self._selected = frozenset(self._fields)
        self._repeats = Metrics.counter(
            _METRICS, io_lib.REASON_REPEATED_FIELD
        )

    def process(self, element):
        path, raw = element
        index = io_lib.lookup_source(self._index, path)
        source = self._paths[index]
        raw = io_lib.prepare_line(raw)
        if raw is None:
            return
        dl.count_read()
        line, error = io_lib.decode_line(raw)
        if error is not None:
            yield io_lib.reject(dl.NON_UTF8, source, error, raw)
            return
        columns = line.split(",")
        if len(columns) < 4:
            yield io_lib.reject(
                dl.WRONG_FIELD_COUNT,
                source,
                f"a PaddleRec line has at least 4 columns "
                f"(sample_id,click,ctcvr,<unused>), this one has "
                f"{len(columns)}",
                line,
            )
            return
        click, conversion, problem = io_lib.check_labels(
            columns[1], columns[2], self._drop
        )
        if problem is not None:
            yield io_lib.reject(problem[0], source, problem[1], line)
            return
        grouped = {}
        for position in range(self._first, len(columns)):
            entry = columns[position]
            field, sep, feasign = entry.partition(":")
            field = field.strip()
            feasign = feasign.strip()
            if not sep or not field or not (
                feasign.isdigit() and feasign.isascii()
            ):
                yield io_lib.reject(
                    REASON_BAD_FEATURE_LIST,
                    source,
                    f"column {position} {entry[:80]!r} is not "
                    f"field:feasign with an integer feasign",
                    line,
                )
                return
            if field in self._selected:
                grouped.setdefault(field, []).append((int(feasign), 1.0))
        row, repeated = fields_lib.build_columns(
            (grouped,),
            self._fields,
            self._multi,
            False,
            self._max_len,
            self._on_repeated,
        )
        if repeated:
            self._repeats.inc()
        if row is None:
            yield io_lib.reject(
                io_lib.REASON_REPEATED_FIELD,
                source,
                f"single-valued fields {repeated} occur more than once "
                f"(on_repeated_field='reject')",
                line,
            )
            return
        row[keys.CLICK] = click
        row[keys.CONVERSION] = conversion
        row[io_lib.KEY_FIELD] = (
            f"{os.path.basename(source)}:{columns[0].strip()}"
        )
        split = self._splits[index]
        if split is not None:
            row[io_lib.SPLIT_FIELD] = split
        yield row
