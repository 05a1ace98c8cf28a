"""The `tfcvr` command line."""
