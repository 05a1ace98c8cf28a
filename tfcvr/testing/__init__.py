"""Test utilities shared by tfcvr's own tests and by users' estimators."""

from tfcvr.testing.estimator_test_case import EstimatorTestCase
from tfcvr.testing.numpy_reference import np_bce
from tfcvr.testing.pretrained_tables import give_random_pretrained_tables
from tfcvr.testing.pretrained_tables import random_pretrained_tables
from tfcvr.testing.synthetic import TINY_BACKBONES
from tfcvr.testing.synthetic import synthetic_batch
from tfcvr.testing.synthetic import tiny_schema
from tfcvr.testing.test_case import TestCase

__all__ = [
    "EstimatorTestCase",
    "TINY_BACKBONES",
    "TestCase",
    "give_random_pretrained_tables",
    "np_bce",
    "random_pretrained_tables",
    "synthetic_batch",
    "tiny_schema",
]
