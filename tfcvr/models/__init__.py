"""The estimator zoo: the `CVRModel` contract, its family bases, every
estimator of `tfcvr/models/estimators/` and the registry behind
`tfcvr models` and `tfcvr train --model NAME`, and `FusedAdam`, the
optimizer they train with (registered here, so a `.keras` file saved with
it loads wherever the estimators do).

An estimator is one file with a `@register_estimator` class plus its import
line here (importing it is what registers it)."""

from tfcvr.models.alternating_training import AlternatingTraining
from tfcvr.models.cvr_model import CVRModel
from tfcvr.models.doubly_robust_estimator import DoublyRobustEstimator
from tfcvr.models.fused_adam import FusedAdam
from tfcvr.models.estimators.aitm import AITM
from tfcvr.models.estimators.choruscvr import ChorusCVR
from tfcvr.models.estimators.cstwa import CSTWA
from tfcvr.models.estimators.dcmt import DCMT
from tfcvr.models.estimators.ddpo import DDPO
from tfcvr.models.estimators.dr_jl import DRJL
from tfcvr.models.estimators.escm2_dr import ESCM2DR
from tfcvr.models.estimators.escm2_ips import ESCM2IPS
from tfcvr.models.estimators.esm2 import ESM2
from tfcvr.models.estimators.esmm import ESMM
from tfcvr.models.estimators.mrdr import MRDR
from tfcvr.models.estimators.multi_dr import MultiDR
from tfcvr.models.estimators.multi_ipw import MultiIPW
from tfcvr.models.estimators.naive_cvr import NaiveCVR
from tfcvr.models.estimators.nise import NISE
from tfcvr.models.oracle_propensity import oracle_propensity
from tfcvr.models.pretraining_stage import PretrainingStage
from tfcvr.models.registry import ESTIMATORS
from tfcvr.models.registry import build_estimator
from tfcvr.models.registry import estimator_names
from tfcvr.models.registry import get_estimator
from tfcvr.models.registry import register_estimator

__all__ = [
    "AITM",
    "AlternatingTraining",
    "CSTWA",
    "CVRModel",
    "ChorusCVR",
    "DCMT",
    "DDPO",
    "DRJL",
    "DoublyRobustEstimator",
    "ESCM2DR",
    "ESCM2IPS",
    "ESM2",
    "ESMM",
    "ESTIMATORS",
    "FusedAdam",
    "MRDR",
    "MultiDR",
    "MultiIPW",
    "NISE",
    "NaiveCVR",
    "PretrainingStage",
    "build_estimator",
    "estimator_names",
    "get_estimator",
    "oracle_propensity",
    "register_estimator",
]
