"""One file per estimator; `tfcvr.models` imports (and so registers) each."""
