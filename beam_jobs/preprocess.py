"""Raw impression logs -> sharded gzip TFRecords + schema.json + vocab/.

    python -m beam_jobs.preprocess --input 'logs/*.csv' --format csv \\
        --out data/ [--spec spec.json] [Beam pipeline options ...]

Every flag this module does not know is a Beam pipeline option (e.g.
`--runner DataflowRunner --project P --region R --temp_location gs://...
--setup_file ./setup.py`, or `--direct_running_mode=multi_processing
--direct_num_workers=2`). Without `--runner` the job runs locally on the
DirectRunner's FnApiRunner (in-process, or multi-process with the flags
above).

The output directory (see DESIGN.md and the dataset contract):
`schema.json`, `vocab/<feature_or_group>.txt`, `train/part-*.tfrecord.gz`,
`eval/part-*.tfrecord.gz`, `rejected/part-*.jsonl` (dead letters),
`spec.json` (the input spec the rows were read with) and `summary.json`
(rows read == rows written + rows rejected, always).

With `--vocab-from DIR` (a dataset or model directory) the vocabularies and
numeric statistics are not computed: DIR's vocabulary files are copied and
its encoding kept, so a held-out log is scored the way the model was
trained; unseen values go to the OOV buckets and are counted per feature
in `summary.json` (`oov`).
"""

import argparse
import dataclasses
import datetime
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import time

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import DirectOptions
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.options.pipeline_options import StandardOptions
from apache_beam.portability.api import beam_provision_api_pb2
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.runners.portability.portable_runner import JobServiceHandle

from beam_jobs.readers import FORMATS
from beam_jobs.readers import GENERIC_FORMATS
from beam_jobs.readers import get_reader_class
from beam_jobs.readers import dead_letter as dl
from beam_jobs.readers.generic_reader import load_spec
from beam_jobs.readers.input_files import is_local
from beam_jobs.readers.input_files import is_local_dir
from beam_jobs.readers.input_files import match_files
from beam_jobs.readers.input_files import total_size
from beam_jobs.readers.row_converter import to_timestamp
from beam_jobs.transforms.metadata import WriteMetadataFn
from beam_jobs.transforms.metadata import read_json
from beam_jobs.transforms.metadata import write_json
from beam_jobs.transforms.oov import OOV
from beam_jobs.transforms.oov import VALUES
from beam_jobs.transforms.oov import CountOOV
from beam_jobs.transforms.shards import JSONL
from beam_jobs.transforms.shards import TFRECORD_GZ
from beam_jobs.transforms.shards import EncodeExampleFn
from beam_jobs.transforms.shards import WriteShards
from beam_jobs.transforms.split import SPLIT_METHODS
from beam_jobs.transforms.split import SPLIT_ROWS
from beam_jobs.transforms.split import TRAIN_ROWS
from beam_jobs.transforms.split import WHOLE_INPUT_SPLITS
from beam_jobs.transforms.split import AssignSplitFn
from beam_jobs.transforms.split import ComputeTimeCut
from beam_jobs.transforms.statistics import ComputeNumericStats
from beam_jobs.transforms.statistics import CountPerBundleFn
from beam_jobs.transforms.statistics import constant_key
from beam_jobs.transforms.vocabularies import ComputeVocabularies
from beam_jobs.transforms.vocabularies import WriteVocabularyFn
from tfcvr.features import Schema
from tfcvr.features import keys
from tfcvr.features import vocab_fingerprint as vf
from tfcvr.features.input_spec import DEFAULT_MAX_VALUE_BYTES
from tfcvr.features.input_spec import SPEC_FILE

__all__ = ["FORMATS", "add_arguments", "build_parser", "run", "run_job"]

# Default output files per split: one per this many input bytes.
BYTES_PER_SHARD = 64 * 2**20
MAX_DEFAULT_SHARDS = 1024
ERROR_PREFIX = "beam_jobs.preprocess: error: "
_OUTPUTS = (
    keys.TRAIN_SPLIT,
    keys.EVAL_SPLIT,
    keys.REJECTED_DIR,
    keys.VOCAB_DIR,
    # An earlier run's encoded training shards would describe other rows.
    keys.ENCODED_DIR,
    keys.SCHEMA_FILE,
    SPEC_FILE,
    keys.SUMMARY_FILE,
)


