"""Names and helpers shared by the grid parent and its child processes
(kept apart from `cell` so that importing the package never imports the
child's entry module)."""

READY_FILE = "READY.json"
DATA_SUBDIR = "data"
LOGS_SUBDIR = "logs"
SIMULATION_FILE = "simulation.json"
MAX_ERROR_CHARS = 500


def error_line(error):
    """`"Type: message"` on one line, at most MAX_ERROR_CHARS characters."""
    text = " ".join(str(error).split()) or "(no message)"
    line = f"{type(error).__name__}: {text}"
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 3] + "..."
