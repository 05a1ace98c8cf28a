"""Raw logs -> TFRecords + schema.json + vocab/ with Apache Beam.

    tfcvr preprocess --input PATH_OR_GLOB --format FORMAT --out DIR
                     [--spec spec.json] [--no-encode] [Beam pipeline options ...]

The same job as `python -m beam_jobs.preprocess`: flags it does not know
(`--runner DataflowRunner --project ... --region ... --temp_location
gs://... --setup_file ./setup.py`, `--direct_running_mode=multi_processing
--direct_num_workers=2`, ...) go to Beam's PipelineOptions.

After the job, the train and eval splits are encoded for training
(`tfcvr encode`: the vocabulary lookups done once, with the directory's
own vocabulary, which `--vocab-from` copied there); `--no-encode` skips it.
"""

from beam_jobs import preprocess
from beam_jobs.readers.input_files import is_local
from tfcvr.data.encode_splits import describe
from tfcvr.data.encode_splits import encode_splits
from tfcvr.features import keys

# tfcvr.cli.main hands this command its raw argv with unknown flags kept.
PASS_UNKNOWN_ARGS = True
NO_ENCODE = "--no-encode"
SPLITS = (keys.TRAIN_SPLIT, keys.EVAL_SPLIT)


def add_arguments(parser):
    parser.epilog = (
        "Unknown flags are Beam pipeline options (e.g. --runner "
        "DataflowRunner, --direct_running_mode=multi_processing)."
    )
    preprocess.add_arguments(parser)
    parser.add_argument(NO_ENCODE, action="store_true",
                        help="do not encode the splits for training afterwards "
                             "(`tfcvr encode DIR` does it later)")


def run(args):
    # The job's own parser would hand the flag to Beam.
    status = preprocess.run([a for a in args.raw_argv if a != NO_ENCODE])
    if args.no_encode:
        return status
    if not is_local(args.out):
        if not args.quiet:
            print(f"not encoded for training: {args.out} is not a local "
                  f"directory (run `tfcvr encode` where it is)", flush=True)
        return status
    manifests = encode_splits(args.out, SPLITS)
    if not args.quiet:
        print(describe(args.out, manifests, SPLITS), flush=True)
    return status