def add_arguments(parser):
    """The job's own flags (shared by `tfcvr preprocess`)."""
    parser.add_argument(
        "--input", required=True,
        help="input file, directory, glob or comma-separated list "
        "(gs:// works with the GCP extras)",
    )
    parser.add_argument(
        "--format", required=True,
        help=f"log format, one of {', '.join(sorted(FORMATS))}; "
        f"{'/'.join(GENERIC_FORMATS)} need an input spec",
    )
    parser.add_argument("--out", required=True, help="output dataset directory")
    parser.add_argument(
        "--spec",
        help="input spec JSON (default: the --vocab-from directory's "
        "spec.json, else spec.json beside the input files, for "
        "csv/parquet/jsonl)",
    )
    parser.add_argument(
        "--vocab-from", metavar="DIR",
        help="encode with the vocabularies and statistics of this dataset "
        "or model directory instead of computing them (a held-out or test "
        "log scored like the training data; unseen values are counted per "
        "feature in summary.json)",
    )
    parser.add_argument(
        "--min-count", type=int,
        help="keep vocabulary tokens seen at least this often in train "
        "(overrides the spec's vocab.min_count)",
    )
    parser.add_argument(
        "--top-k", type=int,
        help="cap every vocabulary at this many tokens (overrides the "
        "spec's vocab.top_k)",
    )
    parser.add_argument(
        "--max-value-bytes", type=int,
        help="longest categorical string value (UTF-8 bytes) a row may "
        "carry; a row with a longer one is a value_too_long dead letter "
        f"(overrides the spec's max_value_bytes, default "
        f"{DEFAULT_MAX_VALUE_BYTES}; csv/parquet/jsonl)",
    )
    parser.add_argument(
        "--eval-fraction", type=float, default=0.1,
        help="share of rows in the eval split (hash or time split); "
        "default 0.1; 1 sends every row to eval (as --split eval)",
    )
    parser.add_argument(
        "--split", choices=SPLIT_METHODS, default="auto",
        help="auto (default): the format's own split if it has one, else "
        "by time if the spec has a timestamp, else by a hash of the row "
        "key; auto, time and hash move --eval-fraction of the input (10%% "
        "by default) to eval, also from a training log. train / eval: the "
        "whole input to that split (a test log: --split eval --vocab-from "
        "DIR)",
    )
    parser.add_argument(
        "--split-timestamp",
        help="time split at this time (epoch seconds or ISO-8601): rows at "
        "or after it are eval; default: the last --eval-fraction of rows",
    )
    parser.add_argument(
        "--shards", type=int,
        help="output files per split (default: one per 64 MiB of input)",
    )
    parser.add_argument(
        "--delimiter", default=",", help="csv field delimiter (default ',')"
    )
    parser.add_argument(
        "--reader-option", action="append", default=[], metavar="KEY=VALUE",
        help="extra keyword for the format's reader (VALUE parsed as JSON "
        "when it is valid JSON); repeatable",
    )
    parser.add_argument(
        "--keep-click0-conversion1", action="store_true",
        help="keep rows with conversion=1 and click=0 (rejected by default)",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="print nothing but errors"
    )


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m beam_jobs.preprocess",
        description=__doc__.split("\n\n")[0],
        epilog="Unknown flags are passed to Beam's PipelineOptions.",
        allow_abbrev=False,
    )
    add_arguments(parser)
    return parser


# === Argument checks ===


