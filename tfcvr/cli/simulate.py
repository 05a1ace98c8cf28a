"""Write simulated impression logs with ground truth (csv, parquet, aliccp)."""

import json
import math
import os
import sys

from tfcvr.simulation import simulate

FORMATS = ("csv", "parquet", "aliccp")
# Below this many rows the run takes seconds; a bar would only flicker.
PROGRESS_MIN_ROWS = 200_000


def add_arguments(parser):
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument(
        "--rows", default="100000",
        help="impressions to simulate, e.g. 1000000 or 1e6 (default 100000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--selection-bias", type=float, default=None,
        help="weight of the conversion intent in the click logit; 0 = missing "
             "at random (default 1.0)",
    )
    parser.add_argument(
        "--format", default="csv", dest="fmt",
        help=f"output format: {', '.join(FORMATS)} (default csv)",
    )
    parser.add_argument("--ctr", type=float, default=None, help="target CTR (default 0.04)")
    parser.add_argument(
        "--cvr", type=float, default=None,
        help="target CVR among clicks (default 0.01)",
    )
    parser.add_argument("--num-users", type=int, default=None, help="users (default 100000)")
    parser.add_argument("--num-items", type=int, default=None, help="items (default 150000)")
    parser.add_argument(
        "--shards", type=int, default=1,
        help="csv/parquet files to split the rows into (default 1)",
    )
    parser.add_argument(
        "--overwrite", action="store_true",
        help="write into a non-empty directory, replacing earlier simulator files",
    )
    parser.add_argument("--no-progress", action="store_true", help="never show a progress bar")


def _parse_rows(text):
    cleaned = str(text).replace("_", "").replace(",", "").strip()
    try:
        value = float(cleaned)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value != int(value):
        raise ValueError(f"--rows must be a whole number. Received: {text!r}")
    if value < 1:
        raise ValueError(f"--rows must be >= 1. Received: {text}")
    return int(value)


def _percent(value):
    return "n/a" if value is None else f"{100.0 * value:.3g}%"


def run(args):
    if args.fmt not in FORMATS:
        raise ValueError(
            f"unknown --format {args.fmt!r}; choose from {', '.join(FORMATS)}"
        )
    rows = _parse_rows(args.rows)
    for flag, value in (("--ctr", args.ctr), ("--cvr", args.cvr)):
        if value is not None and not 0.0 < value < 1.0:
            raise ValueError(f"{flag} must be strictly between 0 and 1. Received: {value}")

    progress = (
        not args.no_progress and rows >= PROGRESS_MIN_ROWS and sys.stderr.isatty()
    )
    result = simulate(
        args.out,
        rows=rows,
        seed=args.seed,
        selection_bias=args.selection_bias,
        fmt=args.fmt,
        ctr=args.ctr,
        cvr=args.cvr,
        num_users=args.num_users,
        num_items=args.num_items,
        shards=args.shards,
        overwrite=args.overwrite,
        progress=progress,
    )
    with open(result["simulation"]) as f:
        record = json.load(f)
    config = record["config"]
    names = [os.path.basename(p) for p in result["files"]]
    names += [os.path.basename(p) for p in (result["spec"], result["simulation"]) if p]
    splits = ""
    if result["splits"]:
        splits = " (" + ", ".join(f"{n:,} {s}" for s, n in result["splits"].items()) + ")"
    print(
        f"Simulated {result['rows']:,} impressions{splits} in "
        f"{result['seconds']:.1f} s (seed {config['seed']}, selection_bias "
        f"{config['selection_bias']:g}, {config['num_users']:,} users, "
        f"{config['num_items']:,} items): CTR {_percent(result['realised_ctr'])} "
        f"(target {_percent(config['ctr'])}), CVR among clicks "
        f"{_percent(result['realised_cvr_clicked'])} (target "
        f"{_percent(config['cvr'])}), CVR over all impressions "
        f"{_percent(result['realised_cvr_all'])} (counterfactual labels), "
        f"CTCVR {_percent(result['realised_ctcvr'])}; {result['clicks']:,} "
        f"clicks, {result['conversions']:,} conversions. Wrote "
        f"{len(names)} files to {result['out_dir']}: {', '.join(names)}."
    )
    return 0
