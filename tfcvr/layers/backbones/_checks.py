"""Argument checks shared by the backbones (one-line ValueErrors)."""


def check_int(name, value, minimum=1):
    """Raises unless `value` is an int >= `minimum`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f"{name} must be an int >= {minimum}. Received: {name}={value!r}"
        )
    return value


def check_units(name, units, allow_empty=True):
    """Raises unless `units` is a list/tuple of positive ints; returns a list."""
    if isinstance(units, (str, bytes)) or not hasattr(units, "__iter__"):
        raise ValueError(
            f"{name} must be a list of positive ints. Received: {name}={units!r}"
        )
    units = list(units)
    if any(isinstance(u, bool) or not isinstance(u, int) or u < 1 for u in units):
        raise ValueError(
            f"{name} must be a list of positive ints. Received: {name}={units!r}"
        )
    if not units and not allow_empty:
        raise ValueError(
            f"{name} needs at least one layer. Received: {name}={units!r}"
        )
    return units


def check_rate(name, value):
    """Raises unless `value` is a dropout rate in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        0.0 <= value < 1.0
    ):
        raise ValueError(f"{name} must be in [0, 1). Received: {name}={value!r}")
    return float(value)
