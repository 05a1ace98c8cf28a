"""The estimator grid behind `tfcvr bench grid`: estimators x seeds x
datasets under one setting, resumable, one child process per run, and a
Markdown + PNG report (see docs/leaderboard.md)."""

from tfcvr.bench.grid.external_dataset import ExternalDataset
from tfcvr.bench.grid.grid_cell import GridCell
from tfcvr.bench.grid.grid_config import GridConfig
from tfcvr.bench.grid.grid_runner import GridRunner
from tfcvr.bench.grid.presets import PRESETS
from tfcvr.bench.grid.presets import preset_config
from tfcvr.bench.grid.report import write_report
from tfcvr.bench.grid.results_store import ResultsStore
from tfcvr.bench.grid.simulated_dataset import SimulatedDataset
from tfcvr.bench.grid.subprocess_runner import SubprocessRunner
from tfcvr.bench.grid.train_settings import TrainSettings

__all__ = [
    "ExternalDataset",
    "GridCell",
    "GridConfig",
    "GridRunner",
    "PRESETS",
    "ResultsStore",
    "SimulatedDataset",
    "SubprocessRunner",
    "TrainSettings",
    "preset_config",
    "write_report",
]
