"""The estimator grid behind `tfcvr bench grid`: estimators x seeds x
datasets under one setting, resumable, one child process per run, and a
Markdown + PNG report (see docs/leaderboard.md).

By role: `config` (what a grid is: datasets, training settings, cells),
`model_variant` (a named estimator with constructor overrides: a row),
`presets` (the named grids), `runner` (running it: parent, child
processes, results file, lock), `cell` (what one child runs), `report`
(the Markdown and plots, with `paper_reference` numbers) and `command`
(`tfcvr bench grid`). Nothing imported here imports TensorFlow or Keras.
"""

from tfcvr.bench.grid.config import ExternalDataset
from tfcvr.bench.grid.config import GridCell
from tfcvr.bench.grid.config import GridConfig
from tfcvr.bench.grid.config import SimulatedDataset
from tfcvr.bench.grid.config import TrainSettings
from tfcvr.bench.grid.model_variant import ModelVariant
from tfcvr.bench.grid.presets import PRESETS
from tfcvr.bench.grid.presets import preset_config
from tfcvr.bench.grid.report import write_report
from tfcvr.bench.grid.runner import GridRunner
from tfcvr.bench.grid.runner import ResultsStore
from tfcvr.bench.grid.runner import SubprocessRunner

__all__ = [
    "ExternalDataset",
    "GridCell",
    "GridConfig",
    "GridRunner",
    "ModelVariant",
    "PRESETS",
    "ResultsStore",
    "SimulatedDataset",
    "SubprocessRunner",
    "TrainSettings",
    "preset_config",
    "write_report",
]
