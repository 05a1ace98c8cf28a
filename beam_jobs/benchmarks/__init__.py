"""Yardsticks the Beam jobs are measured against."""
