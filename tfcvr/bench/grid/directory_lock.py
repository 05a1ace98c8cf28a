import fcntl
import os


class DirectoryLock:
    """An exclusive `flock` on `DIR/.grid.lock`: two grids must not append
    to one results file at once."""

    def __init__(self, directory):
        self.path = os.path.join(directory, ".grid.lock")
        self._file = None

    def __enter__(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._file = open(self.path, "w")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.close()
            self._file = None
            raise ValueError(
                f"Another `tfcvr bench grid` is running in "
                f"{os.path.dirname(self.path)}; wait for it or use another --out."
            ) from None
        return self

    def __exit__(self, *exc):
        fcntl.flock(self._file, fcntl.LOCK_UN)
        self._file.close()
        self._file = None
        return False
