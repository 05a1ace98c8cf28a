"""The raw Ali-CCP logs (Tianchi dataset 408): impressions joined to their
common features, and to the simulator's ground truth when it is there."""

import logging
import math
import os
import re

import apache_beam as beam
from apache_beam.metrics import Metrics

from beam_jobs.readers import dead_letter as dl
from beam_jobs.readers.aliccp import fields as fields_lib
from beam_jobs.readers.aliccp.fixed_format_reader import FILE_SPLIT_WORDS
from beam_jobs.readers.aliccp.fixed_format_reader import build_spec
from beam_jobs.readers.aliccp.fixed_format_reader import check_choice
from beam_jobs.readers.aliccp.fixed_format_reader import check_labels
from beam_jobs.readers.aliccp.fixed_format_reader import check_max_len
from beam_jobs.readers.aliccp.fixed_format_reader import check_no_user_spec
from beam_jobs.readers.aliccp.fixed_format_reader import decode_line
from beam_jobs.readers.aliccp.fixed_format_reader import lookup_source
from beam_jobs.readers.aliccp.fixed_format_reader import parse_label
from beam_jobs.readers.aliccp.fixed_format_reader import prepare_line
from beam_jobs.readers.aliccp.fixed_format_reader import source_index
from beam_jobs.readers.input_files import match_files
from beam_jobs.readers.input_files import read_head
from beam_jobs.readers.input_files import read_lines
from beam_jobs.readers.row_converter import KEY_FIELD
from beam_jobs.readers.row_converter import SPLIT_FIELD
from tfcvr.features import keys

# The kinds of input file (also the output tags of the keying DoFn).
SKELETON = "skeleton"
COMMON = "common"
GROUND_TRUTH = "ground_truth"
_FILE_RE = re.compile(
    r"(sample_skeleton|common_features|ground_truth)_(train|test)(?:[._-].*)?\Z"
)
_KINDS = {
    "sample_skeleton": SKELETON,
    "common_features": COMMON,
    "ground_truth": GROUND_TRUTH,
}
_FILE_WORDS = {split: word for word, split in FILE_SPLIT_WORDS.items()}
# The columns of each kind of file; ground_truth_{train,test}.csv (the
# simulator's) has a header, then one line per impression.
SAMPLE_ID = "sample_id"
COMMON_FEATURE_INDEX = "common_feature_index"
NUM_FEATURES = "num_features"
FEATURE_LIST = "feature_list"
SKELETON_COLUMNS = (
    SAMPLE_ID, keys.CLICK, keys.CONVERSION, COMMON_FEATURE_INDEX,
    NUM_FEATURES, FEATURE_LIST,
)
COMMON_COLUMNS = (COMMON_FEATURE_INDEX, NUM_FEATURES, FEATURE_LIST)
GROUND_TRUTH_COLUMNS = (SAMPLE_ID,) + keys.GROUND_TRUTH_KEYS
_TRUTH_HEADER = ",".join(GROUND_TRUTH_COLUMNS)
GROUND_TRUTH_CHOICES = ("auto", True, False)
_METRICS = "tfcvr.readers.aliccp"

REASON_MISSING_COMMON = "missing_common_features"
REASON_DUPLICATE_COMMON = "duplicate_common_features"
REASON_BAD_GROUND_TRUTH = "bad_ground_truth"
REASON_MISSING_GROUND_TRUTH = "missing_ground_truth"
REASON_DUPLICATE_GROUND_TRUTH = "duplicate_ground_truth"
REASON_DUPLICATE_SAMPLE_ID = "duplicate_sample_id"


def is_header_line(raw):
    """Whether a bytes line is a header: no column is empty or a number.

    Every line of impressions or common features has numeric columns
    (labels, `num_features`), so no data line is taken for a header.
    """
    try:
        columns = raw.decode("utf-8").split(",")
    except UnicodeDecodeError:
        return False
    for column in columns:
        column = column.strip()
        if not column:
            return False
        try:
            float(column)
        except ValueError:
            continue
        return False
    return True


def classify_aliccp_file(path):
    """`(kind, split)` of an Ali-CCP file name, or None.

    `sample_skeleton_train.csv` -> `("skeleton", "train")`,
    `common_features_test.csv.gz` -> `("common", "eval")`,
    `ground_truth_test.csv` -> `("ground_truth", "eval")` (simulator only).
    """
    match = _FILE_RE.match(os.path.basename(path))
    if match is None:
        return None
    return _KINDS[match.group(1)], FILE_SPLIT_WORDS[match.group(2)]


