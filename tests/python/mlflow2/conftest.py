"""The 2.x-client subset. Fixtures (server_url, tracking_uri, client, ...) come from the
shared ../conftest.py; run with the 2.x venv:

    .venv2/bin/pytest tests/python/mlflow2

The 3.x venv never collects this directory (see collect_ignore in ../conftest.py).
"""

import mlflow
import pytest


def pytest_collection_modifyitems(config, items):
    if not mlflow.__version__.startswith("2."):
        skip = pytest.mark.skip(reason=f"needs an mlflow 2.x client, found {mlflow.__version__}")
        for item in items:
            if "mlflow2" in str(item.fspath):
                item.add_marker(skip)
