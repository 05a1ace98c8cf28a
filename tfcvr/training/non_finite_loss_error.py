class NonFiniteLossError(ValueError):
    """Training stopped because the loss became NaN or infinite; the message
    is one line naming the step and the loss terms that went non-finite.
    A `ValueError`, so `tfcvr train` prints it as its one-line error."""

    def __init__(self, message, step=None, terms=()):
        super().__init__(message)
        self.step = step
        self.terms = tuple(terms)
