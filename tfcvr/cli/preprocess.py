"""Raw logs -> TFRecords + schema.json + vocab/ with Apache Beam.

    tfcvr preprocess --input PATH_OR_GLOB --format FORMAT --out DIR
                     [--spec spec.json] [Beam pipeline options ...]

The same job as `python -m beam_jobs.preprocess`: flags it does not know
(`--runner DataflowRunner --project ... --region ... --temp_location
gs://... --setup_file ./setup.py`, `--direct_running_mode=multi_processing
--direct_num_workers=2`, ...) go to Beam's PipelineOptions.
"""

import argparse

_ARGV = "_preprocess_argv"


def add_arguments(parser):
    from beam_jobs import preprocess

    parser.allow_abbrev = False
    parser.epilog = (
        "Unknown flags are Beam pipeline options (e.g. --runner "
        "DataflowRunner, --direct_running_mode=multi_processing)."
    )
    preprocess.add_arguments(parser)
    parse_known_args = parser.parse_known_args

    # The command's parser must accept Beam's flags, which it cannot know:
    # keep them (and the raw argv) for beam_jobs.preprocess.run.
    def parse_args(args=None, namespace=None):
        namespace, extra = parse_known_args(args, namespace)
        setattr(namespace, _ARGV, list(args) if args is not None else None)
        namespace.pipeline_args = extra
        return namespace

    parser.parse_args = parse_args


def _argv_from_namespace(args):
    from beam_jobs import preprocess

    parser = argparse.ArgumentParser(add_help=False)
    preprocess.add_arguments(parser)
    argv = []
    for action in parser._actions:
        value = getattr(args, action.dest, None)
        if value is None or value is False or value == []:
            continue
        flag = action.option_strings[0]
        if value is True:
            argv.append(flag)
        elif isinstance(value, list):
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    return argv + list(getattr(args, "pipeline_args", []) or [])


def run(args):
    from beam_jobs import preprocess

    argv = getattr(args, _ARGV, None)
    if argv is None:
        argv = _argv_from_namespace(args)
    preprocess.run(argv)
    return 0
