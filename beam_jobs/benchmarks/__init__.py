"""Yardsticks the Beam jobs are measured against.

Each is a module run with `python -m beam_jobs.benchmarks.<name>`, so none
is imported here (that would load it twice, once as `__main__`)."""

__all__ = []
