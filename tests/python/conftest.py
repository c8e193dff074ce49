"""Shared fixtures for the MLflow-client compatibility suite.

The suite drives the REAL stock ``mlflow`` Python client against a server under test.
Which server is chosen by environment variables:

* default: spawn the Quiver binary (``$QUIVER_BIN``, default ``<repo>/target/debug/quiver``)
  as ``quiver run --services all --data-dir <tmp> --http-addr 127.0.0.1:<port>
  --grpc-addr 127.0.0.1:<port>`` (+ ``$QUIVER_EXTRA_ARGS``, shell-split) and wait for
  ``GET /health`` == 200.
* ``QUIVER_TEST_TOPOLOGY=split``: the same binary as four processes, ``--services
  tracking``, ``--services artifacts``, ``--services registry --tracking-endpoint ...``
  (on the tracking process's database) and ``--services gateway --tracking-endpoint ...
  --artifacts-endpoint ... --registry-endpoint ...`` (gRPC between them).
* ``QUIVER_TEST_URL=http://host:port``: use an already running server (not started/stopped
  here).
* ``QUIVER_TEST_REFERENCE=mlflow``: spawn the real ``mlflow server`` (sqlite backend,
  proxied artifacts) to validate the tests themselves. Tests marked ``quiver_only`` are
  skipped in this mode, and only the plain tracking root is used (no ``/ns/`` prefix).

The same conftest serves the 3.x run (``tests/python``) and the 2.x run
(``tests/python/mlflow2``): which test files are collected depends on the major version of
the installed ``mlflow`` package.
"""

from __future__ import annotations

import atexit
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from helpers import unique

# --- client environment: fail fast instead of retrying 5xx for minutes -------------------
# These are read lazily by mlflow at request time, so setting them before any test runs is
# enough. Telemetry is disabled so the client never tries to reach the internet.
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = os.environ.get("QUIVER_TEST_CLIENT_RETRIES", "0")
os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = "0"
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = os.environ.get("QUIVER_TEST_CLIENT_TIMEOUT", "30")
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
# Never let an outer environment redirect the client somewhere else.
for _var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_RUN_ID",
             "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_WORKSPACE"):
    os.environ.pop(_var, None)

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent

REFERENCE_MODE = os.environ.get("QUIVER_TEST_REFERENCE", "").strip().lower() == "mlflow"
EXTERNAL_URL = os.environ.get("QUIVER_TEST_URL", "").strip().rstrip("/")
# QUIVER_TEST_TOPOLOGY=split: tracking, artifacts, registry and gateway as four processes
# talking gRPC.
SPLIT_TOPOLOGY = os.environ.get("QUIVER_TEST_TOPOLOGY", "").strip().lower() == "split"

HEALTH_TIMEOUT_QUIVER = float(os.environ.get("QUIVER_TEST_STARTUP_TIMEOUT", "60"))
HEALTH_TIMEOUT_REFERENCE = float(os.environ.get("QUIVER_TEST_STARTUP_TIMEOUT", "180"))


def _mlflow_major() -> int:
    try:
        from importlib.metadata import version

        return int(version("mlflow").split(".")[0])
    except Exception:  # pragma: no cover - mlflow missing: let the imports fail loudly
        return 3


MLFLOW_MAJOR = _mlflow_major()

# --- collection: 3.x venv runs the top-level files, 2.x venv runs only mlflow2/ ----------
if MLFLOW_MAJOR >= 3:
    collect_ignore = ["mlflow2"]
else:
    collect_ignore = [p.name for p in HERE.glob("test_*.py")]


def pytest_configure(config):
    config.addinivalue_line("markers", "quiver_only: Quiver-specific behaviour; skipped against the reference MLflow server")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


def pytest_collection_modifyitems(config, items):
    if not REFERENCE_MODE:
        return
    skip = pytest.mark.skip(reason="quiver_only: not applicable to the reference MLflow server")
    for item in items:
        if "quiver_only" in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config):
    if EXTERNAL_URL:
        mode = f"external server {EXTERNAL_URL}"
    elif REFERENCE_MODE:
        mode = "reference mlflow server"
    else:
        mode = f"quiver binary {_quiver_bin()}"
    import mlflow

    return [f"quiver compat suite: {mode}; mlflow client {mlflow.__version__}"]


