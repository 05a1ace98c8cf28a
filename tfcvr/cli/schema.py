"""Propose an input spec (spec.json) from a sample of a log file.

    tfcvr schema infer --input FILE [--format csv|parquet|jsonl] [--rows N]
                       [--out spec.json]

Prints the proposed spec as JSON (or writes it with --out); notes about
choices worth checking go to stderr. Edit the spec, then run
`tfcvr preprocess --input ... --spec spec.json`.
"""

import os
import sys

from beam_jobs.spec_inference import infer_spec
from tfcvr.cli.cli_error import CLIError


def add_arguments(parser):
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    infer = sub.add_parser(
        "infer", help="propose an input spec from a sample of a log file"
    )
    infer.add_argument("--input", required=True, help="a csv, parquet or jsonl file")
    infer.add_argument(
        "--format", choices=("csv", "parquet", "jsonl"),
        help="file format (default: from the file extension)",
    )
    infer.add_argument(
        "--rows", type=int, default=10000,
        help="records sampled from the start of the file (default 10000)",
    )
    infer.add_argument("--delimiter", help="csv delimiter (default ',')")
    infer.add_argument("--out", help="write the spec here instead of printing it")


def run(args):
    if getattr(args, "action", None) != "infer":
        raise CLIError("choose an action: `tfcvr schema infer --input FILE`")
    if os.path.isdir(args.input):
        raise CLIError(f"--input must be a file, not a directory: {args.input}")
    spec, notes = infer_spec(
        args.input, fmt=args.format, rows=args.rows, delimiter=args.delimiter
    )
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if args.out:
        spec.save(args.out)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(spec.to_json())
    return 0
