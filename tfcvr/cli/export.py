"""Export a trained model as a TF Serving SavedModel.

Writes `OUT/<version>/` (next free version unless `--version`), warmup
requests and the model's entry in `models.config` next to `OUT`. With
`--check`, a fresh process loads the SavedModel and its outputs are
compared with the Keras model's on sample rows (from `--input LOG`, read as
`tfcvr predict` reads it, else the dataset's eval split, else synthetic);
a mismatch exits 1 and removes the version again (and puts `models.config`
back as it was). A model whose weights are not finite is refused.
"""

import os

from tfcvr.cli.cli_error import CLIError
from tfcvr.export.check_saved_model import check_saved_model
from tfcvr.export.export_saved_model import export_saved_model
from tfcvr.export.export_saved_model import withdraw_version
from tfcvr.export.model_config import MODEL_CONFIG_FILE
from tfcvr.export.sample_rows import dataset_rows
from tfcvr.export.sample_rows import synthetic_rows
from tfcvr.export.raw_log import LOG_FORMATS
from tfcvr.export.raw_log import find_input_spec
from tfcvr.export.raw_log import iter_log_batches
from tfcvr.export.raw_log import open_log
from tfcvr.export.raw_log import recorded_spec
from tfcvr.export.serving_module import resolve_required_features
from tfcvr.features.vocab_fingerprint import check_same_vocabulary
from tfcvr.training.model_dir import load_model_dir
from tfcvr.training.model_dir import recorded_data_dir

DEFAULT_CHECK_ROWS = 64


def add_arguments(parser):
    parser.add_argument("--model-dir", required=True,
                        help="trained model directory (model.keras, "
                             "schema.json, vocab/)")
    parser.add_argument("--out", required=True,
                        help="model path under the model base, e.g. "
                             "saved_models/esmm (the name is its last part)")
    parser.add_argument("--version", type=int, default=None,
                        help="version number (default: next free one)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing --version")
    parser.add_argument("--check", action="store_true",
                        help="load the SavedModel in a fresh process and "
                             "compare it with the Keras model")
    parser.add_argument("--data", default=None,
                        help="dataset directory for --check rows (default: "
                             "the one recorded by training, else synthetic "
                             "rows from the vocabularies)")
    parser.add_argument("--input", default=None, metavar="LOG",
                        help="raw log for --check rows, read as `tfcvr "
                             "predict` reads it (needs --format)")
    parser.add_argument("--format", choices=LOG_FORMATS,
                        help="format of --input")
    parser.add_argument("--spec", help="input spec of --input (default: "
                                       "the model directory's spec.json)")
    parser.add_argument("--delimiter", default=",",
                        help="csv field delimiter of --input")
    parser.add_argument("--check-rows", type=int, default=DEFAULT_CHECK_ROWS,
                        help="rows compared by --check (default: "
                             f"{DEFAULT_CHECK_ROWS})")
    parser.add_argument("--atol", type=float, default=1e-5,
                        help="largest allowed difference for --check")
    parser.add_argument("--warmup-rows", type=int, default=8,
                        help="synthetic rows in the warmup requests "
                             "(0: no warmup file)")
    parser.add_argument("--include-auxiliary", action="store_true",
                        help="also expose the model's auxiliary outputs")
    parser.add_argument("--require", action="append", default=None,
                        metavar="FEATURE",
                        help="feature whose missing value fails a request "
                             "(repeatable; default: the schema's item id)")
    parser.add_argument("--no-required", action="store_true",
                        help="no required features: every missing value "
                             "takes its training default")
    parser.add_argument("--serving-base-path", default="/models",
                        help="where TF Serving sees the model base, written "
                             "into models.config (default: /models, the "
                             "container mount); 'local' writes the absolute "
                             "local path")