class ReadAliCCP(beam.PTransform):
    """Reads the raw Ali-CCP logs (Tianchi dataset 408, the ESMM data).

    Groups the impressions of `sample_skeleton_{train,test}.csv`
    (`sample_id,click,conversion,common_feature_index,num_features,
    feature_list`) by `(split, sample_id)` (to reject repeated sample ids
    and join the ground truth), then joins each to its row of
    `common_features_{train,test}.csv` (`common_feature_index,num_features,
    feature_list`) with a CoGroupByKey on `(split, common_feature_index)`,
    never a side input, because the common file is too large for one
    worker's memory. A feature list is `field\\x02feature_id\\x03value`
    entries joined by `\\x01`. Each common row is parsed once per key, not
    once per impression.

    Rows (reader contract): field `F` becomes column `fF` (`f101`,
    `f109_14`); a multi-valued field is a list of feature ids in log order
    (the impression's own entries, then the common ones; at most `max_len`)
    plus `fF__weight` (the entries' values) when `weighted`; a single-valued
    field is its feature id (int) or None when absent. `click` and
    `conversion` are ints, `__key__` is `"<split>:<sample_id>"` and
    `__split__` is `"train"` for the train files, `"eval"` for the test
    files. User id = `f101`, item id = `f205`.

    Accounting (`rows_read == rows written + rows rejected`): every
    non-blank skeleton line is read once and gives exactly one row or one
    dead letter; a common line is an input of the join, not an impression,
    so it counts as read only when it becomes a dead letter itself. The
    cleaning rule (click=0, conversion=1) is the dead-letter reason
    `click0_conversion1`, inside the same identity. Every common line is
    counted in the Beam counter `tfcvr.readers.aliccp:common_lines`.

    The Tianchi files have no header; a skeleton or common file whose first
    line is one (no column empty or a number) has that line, wherever it
    recurs in the file, skipped and counted in `tfcvr:header_lines_skipped`
    (neither a row nor a dead letter). When the reader is built, a
    skeleton file that is empty (or blank) or holds only a header, and any
    input file that is not text (a NUL byte near its start), is a one-line
    ValueError naming the file. `split_files` maps each split to its
    skeleton files, so the job can name them when a split gets no rows.

    Dead-letter reasons: `non_utf8`, `wrong_field_count` (skeleton needs 6
    columns, common 3), `missing_label` / `bad_label` (not 0/1),
    `click0_conversion1`, `bad_num_features` (not an integer),
    `num_features_mismatch`, `bad_feature_list` (missing separator, empty
    field, non-integer feature id, non-finite value),
    `missing_common_features` (the impression's common row is absent or
    itself rejected), `duplicate_common_features` (another valid common row
    with the same index and split: the row whose text sorts first is kept,
    each other one is rejected), `duplicate_sample_id` (see below),
    `repeated_single_valued_field` (only
    with `on_repeated_field="reject"`), and with ground truth:
    `bad_ground_truth` (not 4 columns, a rate outside [0, 1], a
    counterfactual label not 0/1), `missing_ground_truth` (an impression
    without a valid ground-truth line) and `duplicate_ground_truth`.

    Repeated sample ids: when two or more impressions with valid labels
    share a split and a sample id, every copy is rejected as
    `duplicate_sample_id`, not all but one. The sample id is the row key
    and the key of the ground-truth join; nothing in the logs says which
    impression owns it, so keeping any one copy could hand it another
    impression's ground truth (or keep a replayed line twice under two
    guesses). Rejecting them all is the same whatever the bundle order,
    and the dead letters keep every copy.

    Reference: Ma et al., "Entire Space Multi-Task Model", SIGIR 2018.

    Args:
        file_pattern: str. A directory, glob or comma-separated list
            holding the four CSV files (optionally compressed, e.g.
            `sample_skeleton_train.csv.gz`); other files are ignored.
        spec: must be None: this format builds its own spec (see
            `column_overrides` and `vocab`).
        fields: `"esmm"` (the 23 fields of PaddleRec's ESMM/ESCM2),
            `"aitm"` (the 18 single-valued AITM fields) or a list of field
            ids.
        multi_valued_fields: field ids typed `multi_categorical`, or None
            for the default of `fields` (`*_14`, 210 and 853 for "esmm" and
            custom lists; none for "aitm").
        weighted: bool. Emit the values of multi-valued fields as
            `fF__weight`. Defaults to True.
        max_len: int. Ids kept per multi-valued field. Defaults to 20.
        drop_click0_conversion1: bool. Reject impressions with click=0 and
            conversion=1. Defaults to True.
        on_repeated_field: `"first"` (default), `"last"` (AITM's choice) or
            `"reject"`: what a single-valued field occurring more than once
            keeps. Rows with a repeat are counted in the Beam counter
            `tfcvr.readers.aliccp:repeated_single_valued_field`.
        column_overrides: dict or None. Per-column spec settings, e.g.
            `{"f101": {"hash_buckets": 1000000}}`.
        vocab: dict or None. The spec's vocabulary settings.
        ground_truth: `"auto"` (default: join the ground-truth files when
            the input has them), True (require them) or False (ignore
            them).
    """

    def __init__(
        self,
        file_pattern,
        spec=None,
        *,
        fields="esmm",
        multi_valued_fields=None,
        weighted=True,
        max_len=20,
        drop_click0_conversion1=True,
        on_repeated_field="first",
        column_overrides=None,
        vocab=None,
        ground_truth="auto",
    ):
        super().__init__()
        check_no_user_spec("aliccp", spec)
        if not any(ground_truth is c for c in GROUND_TRUTH_CHOICES):
            raise ValueError(
                f"ground_truth must be 'auto', True or False. Received: "
                f"ground_truth={ground_truth!r}"
            )
        check_max_len(max_len)
        check_choice(
            "on_repeated_field", on_repeated_field, fields_lib.ON_REPEATED_CHOICES
        )
        self.fields, self.multi_valued_fields = fields_lib.resolve_fields(
            fields, multi_valued_fields
        )
        self.weighted = bool(weighted)
        self.max_len = max_len
        self.drop_click0_conversion1 = bool(drop_click0_conversion1)
        self.on_repeated_field = on_repeated_field
        # (path, kind, split) of each input; `files` is the reader contract's
        # list of paths.
        self.classified_files = self._match_files(file_pattern, ground_truth)
        self.files = [path for path, _, _ in self.classified_files]
        self.headers = self._check_files(self.classified_files)
        self.split_files = {}
        for path, kind, split in self.classified_files:
            if kind == SKELETON:
                self.split_files.setdefault(split, []).append(path)
        self.with_ground_truth = any(
            kind == GROUND_TRUTH for _, kind, _ in self.classified_files
        )
        self.spec = self._build_spec(column_overrides, vocab)

    @staticmethod
    def _match_files(file_pattern, ground_truth):
        paths = match_files(file_pattern)
        files = []
        for path in paths:
            kind_split = classify_aliccp_file(path)
            ignored_truth = ground_truth is False and kind_split is not None and (
                kind_split[0] == GROUND_TRUTH
            )
            if kind_split is None or ignored_truth:
                logging.info("The Ali-CCP reader ignores %s", path)
                continue
            files.append((path,) + kind_split)
        if not any(kind == SKELETON for _, kind, _ in files):
            hint = ""
            if any(p.endswith((".tar.gz", ".tgz")) for p in paths):
                hint = " (extract the Tianchi .tar.gz archives first)"
            raise ValueError(
                f"No sample_skeleton_{{train,test}}.csv file in "
                f"{file_pattern!r}{hint}. Found: "
                f"{[os.path.basename(p) for p in paths[:5]]}"
            )
        for split in sorted({s for _, k, s in files if k == SKELETON}):
            if not any(k == COMMON and s == split for _, k, s in files):
                name = _FILE_WORDS[split]
                raise ValueError(
                    f"{file_pattern!r} has sample_skeleton_{name} but no "
                    f"common_features_{name} file to join it with."
                )
        truth_splits = {s for _, k, s in files if k == GROUND_TRUTH}
        skeleton_splits = {s for _, k, s in files if k == SKELETON}
        if ground_truth is True or truth_splits:
            missing = sorted(skeleton_splits - truth_splits)
            if missing:
                names = [_FILE_WORDS[s] for s in missing]
                raise ValueError(
                    f"{file_pattern!r} has no ground_truth_{{{','.join(names)}}}.csv "
                    f"for its sample_skeleton files"
                    + ("" if ground_truth is True else
                       " (pass ground_truth=False to ignore the others)")
                    + "."
                )
        return files

    @staticmethod
    def _check_files(files):
        """`{file position: header line}` of the files that have one;
        raises for binary, empty or header-only skeleton files."""
        headers = {}
        for position, (path, kind, split) in enumerate(files):
            head = read_head(path, 2, skip_blank=True)
            if kind == GROUND_TRUTH:
                continue
            if head and is_header_line(head[0]):
                headers[position] = head[0]
                logging.info("Skipping the header line of %s", path)
            if kind != SKELETON:
                continue
            if not head:
                raise ValueError(
                    f"{path} is empty, so the {split} split would have no "
                    f"rows (a sample_skeleton file holds one impression per "
                    f"line)."
                )
            if len(head) == 1 and position in headers:
                raise ValueError(
                    f"{path} holds only a header line "
                    f"({dl.escape_raw(head[0], 80)!r}), no impressions, so "
                    f"the {split} split would have no rows."
                )
        return headers

    def _build_spec(self, column_overrides, vocab):
        return build_spec(
            fields_lib.spec_columns(
                self.fields,
                self.multi_valued_fields,
                self.max_len,
                weighted=self.weighted,
            ),
            {keys.CLICK: keys.CLICK, keys.CONVERSION: keys.CONVERSION},
            column_overrides=column_overrides,
            vocab=vocab,
            extra_columns=keys.GROUND_TRUTH_KEYS if self.with_ground_truth else (),
            **fields_lib.id_roles(self.fields),
        )

    def expand(self, pbegin):
        paths = self.files
        lines = read_lines(pbegin, paths)
        keyed = lines | "KeyLines" >> beam.ParDo(
            _KeyAliCCPLine(
                self.classified_files, self.drop_click0_conversion1, self.headers
            )
        ).with_outputs(SKELETON, COMMON, GROUND_TRUTH, dl.REJECTED)
        by_sample_id = {SKELETON: keyed[SKELETON]}
        if self.with_ground_truth:
            by_sample_id[GROUND_TRUTH] = keyed[GROUND_TRUTH]
        # The truth rides along into the common-feature join as a third
        # tuple element.
        checked = (
            by_sample_id
            | "GroupBySampleId" >> beam.CoGroupByKey()
            | "CheckSampleIds"
            >> beam.ParDo(_JoinBySampleId(paths, self.with_ground_truth))
            .with_outputs(dl.REJECTED, main=SKELETON)
        )
        skeleton = checked[SKELETON]
        rejected = [keyed[dl.REJECTED], checked[dl.REJECTED]]
        joined = {
            SKELETON: skeleton,
            COMMON: keyed[COMMON],
        } | "JoinCommonFeatures" >> beam.CoGroupByKey()
        built = joined | "BuildRows" >> beam.ParDo(
            _BuildAliCCPRows(
                paths,
                self.fields,
                self.multi_valued_fields,
                self.weighted,
                self.max_len,
                self.on_repeated_field,
            )
        ).with_outputs(dl.REJECTED, main=dl.ROWS)
        rejected = tuple(rejected) + (built[dl.REJECTED],) | "FlattenRejected" >> (
            beam.Flatten()
        )
        return {dl.ROWS: built[dl.ROWS], dl.REJECTED: rejected}


