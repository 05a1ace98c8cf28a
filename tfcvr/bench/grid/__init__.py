"""The estimator grid behind `tfcvr bench grid`: estimators x seeds x
datasets under one setting, resumable, one child process per run, and a
Markdown + PNG report (see docs/leaderboard.md).

By role: `config` (what a grid is: datasets, training settings, cells),
`model_variant` (a named estimator with constructor overrides: a row),
`presets` (the named grids), `runner` (running it: parent, child
processes, results file, lock), `cell` (what one child runs), `report`
(the Markdown and plots, with `paper_reference` numbers; the figure_*
functions draw them on the active backend, inline in a notebook),
`in_process_runner` (a grid without child processes) and `command`
(`tfcvr bench grid`). Nothing imported here imports TensorFlow or Keras.
"""

from tfcvr.bench.grid.config import ExternalDataset
from tfcvr.bench.grid.config import GridCell
from tfcvr.bench.grid.config import GridConfig
from tfcvr.bench.grid.config import SimulatedDataset
from tfcvr.bench.grid.config import TrainSettings
from tfcvr.bench.grid.in_process_runner import InProcessRunner
from tfcvr.bench.grid.model_variant import ModelVariant
from tfcvr.bench.grid.presets import PRESETS
from tfcvr.bench.grid.presets import preset_config
from tfcvr.bench.grid.report import figure_bias_by_ctr_decile
from tfcvr.bench.grid.report import figure_leaderboard
from tfcvr.bench.grid.report import figure_metric_vs_bias
from tfcvr.bench.grid.report import figure_reliability
from tfcvr.bench.grid.report import group_rows
from tfcvr.bench.grid.report import section_tables
from tfcvr.bench.grid.report import write_report
from tfcvr.bench.grid.runner import GridRunner
from tfcvr.bench.grid.runner import ResultsStore
from tfcvr.bench.grid.runner import SubprocessRunner

__all__ = [
    "ExternalDataset",
    "GridCell",
    "GridConfig",
    "GridRunner",
    "InProcessRunner",
    "ModelVariant",
    "PRESETS",
    "ResultsStore",
    "SimulatedDataset",
    "SubprocessRunner",
    "TrainSettings",
    "figure_bias_by_ctr_decile",
    "figure_leaderboard",
    "figure_metric_vs_bias",
    "figure_reliability",
    "group_rows",
    "preset_config",
    "section_tables",
    "write_report",
]