# --- process management -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _quiver_bin() -> str:
    return os.environ.get("QUIVER_BIN", str(REPO_ROOT / "target" / "debug" / "quiver"))


def _reference_mlflow_bin() -> str:
    """The `mlflow` CLI used for the reference server: $QUIVER_REFERENCE_MLFLOW, else the
    3.x venv (.venv), else the mlflow next to the running interpreter."""
    explicit = os.environ.get("QUIVER_REFERENCE_MLFLOW")
    if explicit:
        return explicit
    for cand in (REPO_ROOT / ".venv" / "bin" / "mlflow", Path(sys.executable).parent / "mlflow"):
        if cand.exists():
            return str(cand)
    found = shutil.which("mlflow")
    if not found:
        raise RuntimeError("no mlflow CLI found for the reference server")
    return found


class _Server:
    def __init__(self, argv, log_path: Path, cwd: Path, env=None):
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(cwd),
            env=env,
            start_new_session=True,  # own process group, so we can kill every child
        )
        self.pgid = self.proc.pid
        atexit.register(self.stop)

    def log_text(self, limit: int = 20000) -> str:
        try:
            if not self._log.closed:
                self._log.flush()
            data = self.log_path.read_bytes()
        except (OSError, ValueError):
            return "<no log>"
        return data[-limit:].decode("utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.pgid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        # Children that outlived the leader (uvicorn workers, ...) still share the group.
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self._log.close()
        except Exception:
            pass


def _wait_healthy(server: _Server, base_url: str, timeout: float):
    deadline = time.monotonic() + timeout
    last_err = None
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"server exited with code {server.proc.returncode} before becoming healthy\n"
                f"argv: {shlex.join(server.argv)}\n--- server log ---\n{server.log_text()}"
            )
        try:
            r = requests.get(base_url + "/health", timeout=2)
            if r.status_code == 200:
                return
            last_err = f"HTTP {r.status_code}"
        except requests.RequestException as e:
            last_err = repr(e)
        time.sleep(0.25)
    raise RuntimeError(
        f"server not healthy after {timeout:.0f}s (last: {last_err})\n"
        f"argv: {shlex.join(server.argv)}\n--- server log ---\n{server.log_text()}"
    )


