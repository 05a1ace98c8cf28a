"""Keras callbacks (backend-agnostic)."""

from tfcvr.callbacks.throughput_callback import ThroughputCallback

__all__ = ["ThroughputCallback"]