def _check_args(args):
    if args.format not in FORMATS:
        raise ValueError(
            f"Unknown --format {args.format!r}. Known formats: "
            f"{', '.join(sorted(FORMATS))}"
        )
    if not 0 <= args.eval_fraction <= 1:
        raise ValueError(
            f"--eval-fraction must be in [0, 1]. Received: {args.eval_fraction}"
        )
    if args.eval_fraction == 1:
        if args.split not in ("auto", "hash", keys.EVAL_SPLIT):
            raise ValueError(
                f"--eval-fraction 1 sends every row to eval, which --split "
                f"{args.split} contradicts; use --split eval."
            )
        args.split = keys.EVAL_SPLIT
    if args.split == keys.EVAL_SPLIT and args.vocab_from is None:
        raise ValueError(
            "--split eval leaves the train split empty, and vocabularies "
            "come from train rows: pass --vocab-from DIR (the training "
            "dataset or model directory) to encode the log with its "
            "vocabulary."
        )
    if args.vocab_from is not None:
        for flag, value in (("--min-count", args.min_count), ("--top-k", args.top_k)):
            if value is not None:
                raise ValueError(
                    f"{flag} selects vocabulary tokens, but --vocab-from "
                    f"keeps the vocabularies of {args.vocab_from}."
                )
    for flag, value in (
        ("--min-count", args.min_count),
        ("--top-k", args.top_k),
        ("--shards", args.shards),
        ("--max-value-bytes", args.max_value_bytes),
    ):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be >= 1. Received: {value}")
    if len(args.delimiter) != 1:
        raise ValueError(
            f"--delimiter must be one character. Received: {args.delimiter!r}"
        )


def _reader_options(args):
    options = {}
    for item in args.reader_option:
        name, eq, value = item.partition("=")
        if not eq or not name:
            raise ValueError(
                f"--reader-option needs KEY=VALUE. Received: {item!r}"
            )
        try:
            options[name] = json.loads(value)
        except ValueError:
            options[name] = value
    if args.format == "csv":
        options.setdefault("delimiter", args.delimiter)
    if args.keep_click0_conversion1:
        options["drop_click0_conversion1"] = False
    return options


def _find_spec(args, files):
    if args.spec is not None:
        return args.spec
    if args.format not in GENERIC_FORMATS:
        return None
    candidates = []
    if args.vocab_from is not None:
        candidates.append(os.path.join(args.vocab_from, SPEC_FILE))
    if is_local_dir(args.input):
        candidates.append(os.path.join(args.input, SPEC_FILE))
    candidates.append(FileSystems.join(os.path.dirname(files[0]), SPEC_FILE))
    for path in candidates:
        if FileSystems.exists(path):
            return path
    raise ValueError(
        f"The {args.format} format needs an input spec: pass --spec "
        f"spec.json or put spec.json beside the input files "
        f"(`tfcvr schema infer --input FILE --out spec.json` proposes one)."
    )


def _make_reader(args, files):
    reader_class = get_reader_class(args.format)
    spec = _find_spec(args, files)
    if spec is not None:
        spec = load_spec(spec)
    if args.max_value_bytes is not None:
        if spec is None:
            raise ValueError(
                f"--max-value-bytes applies to the formats read through an "
                f"input spec ({', '.join(GENERIC_FORMATS)}); the "
                f"{args.format} format takes none."
            )
        spec = dataclasses.replace(spec, max_value_bytes=args.max_value_bytes)
    options = _reader_options(args)
    try:
        reader = reader_class(args.input, spec=spec, **options)
    except TypeError as e:
        raise ValueError(
            f"The {args.format} reader rejected its options {sorted(options)}: "
            f"{dl.one_line(e, 300)}"
        ) from None
    reader_spec = reader.spec
    if isinstance(reader_spec, dict):
        reader_spec = load_spec(reader_spec)
    return reader, reader_spec


def _apply_vocab_flags(spec, args):
    vocab = dict(spec.vocab)
    if args.min_count is not None:
        vocab["min_count"] = args.min_count
    if args.top_k is not None:
        vocab["top_k"] = args.top_k
    return dataclasses.replace(spec, vocab=vocab)


