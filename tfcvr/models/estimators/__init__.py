"""One file per estimator; every module here is imported by tfcvr.models."""
