"""Encode a dataset's splits for training (vocabulary indices materialised).

    tfcvr encode DIR [--splits train,eval] [--chunk-rows 1024]

`tfcvr preprocess` does this after its Beam job unless `--no-encode`; this
command is for directories preprocessed before it did (or on Dataflow).
`tfcvr train` reads the encoded shards while they are valid for DIR (same
vocabulary, schema and raw TFRecords) and the raw TFRecords otherwise.
"""

from tfcvr.cli.cli_error import CLIError
from tfcvr.data.encode_splits import DEFAULT_CHUNK_ROWS
from tfcvr.data.encode_splits import describe
from tfcvr.data.encode_splits import encode_splits
from tfcvr.features import keys


def add_arguments(parser):
    parser.add_argument("dir", metavar="DIR", help="dataset directory (tfcvr preprocess output)")
    parser.add_argument("--splits", default=f"{keys.TRAIN_SPLIT},{keys.EVAL_SPLIT}",
                        help="comma-separated splits (default train,eval; each must have TFRecords)")
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS,
                        help=f"rows per encoded record (default {DEFAULT_CHUNK_ROWS})")


def run(args):
    splits = tuple(s.strip() for s in args.splits.split(",") if s.strip())
    if not splits:
        raise CLIError(f"--splits names no split. Received: {args.splits!r}")
    manifests = encode_splits(args.dir, splits, chunk_rows=args.chunk_rows,
                              required=True)
    print(describe(args.dir, manifests, splits), flush=True)
    return 0