class _KeyAliCCPLine(beam.DoFn):
    """Checks a line's columns (and a skeleton line's labels) and keys it.

    Input `(path, bytes line)`; outputs tagged `skeleton` and
    `ground_truth` `((split, sample_id), (file position, line))`, tagged
    `common` `((split, common_feature_index), (file position, line))`, and
    tagged `rejected` dead letters. The feature lists are parsed after the
    joins, so the shuffles carry compact text, not dicts.

    Args:
        files: list of `(path, kind, split)`, kind `"skeleton"`,
            `"common"` or `"ground_truth"`.
        drop_click0_conversion1: bool.
        headers: dict or None. File position -> its header line (bytes,
            as `prepare_line` leaves it); those lines are skipped.
    """

    def __init__(self, files, drop_click0_conversion1, headers=None):
        self._files = list(files)
        self._drop = drop_click0_conversion1
        self._headers = dict(headers or {})

    def setup(self):
        self._index = source_index([p for p, _, _ in self._files])
        self._common_lines = Metrics.counter(_METRICS, "common_lines")
        self._truth_lines = Metrics.counter(_METRICS, "ground_truth_lines")

    def process(self, element):
        path, raw = element
        index = lookup_source(self._index, path)
        source, kind, split = self._files[index]
        raw = prepare_line(raw)
        if raw is None:
            return
        if raw == self._headers.get(index):
            dl.count_header_line()
            return
        if kind == SKELETON:
            dl.count_read()
        elif kind == COMMON:
            self._common_lines.inc()
        line, error = decode_line(raw)
        if error is not None:
            yield self._reject(kind, dl.NON_UTF8, source, error, raw)
            return
        if kind == GROUND_TRUTH:
            if line.strip() != _TRUTH_HEADER:
                self._truth_lines.inc()
                sample_id = line.partition(",")[0].strip()
                yield beam.pvalue.TaggedOutput(
                    GROUND_TRUTH, ((split, sample_id), (index, line))
                )
            return
        columns = line.split(",")
        expected = len(SKELETON_COLUMNS if kind == SKELETON else COMMON_COLUMNS)
        if len(columns) != expected:
            yield self._reject(
                kind,
                dl.WRONG_FIELD_COUNT,
                source,
                f"a {kind} line has {expected} columns, this one has "
                f"{len(columns)}",
                line,
            )
            return
        if kind == COMMON:
            yield beam.pvalue.TaggedOutput(
                COMMON, ((split, columns[0]), (index, line))
            )
            return
        try:
            check_labels(columns[1], columns[2], self._drop)
        except dl.DeadLetter as e:
            yield self._reject(kind, e.reason, source, e.detail, line)
            return
        yield beam.pvalue.TaggedOutput(
            SKELETON, ((split, columns[0].strip()), (index, line))
        )

    @staticmethod
    def _reject(kind, reason, source, detail, raw):
        if kind != SKELETON:
            dl.count_read()
        return dl.reject(reason, source, detail, raw)