@pytest.fixture(scope="session")
def server_url(tmp_path_factory):
    """Base URL (no trailing slash) of the server under test, for the whole session."""
    if EXTERNAL_URL:
        r = requests.get(EXTERNAL_URL + "/health", timeout=10)
        assert r.status_code == 200, f"QUIVER_TEST_URL {EXTERNAL_URL}/health -> {r.status_code}"
        yield EXTERNAL_URL
        return

    workdir = tmp_path_factory.mktemp("server")
    http_port = _free_port()
    base_url = f"http://127.0.0.1:{http_port}"
    env = dict(os.environ)
    if REFERENCE_MODE:
        (workdir / "art").mkdir()
        argv = [
            _reference_mlflow_bin(), "server",
            "--backend-store-uri", f"sqlite:///{workdir}/mlflow.db",
            "--artifacts-destination", str(workdir / "art"),
            "--host", "127.0.0.1",
            "--port", str(http_port),
            "--workers", "1",
        ]
        timeout = HEALTH_TIMEOUT_REFERENCE
    else:
        binary = _quiver_bin()
        if not os.access(binary, os.X_OK):
            pytest.exit(f"quiver binary not found or not executable: {binary} "
                        "(build it, set QUIVER_BIN, or use QUIVER_TEST_URL / QUIVER_TEST_REFERENCE=mlflow)",
                        returncode=4)
        grpc_port = _free_port()
        while grpc_port == http_port:
            grpc_port = _free_port()
        argv = [
            binary, "run",
            "--services", "all",
            "--data-dir", str(workdir / "data"),
            "--http-addr", f"127.0.0.1:{http_port}",
            "--grpc-addr", f"127.0.0.1:{grpc_port}",
        ] + shlex.split(os.environ.get("QUIVER_EXTRA_ARGS", ""))
        env.setdefault("RUST_LOG", "info")
        timeout = HEALTH_TIMEOUT_QUIVER

    servers = []
    if not REFERENCE_MODE and SPLIT_TOPOLOGY:
        # Four processes: tracking, artifacts and registry (gRPC only; the registry on the
        # tracking process's database, reaching tracking over gRPC for runs and logged
        # models) and a gateway that reaches all three over gRPC.
        taken = {http_port, grpc_port}

        def _another_port() -> int:
            port = _free_port()
            while port in taken:
                port = _free_port()
            taken.add(port)
            return port

        tracking_argv = [a for a in argv if a not in ("--http-addr", f"127.0.0.1:{http_port}")]
        tracking_argv[tracking_argv.index("all")] = "tracking"
        servers.append(_Server(tracking_argv, workdir / "tracking.log", cwd=workdir, env=env))
        artifacts_port = _another_port()
        artifacts_argv = [
            binary, "run", "--services", "artifacts",
            "--data-dir", str(workdir / "data"),
            "--grpc-addr", f"127.0.0.1:{artifacts_port}",
        ]
        servers.append(_Server(artifacts_argv, workdir / "artifacts.log", cwd=workdir, env=env))
        registry_port = _another_port()
        registry_argv = [
            binary, "run", "--services", "registry",
            "--data-dir", str(workdir / "data"),
            "--grpc-addr", f"127.0.0.1:{registry_port}",
            "--tracking-endpoint", f"http://127.0.0.1:{grpc_port}",
        ] + shlex.split(os.environ.get("QUIVER_EXTRA_ARGS", ""))  # the same database as tracking
        servers.append(_Server(registry_argv, workdir / "registry.log", cwd=workdir, env=env))
        gateway_argv = [
            binary, "run", "--services", "gateway",
            "--http-addr", f"127.0.0.1:{http_port}",
            "--tracking-endpoint", f"http://127.0.0.1:{grpc_port}",
            "--artifacts-endpoint", f"http://127.0.0.1:{artifacts_port}",
            "--registry-endpoint", f"http://127.0.0.1:{registry_port}",
        ]
        servers.append(_Server(gateway_argv, workdir / "gateway.log", cwd=workdir, env=env))
    else:
        servers.append(_Server(argv, workdir / "server.log", cwd=workdir, env=env))
    try:
        try:
            _wait_healthy(servers[-1], base_url, timeout)
        except RuntimeError as e:
            for server in servers[:-1]:
                print("--- other process log ---\n" + server.log_text(), file=sys.stderr)
            print(str(e), file=sys.stderr)
            pytest.exit(str(e), returncode=3)
        yield base_url
    finally:
        for server in reversed(servers):
            server.stop()
            if os.environ.get("QUIVER_TEST_SHOW_LOG"):
                print("\n--- server log (tail) ---\n" + server.log_text(), file=sys.stderr)


# --- per-test client state ----------------------------------------------------------------

# Each test runs once against the plain root and once under a fresh Quiver namespace
# (/ns/<name>), which the stock client reaches just by using it as the tracking URI.
_ROOTS = ["root"] if REFERENCE_MODE else ["root", "ns"]


def _reset_fluent_state():
    import mlflow

    for _ in range(20):
        try:
            if mlflow.active_run() is None:
                break
            mlflow.end_run()
        except Exception:
            # The server may be broken; forget the run locally rather than fail the next test.
            try:
                from mlflow.tracking import fluent

                fluent._active_run_stack.get().clear()
            except Exception:
                pass
            break
    for var in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME",
                "MLFLOW_TRACKING_URI", "MLFLOW_WORKSPACE"):
        os.environ.pop(var, None)
    try:
        from mlflow.tracking import fluent

        fluent._active_experiment_id = None
        if hasattr(fluent, "_last_active_run_id"):
            try:
                fluent._last_active_run_id.set(None)
            except Exception:
                pass
    except Exception:
        pass


@pytest.fixture(autouse=True)
def _isolate_client_state():
    _reset_fluent_state()
    yield
    _reset_fluent_state()


@pytest.fixture(params=_ROOTS)
def tracking_uri(request, server_url):
    """Tracking URI for one test: the plain root or `<root>/ns/<fresh namespace>`.
    The fluent API is pointed at it; the test gets the URI back."""
    import mlflow

    if request.param == "root":
        uri = server_url
    else:
        uri = f"{server_url}/ns/{unique('ns')}"
    mlflow.set_tracking_uri(uri)
    return uri


@pytest.fixture
def client(tracking_uri):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


@pytest.fixture
def http():
    """A requests session for raw REST tests."""
    with requests.Session() as s:
        yield s
