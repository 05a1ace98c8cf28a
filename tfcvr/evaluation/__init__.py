"""Honest evaluation of entire-space CVR models (numpy only, any backend).

Each "CVR AUC" protocol has its own name (`metric_names`); calibration and,
on simulated data, errors against the true CVR of unclicked rows are reported
beside the ranking metrics. Everything is exact and streams over batches.
"""

from tfcvr.evaluation import metric_names
from tfcvr.evaluation.calibration import binned_means
from tfcvr.evaluation.calibration import ece_from_reliability
from tfcvr.evaluation.calibration import equal_mass_bin_starts
from tfcvr.evaluation.calibration import expected_calibration_error
from tfcvr.evaluation.calibration import pcoc
from tfcvr.evaluation.calibration import reliability_curve
from tfcvr.evaluation.collect_predictions import collect_predictions
from tfcvr.evaluation.cvr_evaluator import CVREvaluator
from tfcvr.evaluation.evaluate_model import evaluate_model
from tfcvr.evaluation.format_table import format_metrics_table
from tfcvr.evaluation.json_safe import json_safe
from tfcvr.evaluation.plots import plot_pcvr_against_true_cvr
from tfcvr.evaluation.pointwise import log_loss
from tfcvr.evaluation.pointwise import mean_bias
from tfcvr.evaluation.pointwise import rmse
from tfcvr.evaluation.propensity_check import propensity_check
from tfcvr.evaluation.ranking import grouped_auc
from tfcvr.evaluation.ranking import roc_auc
from tfcvr.evaluation.streaming_auc import StreamingAUC
from tfcvr.evaluation.streaming_gauc import StreamingGAUC

__all__ = [
    "CVREvaluator",
    "StreamingAUC",
    "StreamingGAUC",
    "binned_means",
    "collect_predictions",
    "ece_from_reliability",
    "equal_mass_bin_starts",
    "evaluate_model",
    "expected_calibration_error",
    "format_metrics_table",
    "grouped_auc",
    "json_safe",
    "log_loss",
    "mean_bias",
    "propensity_check",
    "metric_names",
    "pcoc",
    "plot_pcvr_against_true_cvr",
    "reliability_curve",
    "rmse",
    "roc_auc",
]