def parse_ground_truth_line(line):
    """`(true_ctr, true_cvr, conversion_if_clicked)` of a ground-truth line.

    Raises `ValueError` with the reason's detail when the line is not
    `sample_id,rate,rate,0|1` with both rates finite in [0, 1].
    """
    columns = line.split(",")
    expected = len(GROUND_TRUTH_COLUMNS)
    if len(columns) != expected:
        raise ValueError(
            f"a ground-truth line has {expected} columns, this one has "
            f"{len(columns)}"
        )
    rates = []
    for name, text in zip(keys.GROUND_TRUTH_KEYS[:2], columns[1:3]):
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} {text[:40]!r} is not a rate in [0, 1]")
        rates.append(value)
    label = parse_label(columns[3])
    if label is None:
        raise ValueError(
            f"{keys.CONVERSION_IF_CLICKED} {columns[3][:40]!r} is not 0 or 1"
        )
    return rates[0], rates[1], float(label)


class _JoinBySampleId(beam.DoFn):
    """Rejects every impression of a repeated sample id and attaches its
    ground truth to each other one.

    Input: the CoGroupByKey element `((split, sample_id), {"skeleton":
    [(file position, line), ...], "ground_truth": [...]})` (no
    `ground_truth` entry without ground truth). Outputs
    `((split, common_feature_index), (file position, line[, truth]))` and
    tagged `rejected` dead letters: `duplicate_sample_id` (every copy; see
    `ReadAliCCP`), broken or duplicate ground-truth lines, impressions
    without ground truth.

    Args:
        paths: the input files, indexed by the file positions.
        with_ground_truth: bool. Require and attach ground truth.
    """

    def __init__(self, paths, with_ground_truth):
        self._paths = list(paths)
        self._with_truth = with_ground_truth

    def setup(self):
        self._unused = Metrics.counter(_METRICS, "ground_truth_unused")

    def process(self, element):
        (split, sample_id), grouped = element
        truth = None
        truth_lines = grouped.get(GROUND_TRUTH, ())
        for index, line in sorted(truth_lines, key=_line_text):
            source = self._paths[index]
            try:
                parsed = parse_ground_truth_line(line)
            except ValueError as e:
                dl.count_read()
                yield dl.reject(REASON_BAD_GROUND_TRUTH, source, str(e), line)
                continue
            if truth is not None:
                dl.count_read()
                yield dl.reject(
                    REASON_DUPLICATE_GROUND_TRUTH,
                    source,
                    f"sample_id {sample_id!r} already has a valid ground-truth "
                    f"line in the {split} split; the line whose text sorts "
                    f"first is kept",
                    line,
                )
                continue
            truth = parsed
        skeleton = list(grouped[SKELETON])
        if truth is not None and len(skeleton) != 1:
            self._unused.inc()
        if len(skeleton) > 1:
            for index, line in skeleton:
                yield dl.reject(
                    REASON_DUPLICATE_SAMPLE_ID,
                    self._paths[index],
                    f"sample_id {sample_id!r} occurs {len(skeleton)} times in "
                    f"the {split} split; every copy is rejected, since "
                    f"which impression owns the id is unknown",
                    line,
                )
            return
        for index, line in skeleton:
            common_index = line.split(",", 4)[3]
            if not self._with_truth:
                yield (split, common_index), (index, line)
                continue
            if truth is None:
                yield dl.reject(
                    REASON_MISSING_GROUND_TRUTH,
                    self._paths[index],
                    f"no valid ground-truth line for sample_id {sample_id!r} in "
                    f"the {split} split",
                    line,
                )
                continue
            yield (split, common_index), (index, line, truth)