def _resolve_split(args, spec):
    """`(use_time, fixed_cut)` for the split flags and the spec."""
    fixed_cut = None
    if args.split_timestamp is not None:
        try:
            fixed_cut = to_timestamp(args.split_timestamp, "--split-timestamp")
        except dl.DeadLetter as e:
            raise ValueError(e.detail) from None
    has_time = spec.timestamp is not None
    if args.split == "time" and not has_time:
        raise ValueError(
            "--split time needs a `timestamp` column in the input spec."
        )
    if fixed_cut is not None and not has_time:
        raise ValueError(
            "--split-timestamp needs a `timestamp` column in the input spec."
        )
    if fixed_cut is not None and args.split in ("hash", "source") + (
        WHOLE_INPUT_SPLITS
    ):
        raise ValueError(
            f"--split-timestamp only applies to time splits. Received: "
            f"--split {args.split}"
        )
    if args.split == "source" and args.format in GENERIC_FORMATS:
        raise ValueError(
            f"--split source keeps a format's own train/test split; the "
            f"{args.format} format has none (use auto, hash or time)."
        )
    use_time = has_time and args.split in ("auto", "time")
    return use_time, fixed_cut


def _vocab_source(args, spec):
    """The `--vocab-from` directory's schema, checked against the spec, and
    its fingerprint; `(None, None)` without the flag."""
    if args.vocab_from is None:
        return None, None
    directory = args.vocab_from
    if not os.path.exists(os.path.join(directory, keys.SCHEMA_FILE)):
        raise ValueError(
            f"--vocab-from {directory} has no {keys.SCHEMA_FILE}: pass a "
            f"dataset directory (tfcvr preprocess) or a model directory "
            f"(tfcvr train)."
        )
    schema = Schema.load(directory)
    spec.check_matches(schema, source=directory)
    return schema, vf.directory_fingerprint(directory)


def _copy_vocabularies(schema, source_dir, out_dir):
    """Copies the schema's vocabulary files byte for byte."""
    for vocab_file in sorted({
        f.vocab_file for f in schema.categorical_features
        if f.hash_buckets is None and f.vocab_file is not None
    }):
        path = os.path.join(source_dir, vocab_file)
        data = b""
        if os.path.exists(path):
            with open(path, "rb") as f:
                data = f.read()
        with FileSystems.create(
            FileSystems.join(out_dir, vocab_file),
            compression_type=CompressionTypes.UNCOMPRESSED,
        ) as f:
            f.write(data)


def _default_shards(files):
    try:
        size = total_size(files)
    except Exception:  # noqa: BLE001 (size is only a hint)
        size = 0
    return max(1, min(MAX_DEFAULT_SHARDS, math.ceil(size / BYTES_PER_SHARD)))


# === Output directory ===


def _clear_outputs(out_dir, files):
    """Removes the outputs of an earlier run so a rerun overwrites cleanly."""
    if is_local(out_dir) and os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise ValueError(f"--out {out_dir} exists and is not a directory.")
    targets = [FileSystems.join(out_dir, name) for name in _OUTPUTS]
    for path in files:
        for target in targets:
            if os.path.abspath(path).startswith(os.path.abspath(target) + os.sep):
                raise ValueError(
                    f"Input file {path} lies inside the output directory "
                    f"{target}, which the job clears; choose another --out."
                )
    for target in targets:
        if is_local(target):
            if os.path.isdir(target):
                shutil.rmtree(target)
            elif os.path.exists(target):
                os.remove(target)
            continue
        matched = [
            m.path
            for pattern in (target, FileSystems.join(target, "**"))
            for r in FileSystems.match([pattern])
            for m in r.metadata_list
        ]
        if matched:
            FileSystems.delete(sorted(set(matched)))
    if is_local(out_dir):
        os.makedirs(out_dir, exist_ok=True)


# === Pipeline ===


def _make_pipeline(options):
    """DirectRunner jobs run on the FnApiRunner (Beam's DirectRunner would
    first try to download the Prism runner, which ignores the
    --direct_running_mode flags)."""
    runner = options.view_as(StandardOptions).runner
    if runner is not None and runner.lower() not in ("directrunner", "direct"):
        return beam.Pipeline(options=options)
    if options.view_as(DirectOptions).direct_running_mode == "multi_processing":
        # Worker processes unpickle our DoFns: make this checkout importable.
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        paths = os.environ.get("PYTHONPATH", "").split(os.pathsep)
        if root not in paths:
            os.environ["PYTHONPATH"] = os.pathsep.join([root] + [p for p in paths if p])
    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    provision_info = fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
    )
    return beam.Pipeline(
        runner=fn_runner.FnApiRunner(provision_info=provision_info),
        options=options,
    )


