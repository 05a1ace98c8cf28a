"""Raw logs -> TFRecords + schema.json + vocab/ with Apache Beam.

    tfcvr preprocess --input PATH_OR_GLOB --format FORMAT --out DIR
                     [--spec spec.json] [Beam pipeline options ...]

The same job as `python -m beam_jobs.preprocess`: flags it does not know
(`--runner DataflowRunner --project ... --region ... --temp_location
gs://... --setup_file ./setup.py`, `--direct_running_mode=multi_processing
--direct_num_workers=2`, ...) go to Beam's PipelineOptions. Called inside
IPython (a notebook), the job runs in a child process (see `run_in_child`).
"""

import os
import subprocess
import sys

from beam_jobs import preprocess
from tfcvr.cli.cli_error import CLIError

# tfcvr.cli.main hands this command its raw argv with unknown flags kept.
PASS_UNKNOWN_ARGS = True
ERROR_PREFIX = "beam_jobs.preprocess: error: "
# The directory holding the `tfcvr` and `beam_jobs` packages.
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def add_arguments(parser):
    parser.epilog = (
        "Unknown flags are Beam pipeline options (e.g. --runner "
        "DataflowRunner, --direct_running_mode=multi_processing)."
    )
    preprocess.add_arguments(parser)


def in_ipython():
    """True inside an IPython shell or Jupyter kernel."""
    ipython = sys.modules.get("IPython")
    return ipython is not None and ipython.get_ipython() is not None


def run_in_child(argv):
    """Runs the job as `python -m beam_jobs.preprocess ARGV`; returns 0.

    Inside IPython, Apache Beam switches to its interactive mode: it
    relabels transforms by cell and imports its DataFrame API, which needs
    pandas < 2.4 (tfcvr allows newer), so the job would fail at its first
    transform. A child process runs it exactly as the command line does.
    The child's output is printed here; its one-line error is raised as a
    `CLIError`.
    """
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = _PROJECT_ROOT + (os.pathsep + path if path else "")
    child = subprocess.run(
        [sys.executable, "-m", "beam_jobs.preprocess", *argv],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
    )
    print(child.stdout, end="", flush=True)
    if child.returncode != 0:
        lines = [line for line in child.stderr.splitlines() if line.strip()]
        last = lines[-1] if lines else f"the job exited with status {child.returncode}"
        raise CLIError(last[len(ERROR_PREFIX):] if last.startswith(ERROR_PREFIX) else last)
    return 0


def run(args):
    if in_ipython():
        return run_in_child(args.raw_argv)
    return preprocess.run(args.raw_argv)
