"""Benchmarks behind `tfcvr bench`, one module per suite, each with
`add_arguments(parser)` and `run(args)`: `train_benchmark` (training
throughput and peak memory), `serving_benchmark` (SavedModel and REST
latency; `saved_model_timing` times the signatures in process,
`http_burst` sends a burst of clients at once), `graph_benchmark` (the
top-K neighbour-graph build of CSTWA's Structure Migrator) and `grid`
(the estimator leaderboard).

Only `grid` is imported here: it needs neither TensorFlow nor Keras. The
suites are imported by `tfcvr bench` when they run, because importing one
here would give every suite its dependencies: Keras' backend start-up for
the grid's parent process, and TensorFlow (which `serving_benchmark` needs)
for `bench train --source synthetic`, which must run under JAX on a machine
without TensorFlow.
"""

from tfcvr.bench import grid

__all__ = ["grid"]