def _rejected_line(record):
    payload = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    sort_key = "\x00".join(
        (record["source"], record["raw"], record["reason"], record["detail"])
    )
    return (keys.REJECTED_DIR, 0), (sort_key, payload)


def build_pipeline(
    pipeline, reader, spec, out_dir, num_shards, eval_fraction=0.1,
    split="auto", use_time=False, fixed_cut=None, metadata=None,
    vocab_schema=None,
):
    """Adds the whole job to `pipeline`; returns the summary PCollection.

    Args:
        pipeline: `beam.Pipeline`.
        reader: a reader PTransform (see `beam_jobs.readers`).
        spec: `InputSpec` of the reader's rows (vocab flags applied).
        out_dir: str. Output dataset directory (already cleared).
        num_shards: int. Output files per split.
        eval_fraction: float. Share of eval rows (hash/time splits).
        split: str. One of `SPLIT_METHODS`.
        use_time: bool. Time split when the rows carry no split of their own.
        fixed_cut: float or None. Time split at this time instead of the
            computed quantile.
        metadata: dict. Provenance for schema.json and summary.json.
        vocab_schema: `Schema` or None. Encode with its vocabulary sizes
            and statistics (its vocabulary files already copied to
            `out_dir`) instead of computing them; count unseen values.
    """
    schema = spec.to_schema()
    outputs = pipeline | "Read" >> reader
    rows, reader_rejected = outputs[dl.ROWS], outputs[dl.REJECTED]

    rows_in = (
        rows
        | "CountRows" >> beam.ParDo(CountPerBundleFn(constant_key))
        | "RowCounts" >> beam.Values()
        | "SumRows" >> beam.CombineGlobally(sum)
    )
    reader_rejected_count = reader_rejected | "CountReaderRejected" >> (
        beam.combiners.Count.Globally()
    )

    if use_time and fixed_cut is None:
        cut = rows | "TimeCut" >> ComputeTimeCut(eval_fraction)
        split_cut = beam.pvalue.AsSingleton(cut)
    else:
        cut = pipeline | "FixedCut" >> beam.Create([fixed_cut])
        # A constant, not a side input: keeps reading, splitting and
        # encoding in one fused stage (rows are never materialized).
        split_cut = fixed_cut
    cut_side = beam.pvalue.AsSingleton(cut)
    split_out = rows | "AssignSplit" >> beam.ParDo(
        AssignSplitFn(split, eval_fraction, use_time=use_time, source="split"),
        cut=split_cut,
    ).with_outputs(TRAIN_ROWS, dl.REJECTED, main=SPLIT_ROWS)
    train_rows = split_out[TRAIN_ROWS]

    if vocab_schema is None:
        vocab_sizes = (
            train_rows
            | "Vocabularies" >> ComputeVocabularies(spec)
            | "WriteVocabularies" >> beam.ParDo(WriteVocabularyFn(out_dir))
        )
        stats = train_rows | "NumericStats" >> ComputeNumericStats(spec)
        oov = pipeline | "NoOOV" >> beam.Create([])
    else:
        given_sizes, given_stats = spec.computed_from(vocab_schema)
        vocab_sizes = pipeline | "GivenVocabSizes" >> beam.Create(
            sorted(given_sizes.items())
        )
        stats = pipeline | "GivenStats" >> beam.Create(sorted(given_stats.items()))
        oov = split_out[SPLIT_ROWS] | "CountOOV" >> CountOOV(vocab_schema, out_dir)

    split_shards = {keys.TRAIN_SPLIT: num_shards, keys.EVAL_SPLIT: num_shards}
    written = (
        split_out[SPLIT_ROWS]
        | "Encode" >> beam.ParDo(EncodeExampleFn(schema, split_shards))
        | "WriteExamples" >> WriteShards(out_dir, split_shards, TFRECORD_GZ)
        | "SumWritten" >> beam.CombinePerKey(sum)
    )

    rejected = (reader_rejected, split_out[dl.REJECTED]) | "AllRejected" >> (
        beam.Flatten()
    )
    rejected_counts = (
        rejected
        | "RejectedReason" >> beam.Map(lambda r: r["reason"])
        | "CountReasons" >> beam.combiners.Count.PerElement()
        | "CountRejectedMetrics" >> beam.Map(_count_rejected_metric)
    )
    _ = (
        rejected
        | "RejectedLines" >> beam.Map(_rejected_line)
        | "WriteRejected"
        >> WriteShards(out_dir, {keys.REJECTED_DIR: 1}, JSONL)
    )

    total_in = (
        (rows_in, reader_rejected_count)
        | "RowsInParts" >> beam.Flatten()
        | "RowsIn" >> beam.CombineGlobally(sum)
    )
    return (
        pipeline
        | "MetadataTrigger" >> beam.Create([None])
        | "WriteMetadata"
        >> beam.ParDo(
            WriteMetadataFn(
                spec, out_dir, metadata or {},
                features=None if vocab_schema is None else vocab_schema.features,
            ),
            vocab_sizes=beam.pvalue.AsDict(vocab_sizes),
            stats=beam.pvalue.AsDict(stats),
            written=beam.pvalue.AsDict(written),
            rejected=beam.pvalue.AsDict(rejected_counts),
            rows_in=beam.pvalue.AsSingleton(total_in),
            time_cut=cut_side,
            oov=beam.pvalue.AsDict(oov),
        )
    )


