"""Score every row of a raw log with a trained model or a SavedModel.

    tfcvr predict (--model-dir DIR | --saved-model DIR) --input PATH_OR_GLOB
                  --format csv|parquet|jsonl --out FILE [--spec SPEC.json]
                  [--id-column COLUMN] [--include-auxiliary]

Writes pCTR, pCVR and pCTCVR (`ctr`, `cvr`, `ctcvr`; auxiliary heads with
`--include-auxiliary`) per good row to FILE (csv, parquet or jsonl, from
its extension), with the id column passed through. Rows are read by the
Beam job's own readers, so a bad row is a dead letter for the same reason
as in `tfcvr preprocess`; dead letters go to a rejected file. Features go
through the raw-feature transform the SavedModel carries.
"""

import os

from tfcvr.cli.cli_error import CLIError
from tfcvr.export.export_saved_model import existing_versions
from tfcvr.export.log_scorer import LogScorer
from tfcvr.export.predict_log import predict_log
from tfcvr.export.prediction_writer import PREDICTION_FORMATS
from tfcvr.export.prediction_writer import prediction_format
from tfcvr.export.raw_log import LOG_FORMATS
from tfcvr.export.raw_log import find_input_spec
from tfcvr.export.raw_log import open_log


def add_arguments(parser):
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-dir", help="directory written by `tfcvr train`")
    source.add_argument(
        "--saved-model",
        help="an exported version directory (saved_models/NAME/V), or the "
        "model path (saved_models/NAME: its latest version)",
    )
    parser.add_argument("--input", required=True,
                        help="log file, directory, glob or comma-separated list")
    parser.add_argument("--format", required=True, choices=LOG_FORMATS)
    parser.add_argument("--out", required=True,
                        help="prediction file: .csv, .parquet or .jsonl")
    parser.add_argument(
        "--spec",
        help="input spec of the log (default: the one recorded with the "
        "model, else spec.json beside the log)",
    )
    parser.add_argument(
        "--id-column",
        help="column passed through to the output (default: the spec's "
        "row_key, if any)",
    )
    parser.add_argument("--include-auxiliary", action="store_true",
                        help="also write the model's auxiliary outputs")
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument(
        "--rejected",
        help="dead letters, one JSON object per line (default: "
        "OUT's name + .rejected.jsonl)",
    )
    parser.add_argument("--delimiter", default=",", help="csv field delimiter")
    parser.add_argument("--no-progress", action="store_true")


def resolve_saved_model(path):
    """A version directory, or the latest version under a model path."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    versions = existing_versions(path)
    if not versions:
        raise CLIError(f"No SavedModel (saved_model.pb or versions) at {path}")
    return os.path.join(path, str(versions[-1]))


def rejected_path(out):
    """`scores.csv` -> `scores.rejected.jsonl`."""
    for ending in PREDICTION_FORMATS:
        if out.lower().endswith(ending):
            return out[: -len(ending)] + ".rejected.jsonl"
    return out + ".rejected.jsonl"


def load_scorer(args):
    if args.model_dir:
        scorer = LogScorer.from_model_dir(args.model_dir, args.include_auxiliary)
        return scorer, "model directory"
    path = resolve_saved_model(args.saved_model)
    return LogScorer.from_saved_model(path, args.include_auxiliary), "SavedModel"


def open_scored_log(args, scorer, what, features_only=True):
    """The reader of `--input` with the spec checked against the model."""
    spec, origin = find_input_spec(
        args.spec, scorer.input_spec, f"{what} {scorer.source}", args.input
    )
    spec.check_matches(scorer.schema, source=scorer.source)
    return open_log(
        args.input, args.format, spec, features_only=features_only,
        id_column=getattr(args, "id_column", None), delimiter=args.delimiter,
    ), origin


def run(args):
    if args.batch_size < 1:
        raise CLIError(f"--batch-size must be >= 1. Received: {args.batch_size}")
    prediction_format(args.out)
    scorer, what = load_scorer(args)
    reader, _ = open_scored_log(args, scorer, what)
    id_column = reader.spec.row_key
    rejected = args.rejected or rejected_path(args.out)
    counts = predict_log(
        scorer, reader, args.out, rejected, batch_size=args.batch_size,
        id_column=id_column, progress=not args.no_progress,
    )
    reasons = f" ({counts.reasons()})" if counts.rejected else ""
    print(
        f"tfcvr predict: {counts.rows_in:,} rows in, {counts.good:,} "
        f"predicted, {counts.rejected_total:,} rejected{reasons} -> "
        f"{args.out}; rejected rows in {rejected}"
    )
    return 0
