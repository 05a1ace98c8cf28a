"""Raw logs -> TFRecords + schema.json + vocab/ with Apache Beam.

    tfcvr preprocess --input PATH_OR_GLOB --format FORMAT --out DIR
                     [--spec spec.json] [Beam pipeline options ...]

The same job as `python -m beam_jobs.preprocess`: flags it does not know
(`--runner DataflowRunner --project ... --region ... --temp_location
gs://... --setup_file ./setup.py`, `--direct_running_mode=multi_processing
--direct_num_workers=2`, ...) go to Beam's PipelineOptions.
"""

from beam_jobs import preprocess

# tfcvr.cli.main hands this command its raw argv with unknown flags kept.
PASS_UNKNOWN_ARGS = True


def add_arguments(parser):
    parser.epilog = (
        "Unknown flags are Beam pipeline options (e.g. --runner "
        "DataflowRunner, --direct_running_mode=multi_processing)."
    )
    preprocess.add_arguments(parser)


def run(args):
    return preprocess.run(args.raw_argv)