def _count_rejected_metric(item):
    reason, n = item
    beam.metrics.Metrics.counter(dl.REJECTED_NAMESPACE, reason).inc(n)
    return item


def _query_metrics(result):
    """Counters of namespace `tfcvr` by name (None when the runner has none)."""
    try:
        counters = result.metrics().query(
            MetricsFilter().with_namespace(dl.METRICS_NAMESPACE)
        )["counters"]
    except Exception:  # noqa: BLE001 (not every runner reports metrics)
        return None
    values = {}
    for counter in counters:
        value = counter.committed
        if value is None:
            value = counter.attempted
        name = counter.key.metric.name
        values[name] = values.get(name, 0) + (value or 0)
    return values


def _print_summary(summary, out):
    written = summary["rows_written"]
    lines = [
        f"rows read      {summary['rows_read']:>12,}",
        f"rows written   {sum(written.values()):>12,}  "
        f"(train {written[keys.TRAIN_SPLIT]:,}, eval {written[keys.EVAL_SPLIT]:,})",
        f"rows rejected  {summary['rows_rejected_total']:>12,}",
    ]
    for reason, n in summary["rows_rejected"].items():
        lines.append(f"  {reason:<28}{n:>10,}")
    if "oov" in summary:
        unseen = {f: e for f, e in summary["oov"].items() if e[OOV]}
        lines.append(
            f"unseen values  (not in the vocabulary of "
            f"{summary['vocab_from']['dir']}; none in "
            f"{len(summary['oov']) - len(unseen)} other features)"
        )
        for feature, entry in unseen.items():
            lines.append(
                f"  {feature:<28}{entry[OOV]:>10,} of {entry[VALUES]:,} "
                f"({100 * entry[OOV] / entry[VALUES]:.1f}%)"
            )
    if summary.get("rows_per_second"):
        lines.append(
            f"time           {summary['seconds']:>11.1f}s  "
            f"({summary['rows_per_second']:,.0f} rows/s)"
        )
    lines.append(f"output         {out}")
    print("\n".join(lines), flush=True)


def run(argv=None):
    """Runs the preprocessing job; returns 0 (the exit status).

    Args:
        argv: list of str or None (sys.argv[1:]). Flags of `build_parser`;
            every other flag goes to Beam's `PipelineOptions`.

    Raises:
        ValueError: a one-line message for bad flags, input or spec, or
            for a split left without rows (see `_empty_split_error`; the
            outputs stay, `summary.json` holds the message as `error`).
        RuntimeError: the row accounting did not add up (a bug).
    """
    run_job(argv)
    return 0


