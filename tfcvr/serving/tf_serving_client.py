import base64
import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from tfcvr.features import wire
from tfcvr.serving.tf_serving_error import TFServingError

# Replies worth retrying: the server is up but not ready.
_RETRY_STATUSES = (502, 503, 504)
# A server's Retry-After is honoured up to this many seconds.
_MAX_RETRY_AFTER = 30.0


class TFServingClient:
    """A client of TF Serving's REST API (also served by `tfcvr serve`).

    Standard library only. Calls `POST /v1/models/<name>[/versions/<v>]:predict`,
    `GET /v1/models/<name>[/versions/<v>]` (status) and
    `GET /v1/models/<name>[/versions/<v>]/metadata`, retries connection
    errors, timeouts and 502/503/504 replies with exponential backoff (or
    after the reply's `Retry-After`, when longer), and raises
    `TFServingError` with the server's message for `{"error": ...}` replies.

    TF Serving needs every signature input in every request, as rectangular
    tensors. With `fill_missing`, the client reads the signature from the
    metadata endpoint once per (model, version, signature) and completes
    requests the tfcvr way: an absent input or a `None` value becomes the
    missing-value marker (the training default inside the model) and lists
    are padded (see `tfcvr.features.wire`). `bytes` values are sent
    as `{"b64": ...}`, as TF Serving expects binary strings.

    Args:
        base_url: str. E.g. `"http://localhost:8501"`.
        timeout: float. Seconds per HTTP attempt. Defaults to 10.
        retries: int. Extra attempts after a connection failure. Defaults
            to 2.
        backoff: float. Seconds before the first retry, doubled after each.
            Defaults to 0.1.
        fill_missing: bool. Complete requests from the signature. Defaults
            to True.

    Example:
        client = TFServingClient("http://localhost:8501")
        client.predict("esmm", instances=[{"user": 7, "item": 1002}])
        # -> [{"ctr": 0.04, "cvr": 0.11, "ctcvr": 0.0044}]
    """

    def __init__(
        self,
        base_url="http://localhost:8501",
        timeout=10.0,
        retries=2,
        backoff=0.1,
        fill_missing=True,
    ):
        parsed = urllib.parse.urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(
                f"base_url must be an http(s) URL. Received: "
                f"base_url={base_url!r}"
            )
        if not timeout or timeout <= 0:
            raise ValueError(f"timeout must be > 0. Received: timeout={timeout}")
        if not isinstance(retries, int) or retries < 0:
            raise ValueError(
                f"retries must be an int >= 0. Received: retries={retries!r}"
            )
        if backoff < 0:
            raise ValueError(f"backoff must be >= 0. Received: backoff={backoff}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.fill_missing = fill_missing
        self._specs = {}
        self._lock = threading.Lock()

    # === Endpoints ===

    def predict(
        self,
        model,
        instances=None,
        inputs=None,
        version=None,
        signature_name=None,
        fill_missing=None,
    ):
        """Runs a signature on a batch.

        Args:
            model: str. Model name.
            instances: list. Row format: one dict `{input: value}` per row.
            inputs: dict. Columnar format: `{input: list of row values}`.
            version: int or None. Defaults to the latest version.
            signature_name: str or None. Defaults to `serving_default`.
            fill_missing: bool or None. Overrides the client's setting.

        Returns:
            Row format: the `predictions` list (a dict of outputs per row).
            Columnar format: the `outputs` dict (a list per output).
        """
        if (instances is None) == (inputs is None):
            raise ValueError(
                "Pass exactly one of instances= (row format) or inputs= "
                "(columnar format)."
            )
        fill = self.fill_missing if fill_missing is None else fill_missing
        body = {}
        if signature_name:
            body["signature_name"] = signature_name
        if instances is not None:
            if not isinstance(instances, (list, tuple)) or not instances:
                raise ValueError(
                    "instances must be a non-empty list of rows. Received: "
                    f"{type(instances).__name__}"
                )
            instances = _plain(list(instances))
            if fill and all(isinstance(row, dict) for row in instances):
                specs = self.input_specs(model, version, signature_name)
                instances = wire.complete_instances(instances, specs)
            body["instances"] = instances
            key = "predictions"
        else:
            if not isinstance(inputs, (dict, list, tuple)):
                raise ValueError(
                    "inputs must be a dict {input name: list of values} (or "
                    "a list for a one-input signature). Received: "
                    f"{type(inputs).__name__}"
                )
            inputs = _plain(inputs)
            if fill and isinstance(inputs, dict):
                specs = self.input_specs(model, version, signature_name)
                inputs = wire.complete_columns(
                    inputs, specs, wire.batch_size_of(inputs)
                )
            body["inputs"] = inputs
            key = "outputs"
        reply = self._call(
            "POST", self._model_path(model, version) + ":predict", body
        )
        if key not in reply:
            raise TFServingError(
                f"The reply has no {key!r}: {str(reply)[:200]}",
                url=self._model_path(model, version),
            )
        return reply[key]

    def status(self, model, version=None):
        """The `model_version_status` reply of the status endpoint."""
        return self._call("GET", self._model_path(model, version))

    def metadata(self, model, version=None):
        """The metadata reply (`model_spec` and the signature defs)."""
        return self._call("GET", self._model_path(model, version) + "/metadata")

    def input_specs(self, model, version=None, signature_name=None):
        """`{input: (dtype, rank)}` of a signature, cached per model."""
        key = (model, version, signature_name or wire.SERVING_DEFAULT)
        with self._lock:
            if key in self._specs:
                return self._specs[key]
        specs = wire.input_specs_from_metadata(
            self.metadata(model, version), signature_name
        )
        with self._lock:
            self._specs[key] = specs
        return specs

    def wait_until_available(self, model, version=None, timeout=60.0):
        """Polls the status endpoint until a version is AVAILABLE."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                reply = self.status(model, version)
                states = [
                    s.get("state") for s in reply.get("model_version_status", [])
                ]
                if "AVAILABLE" in states:
                    return reply
                last = f"states {states}"
            except TFServingError as e:
                last = str(e)
            time.sleep(min(0.5, max(deadline - time.monotonic(), 0)))
        raise TFServingError(
            f"Model {model!r} not available after {timeout}s: {last}"
        )

    # === HTTP ===

    def _model_path(self, model, version):
        if not isinstance(model, str) or not model:
            raise ValueError(f"model must be a non-empty name. Received: {model!r}")
        path = "/v1/models/" + urllib.parse.quote(model, safe="")
        if version is not None:
            if isinstance(version, bool) or int(version) != version or (
                version < 0
            ):
                raise ValueError(
                    f"version must be a non-negative int. Received: "
                    f"version={version!r}"
                )
            path += f"/versions/{int(version)}"
        return path

    def _call(self, method, path, body=None):
        url = self.base_url + path
        data = None
        headers = {"Accept": "application/json"}
        if body is not None:
            data = json.dumps(_encode(body), allow_nan=True).encode("utf-8")
            headers["Content-Type"] = "application/json"
        last_error = None
        retry_after = 0.0
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(max(self.backoff * 2 ** (attempt - 1), retry_after))
            retry_after = 0.0
            request = urllib.request.Request(
                url, data=data, method=method, headers=headers
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as r:
                    return _decode(r.read(), r.status, url)
            except urllib.error.HTTPError as e:
                payload = e.read()
                if e.code in _RETRY_STATUSES and attempt < self.retries:
                    last_error = f"HTTP {e.code}"
                    retry_after = _retry_after(e.headers)
                    continue
                raise _error_from_reply(payload, e.code, url) from None
            except (
                urllib.error.URLError,
                http.client.HTTPException,
                ConnectionError,
                socket.timeout,
                TimeoutError,
            ) as e:
                last_error = getattr(e, "reason", None) or e
        raise TFServingError(
            f"No reply after {self.retries + 1} attempt(s): {last_error}",
            url=url,
        )


def _retry_after(headers):
    """Seconds a 503's `Retry-After` asks to wait (0 if absent or a date),
    at most `_MAX_RETRY_AFTER`."""
    value = (headers.get("Retry-After") or "").strip() if headers else ""
    if not value.isdigit():
        return 0.0
    return min(float(value), _MAX_RETRY_AFTER)


def _plain(value):
    """numpy arrays and scalars -> python lists and numbers, recursively."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (bytes, str)):
        return _plain(value.tolist())
    return value


def _encode(value):
    """bytes -> TF Serving's `{"b64": ...}`, recursively."""
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def _decode(payload, status, url):
    try:
        return json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise TFServingError(
            f"The reply is not JSON: {payload[:200]!r}", status=status, url=url
        ) from None


def _error_from_reply(payload, status, url):
    try:
        reply = json.loads(payload.decode("utf-8"))
        message = reply["error"] if isinstance(reply, dict) else str(reply)
    except (UnicodeDecodeError, ValueError, KeyError):
        message = payload[:500].decode("utf-8", errors="replace") or (
            "empty reply"
        )
    return TFServingError(str(message), status=status, url=url)