class _BuildAliCCPRows(beam.DoFn):
    """Builds the rows of one `(split, common_feature_index)` group.

    Input: the CoGroupByKey element `((split, index), {"skeleton": [(file
    position, line), ...], "common": [...]})`. Parses the group's common
    rows once (rejecting broken ones and duplicates), then every impression
    of the group; outputs rows and tagged `rejected` dead letters.

    Args:
        paths: the input files, indexed by the file positions.
        fields, multi_valued, weighted, max_len, on_repeated: as in
            `ReadAliCCP`.
    """

    def __init__(
        self, paths, fields, multi_valued, weighted, max_len, on_repeated
    ):
        self._paths = list(paths)
        self._fields = tuple(fields)
        self._multi = frozenset(multi_valued)
        self._weighted = weighted
        self._max_len = max_len
        self._on_repeated = on_repeated

    def setup(self):
        self._selected = frozenset(self._fields)
        self._repeats = Metrics.counter(_METRICS, fields_lib.REASON_REPEATED_FIELD)
        self._unused_common = Metrics.counter(_METRICS, "common_rows_unused")

    def _truncated_groups(self, entries):
        # Truncating before the merge keeps the same first `max_len` values
        # as truncating the merged list, with less copying.
        groups = fields_lib.group_by_field(entries, self._selected)
        for field in self._multi:
            values = groups.get(field)
            if values is not None and len(values) > self._max_len:
                groups[field] = values[: self._max_len]
        return groups

    def process(self, element):
        (split, common_index), grouped = element
        common_groups = None
        for index, line in sorted(grouped[COMMON], key=_line_text):
            source = self._paths[index]
            _, num_text, list_text = line.split(",")
            try:
                entries = fields_lib.parse_counted_feature_list(
                    num_text, list_text
                )
            except fields_lib.FeatureListError as e:
                dl.count_read()
                yield dl.reject(e.reason, source, e.detail, line)
                continue
            if common_groups is not None:
                dl.count_read()
                yield dl.reject(
                    REASON_DUPLICATE_COMMON,
                    source,
                    f"common_feature_index {common_index!r} already has a "
                    f"valid row in the {split} split; the row whose text "
                    f"sorts first is kept",
                    line,
                )
                continue
            common_groups = self._truncated_groups(entries)
        used = False
        for index, line, *truth in grouped[SKELETON]:
            used = True
            source = self._paths[index]
            columns = line.split(",")
            try:
                entries = fields_lib.parse_counted_feature_list(
                    columns[4], columns[5]
                )
            except fields_lib.FeatureListError as e:
                yield dl.reject(e.reason, source, e.detail, line)
                continue
            if common_groups is None:
                yield dl.reject(
                    REASON_MISSING_COMMON,
                    source,
                    f"no valid common_features row with index "
                    f"{common_index!r} in the {split} split",
                    line,
                )
                continue
            try:
                row = fields_lib.build_row(
                    (self._truncated_groups(entries), common_groups),
                    self._fields,
                    self._multi,
                    self._weighted,
                    self._max_len,
                    self._on_repeated,
                    self._repeats,
                )
            except dl.DeadLetter as e:
                yield dl.reject(e.reason, source, e.detail, line)
                continue
            row[keys.CLICK] = parse_label(columns[1])
            row[keys.CONVERSION] = parse_label(columns[2])
            row[KEY_FIELD] = f"{split}:{columns[0].strip()}"
            row[SPLIT_FIELD] = split
            if truth:
                row.update(zip(keys.GROUND_TRUTH_KEYS, truth[0]))
            yield row
        if common_groups is not None and not used:
            self._unused_common.inc()


def _line_text(value):
    return value[1]
