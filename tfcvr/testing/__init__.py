"""Test utilities shared by tfcvr's own tests and by users' estimators."""

from tfcvr.testing.synthetic import synthetic_batch
from tfcvr.testing.synthetic import tiny_schema
from tfcvr.testing.test_case import TestCase

__all__ = ["TestCase", "synthetic_batch", "tiny_schema"]
