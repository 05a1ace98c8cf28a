"""Simulated impression logs with ground truth (upstream of the Beam jobs).

The simulator knows every impression's true click propensity and
conversion probability and writes raw logs in the formats real data comes
in (CSV, Parquet, the raw Ali-CCP files). It needs no TensorFlow.
"""

from tfcvr.simulation.aliccp_writer import AliccpWriter
from tfcvr.simulation.simulate_logs import simulate
from tfcvr.simulation.simulation_config import SimulationConfig
from tfcvr.simulation.simulator import Simulator

__all__ = ["AliccpWriter", "SimulationConfig", "Simulator", "simulate"]