def _log_rows(args, model, model_dir, required):
    """The first `--check-rows` good rows of `--input` with every required
    feature."""
    spec, _ = find_input_spec(
        args.spec, recorded_spec(model_dir), model_dir, args.input
    )
    spec.check_matches(model.schema, source=model_dir)
    reader = open_log(args.input, args.format, spec, delimiter=args.delimiter)
    rows = []
    for batch, _ in iter_log_batches(reader, args.check_rows):
        rows += [r for r in batch if all(r.get(n) not in (None, []) for n in required)]
        if len(rows) >= args.check_rows:
            break
    if not rows:
        raise CLIError(
            f"--input {args.input} has no good row with the required "
            f"features {list(required)}."
        )
    return rows[: args.check_rows], f"{args.input} (first good rows)"


def _check_rows(args, model, model_dir, required):
    if args.input is not None:
        return _log_rows(args, model, model_dir, required)
    data = args.data or recorded_data_dir(model_dir)
    if data is not None:
        try:
            check_same_vocabulary(model_dir, data)
            rows = dataset_rows(data, model.schema, args.check_rows)
        except ValueError as e:
            if args.data:
                raise
            print(f"tfcvr export: recorded dataset unusable ({e}); using "
                  f"synthetic rows")
        else:
            # A row lacking a required feature is refused by design.
            rows = [r for r in rows if all(r.get(n) not in (None, [])
                                           for n in required)]
            if rows:
                return rows, f"{data} (eval split)"
    rows = synthetic_rows(model.schema, model_dir, args.check_rows, seed=1,
                          keep_present=required)
    return rows, "synthetic rows from the vocabularies"


def run(args):
    out = os.path.normpath(args.out)
    name = os.path.basename(out)
    out_base = os.path.dirname(out) or "."
    if not name or name in (".", ".."):
        raise CLIError(f"--out must end with the model name. Received: {args.out}")
    if args.check_rows < 1:
        raise CLIError(f"--check-rows must be >= 1. Received: {args.check_rows}")
    if args.input is not None and (args.format is None or args.data):
        raise CLIError("--input needs --format, and takes the place of --data.")
    required = [] if args.no_required else args.require
    model, vocab_dir = load_model_dir(args.model_dir)
    if args.check:
        # Before exporting: a refused --input or --data writes nothing.
        rows, source = _check_rows(
            args, model, args.model_dir,
            resolve_required_features(model.schema, required),
        )
    base_path = None if args.serving_base_path == "local" else (
        args.serving_base_path
    )
    config_path = os.path.join(out_base, MODEL_CONFIG_FILE)
    config_text = None
    if os.path.exists(config_path):
        with open(config_path) as f:
            config_text = f.read()
    path = export_saved_model(
        model,
        out_base,
        name=name,
        version=args.version,
        vocab_dir=vocab_dir,
        warmup_rows=args.warmup_rows,
        include_auxiliary=args.include_auxiliary,
        required_features=required,
        serving_base_path=base_path,
        overwrite=args.overwrite,
    )
    print(f"Exported {name} version {os.path.basename(path)} to {path}")
    print(f"Updated {config_path}")
    if not args.check:
        return 0
    try:
        report = check_saved_model(path, model, rows, vocab_dir,
                                   atol=args.atol)
    except BaseException:
        # A version that cannot even be checked must not be served either.
        withdraw_version(path, config_path, config_text)
        raise
    worst = max(report["max_abs_diff"].values())
    print(
        f"Check on {report['rows']} rows from {source}: largest difference "
        f"{worst:.3g} (allowed {args.atol:g})"
    )
    for key, diff in sorted(report["max_abs_diff"].items()):
        print(f"  {key}: {diff:.3g}")
    if not report["ok"]:
        withdraw_version(path, config_path, config_text)
        print(f"tfcvr export: check FAILED: the SavedModel disagrees with the "
              f"Keras model; removed {path} and its models.config entry")
        return 1
    print("Check passed: the SavedModel loads without tfcvr and matches the "
          "Keras model")
    return 0
