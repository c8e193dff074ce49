"""Small helpers shared by the test modules (importable because pytest puts this
directory on sys.path via the rootdir conftest)."""

from __future__ import annotations

import contextlib
import time
import uuid

import pytest


def unique(prefix: str = "t") -> str:
    """A collision-free name, so tests never depend on each other's data."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def now_ms() -> int:
    return int(time.time() * 1000)


@contextlib.contextmanager
def raises_mlflow(error_code: str | tuple[str, ...] | None = None):
    """Expect an MlflowException (RestException included) with the given error_code
    (or one of several codes, when the reference and Quiver legitimately differ)."""
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException) as info:
        yield info
    if error_code is not None:
        codes = (error_code,) if isinstance(error_code, str) else tuple(error_code)
        assert info.value.error_code in codes, (
            f"expected {error_code}, got {info.value.error_code}: {info.value}"
        )


def api(base: str, path: str, major: int = 2) -> str:
    """URL of an MLflow RPC below a tracking root (plain or /ns/<name>)."""
    return f"{base}/api/{major}.0/mlflow/{path.lstrip('/')}"


def assert_error(resp, status: int, error_code: str, message_prefix: str | None = None):
    assert resp.status_code == status, f"{resp.status_code} {resp.text[:500]}"
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert isinstance(body, dict)
    assert body.get("error_code") == error_code, body
    assert isinstance(body.get("message"), str) and body["message"], body
    if message_prefix is not None:
        assert body["message"].startswith(message_prefix), body["message"]
    return body
