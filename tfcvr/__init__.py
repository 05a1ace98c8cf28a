"""tfcvr: entire-space post-click conversion-rate estimation in Keras 3."""

__version__ = "0.1.0"