def in_ipython():
    """True inside an IPython shell or Jupyter kernel."""
    ipython = sys.modules.get("IPython")
    return ipython is not None and ipython.get_ipython() is not None


def run_job_in_child(argv):
    """`run_job(argv)` in a child process (`python -m beam_jobs.preprocess`).

    Inside IPython, Apache Beam switches to its interactive mode: it
    relabels transforms by notebook cell and imports its DataFrame API,
    which needs pandas < 2.4 (tfcvr allows newer), so a job would fail at
    its first transform. A child process runs it as the command line does;
    its output is printed here, its one-line error raised as ValueError,
    and the summary read back from summary.json.
    """
    args, _ = build_parser().parse_known_args(argv)
    env = dict(os.environ)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in paths if p != root])
    child = subprocess.run(
        [sys.executable, "-m", "beam_jobs.preprocess", *argv],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
    )
    print(child.stdout, end="", flush=True)
    if child.returncode != 0:
        lines = [line for line in child.stderr.splitlines() if line.strip()]
        last = lines[-1] if lines else f"the job exited with status {child.returncode}"
        raise ValueError(last.removeprefix(ERROR_PREFIX))
    return read_json(FileSystems.join(args.out.rstrip("/") or "/", keys.SUMMARY_FILE))


def run_job(argv=None):
    """Like `run`, but returns the summary dict (also in summary.json).

    Inside IPython (a notebook) the job runs in a child process
    (`run_job_in_child`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if in_ipython():
        return run_job_in_child(argv)
    args, pipeline_args = build_parser().parse_known_args(argv)
    _check_args(args)
    files = match_files(args.input)
    reader, spec = _make_reader(args, files)
    files = list(getattr(reader, "files", None) or files)
    spec = _apply_vocab_flags(spec, args)
    spec.to_schema()  # a spec the schema rejects fails before any Beam work
    vocab_schema, vocab_fingerprint = _vocab_source(args, spec)
    use_time, fixed_cut = _resolve_split(args, spec)
    num_shards = args.shards or _default_shards(files)
    out_dir = args.out.rstrip("/") if args.out not in ("/",) else args.out
    _clear_outputs(out_dir, files)
    write_json(FileSystems.join(out_dir, SPEC_FILE), spec.to_dict())
    if vocab_schema is not None:
        _copy_vocabularies(vocab_schema, args.vocab_from, out_dir)

    if not any(a.startswith("--default_sdk_harness_log_level") for a in pipeline_args):
        # Local worker processes would log every start and stop at INFO.
        pipeline_args = pipeline_args + ["--default_sdk_harness_log_level=WARNING"]
    options = PipelineOptions(pipeline_args)
    if options.view_as(DirectOptions).direct_running_mode == "multi_processing":
        # Worker processes relay their start-up warnings through this logger.
        logging.getLogger(
            "apache_beam.runners.portability.local_job_service"
        ).setLevel(logging.ERROR)
    runner_name = options.view_as(StandardOptions).runner or "DirectRunner"
    metadata = {
        "format": args.format,
        "input": args.input,
        "files": len(files),
        "split": {
            "method": args.split,
            "eval_fraction": (
                None if args.split in WHOLE_INPUT_SPLITS else args.eval_fraction
            ),
            "by_time": use_time,
        },
        "shards": num_shards,
    }
    if vocab_schema is not None:
        metadata["vocab_from"] = {
            "dir": args.vocab_from, vf.METADATA_KEY: vocab_fingerprint,
        }
    if not args.quiet:
        print(
            f"tfcvr preprocess: {len(files)} file(s) as {args.format} -> "
            f"{out_dir} on {runner_name}",
            flush=True,
        )
    start = time.perf_counter()
    pipeline = _make_pipeline(options)
    build_pipeline(
        pipeline, reader, spec, out_dir, num_shards,
        eval_fraction=(
            0.0 if args.split in WHOLE_INPUT_SPLITS else args.eval_fraction
        ),
        split=args.split, use_time=use_time, fixed_cut=fixed_cut,
        metadata=metadata, vocab_schema=vocab_schema,
    )
    result = pipeline.run()
    result.wait_until_finish()
    seconds = time.perf_counter() - start

    summary_path = FileSystems.join(out_dir, keys.SUMMARY_FILE)
    summary = read_json(summary_path)
    metrics = _query_metrics(result)
    if metrics:
        summary["blank_lines_skipped"] = metrics.get(dl.BLANK_LINES, 0)
        summary["header_lines_skipped"] = metrics.get(dl.HEADER_LINES, 0)
        if dl.ROWS_READ in metrics:
            summary["rows_read_counter"] = metrics[dl.ROWS_READ]
    summary["runner"] = runner_name
    summary["seconds"] = round(seconds, 3)
    summary["rows_per_second"] = round(summary["rows_read"] / max(seconds, 1e-9), 1)
    summary["finished_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"
    )
    write_json(summary_path, summary)
    if not args.quiet:
        _print_summary(summary, out_dir)
    if not summary["accounting_ok"]:
        raise RuntimeError(
            f"Row accounting failed: read {summary['rows_read']}, wrote "
            f"{summary['rows_written']}, rejected "
            f"{summary['rows_rejected_total']} (see {summary_path})."
        )
    if vocab_schema is not None and summary[vf.METADATA_KEY] != vocab_fingerprint:
        raise RuntimeError(
            f"The output's vocabulary fingerprint differs from that of "
            f"--vocab-from {args.vocab_from} (see {summary_path})."
        )
    counted = summary.get("rows_read_counter")
    if counted is not None and counted != summary["rows_read"]:
        raise RuntimeError(
            f"Row accounting failed: the reader counted {counted} records "
            f"but {summary['rows_read']} reached the job (see {summary_path})."
        )
    error = _empty_split_error(
        summary, args, getattr(reader, "split_files", None) or {}, out_dir
    )
    if error is not None:
        summary["error"] = error
        write_json(summary_path, summary)
        raise ValueError(error)
    return summary


def _empty_split_error(summary, args, split_files, out_dir):
    """The one-line error for a split left without rows, or None.

    A split whose rows come from files of its own (the format's split,
    kept by `--split auto|source`) must get rows from them, and the train
    split must get rows whatever the format: an empty training set is a
    broken input, not a dataset.
    """
    written = summary["rows_written"]
    read = summary["rows_read"]
    rejected = summary["rows_rejected"]
    reasons = ", ".join(
        f"{reason} {n:,}"
        for reason, n in sorted(rejected.items(), key=lambda rn: -rn[1])[:3]
    )
    why = (
        f"{read:,} record{'' if read == 1 else 's'} read in all, "
        f"{summary['rows_rejected_total']:,} rejected"
    )
    if reasons:
        more = ", ..." if len(rejected) > 3 else ""
        rejected_dir = FileSystems.join(out_dir, keys.REJECTED_DIR)
        why += f" ({reasons}{more}; see {rejected_dir})"
    if args.split in ("auto", "source"):
        for split in (keys.TRAIN_SPLIT, keys.EVAL_SPLIT):
            files = split_files.get(split)
            if files and not written[split]:
                names = ", ".join(os.path.basename(f) for f in files[:5])
                more = f" and {len(files) - 5} more" if len(files) > 5 else ""
                return (
                    f"The {split} split has no rows: {names}{more} gave none; "
                    f"{why}."
                )
    # `--split eval` empties the train split on purpose (a held-out log).
    if not written[keys.TRAIN_SPLIT] and args.split != keys.EVAL_SPLIT:
        return (
            f"The {keys.TRAIN_SPLIT} split has no rows: --input {args.input} "
            f"({args.format}) gave none; {why}."
        )
    return None


def main(argv=None):
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    try:
        run(argv)
    except ValueError as e:
        print(f"{ERROR_PREFIX}{e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
