class TFServingError(Exception):
    """A failed TF Serving REST call, with the server's own message.

    Raised for TF Serving's `{"error": "..."}` replies (`status` is the HTTP
    status, e.g. 400 for a bad input, 404 for an unknown model or version)
    and, with `status=None`, when the server could not be reached within
    the client's retries.

    Args:
        message: str. The server's error message, or why no reply came.
        status: int or None. HTTP status of the reply.
        url: str or None. The URL that was called.
    """

    def __init__(self, message, status=None, url=None):
        self.message = message
        self.status = status
        self.url = url
        where = f" ({url})" if url else ""
        prefix = f"HTTP {status}: " if status is not None else ""
        super().__init__(f"{prefix}{message}{where}")
