"""Losses shared by the estimators: the propensity-weighted family
(`CounterfactualLoss` and its IPW, doubly robust and imputation losses) and
the elementwise pieces in `functional`."""

from tfcvr.losses import functional
from tfcvr.losses.counterfactual_loss import CounterfactualLoss
from tfcvr.losses.doubly_robust_loss import DoublyRobustLoss
from tfcvr.losses.imputation_loss import ImputationLoss
from tfcvr.losses.ipw_loss import IPWLoss
from tfcvr.losses.mrdr_imputation_loss import MRDRImputationLoss

__all__ = [
    "CounterfactualLoss",
    "DoublyRobustLoss",
    "IPWLoss",
    "ImputationLoss",
    "MRDRImputationLoss",
    "functional",
]
