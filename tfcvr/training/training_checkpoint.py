import glob
import json
import os
import shutil

import keras
import numpy as np

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.json"
_WEIGHTS_PATTERN = "step-{:09d}.weights.h5"


class TrainingCheckpoint(keras.callbacks.Callback):
    """Saves the state of a training run every `every` steps and at the end
    of each epoch, so that the same command resumes it after a crash.

    The state is the model's and the optimizer's variables
    (`step-<iterations>.weights.h5`, written by `save_weights`) and
    `state.json`: the epoch, the steps of it already trained, the
    optimizer's iterations, the epoch logs so far and the `fingerprint` of
    the run's settings. `state.json` is replaced atomically after the
    weights file is complete, so a kill at any moment leaves the previous
    checkpoint or the new one. `restore` refuses a checkpoint whose
    fingerprint differs (another run's). With `write` False (a worker
    other than the chief) the files go to `write_dir` instead, which the
    caller removes.

    Args:
        directory: str. Where the run's checkpoint is read from (and
            written, on the chief).
        fingerprint: dict. JSON settings that must match to resume.
        every: int. Steps between checkpoints; 0 saves at epoch ends only.
        write_dir: str or None. Where to write instead of `directory`.
    """

    def __init__(self, directory, fingerprint, every=1000, write_dir=None):
        super().__init__()
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise ValueError(
                f"checkpoint_every must be an int >= 0. Received: "
                f"checkpoint_every={every!r}"
            )
        self.directory = directory
        self.write_dir = write_dir or directory
        self.fingerprint = json.loads(json.dumps(fingerprint, sort_keys=True))
        self.every = every
        self.history = {}
        self.saved_iterations = None
        self._epoch = 0
        self._steps_in_epoch = 0
        self._start = (0, 0)
        self._last_batch = -1
        self._since_save = 0

    # === Reading ===

    def state(self):
        """The saved `state.json` of `directory`, or None."""
        path = os.path.join(self.directory, STATE_FILE)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return json.load(f)

    def restore(self, model):
        """Loads the saved state into `model` (built, with a built
        optimizer); returns the state dict, or None when there is none."""
        state = self.state()
        if state is None:
            return None
        differ = sorted(
            key for key in set(state["fingerprint"]) | set(self.fingerprint)
            if state["fingerprint"].get(key) != self.fingerprint.get(key)
        )
        if differ:
            raise ValueError(
                f"{self.directory} holds the checkpoint of another run "
                f"({', '.join(differ)} differ); rerun the same command to "
                f"resume it, or pass --restart to discard it."
            )
        model.load_weights(os.path.join(self.directory, state["weights"]))
        self.history = {k: list(v) for k, v in state["history"].items()}
        self.saved_iterations = state["iterations"]
        self._start = (state["epoch"], state["steps"])
        return state

    def remove(self):
        shutil.rmtree(self.directory, ignore_errors=True)

    # === Writing ===

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._steps_in_epoch = self._start[1] if epoch == self._start[0] else 0
        self._last_batch = -1

    def on_train_batch_end(self, batch, logs=None):
        # Keras reports the last batch index of each execution.
        steps = batch - self._last_batch
        self._last_batch = batch
        self._steps_in_epoch += steps
        self._since_save += steps
        if self.every and self._since_save >= self.every:
            self._save(self._epoch, self._steps_in_epoch)

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        self._save(epoch + 1, 0)

    def _save(self, epoch, steps):
        self._since_save = 0
        os.makedirs(self.write_dir, exist_ok=True)
        iterations = int(
            keras.ops.convert_to_numpy(self.model.optimizer.iterations)
        )
        name = _WEIGHTS_PATTERN.format(iterations)
        self.model.save_weights(
            os.path.join(self.write_dir, name), overwrite=True
        )
        state = {
            "epoch": epoch,
            "steps": steps,
            "iterations": iterations,
            "weights": name,
            "history": self.history,
            "fingerprint": self.fingerprint,
        }
        path = os.path.join(self.write_dir, STATE_FILE)
        with open(path + ".tmp", "w") as f:
            json.dump(state, f, indent=1, sort_keys=True, default=_number)
        os.replace(path + ".tmp", path)
        self.saved_iterations = iterations
        for old in glob.glob(os.path.join(self.write_dir, "step-*.weights.h5")):
            if os.path.basename(old) != name:
                os.remove(old)


def _number(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"Not JSON: {value!r}")
