"""MLflow 3 logged models (shared/mlflow-api.md §1, §5, §7.6): the REST calls the stock
client makes (raw `requests`, in the order `log_model` and `register_model` send them),
then the client's own APIs. No test needs artifact upload except
`test_create_external_model`, which uploads one MLmodel file.
"""

from __future__ import annotations

import re
import time

import pytest

from helpers import api, assert_error, now_ms, raises_mlflow, unique

MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")


def _ok(resp):
    assert resp.status_code == 200, f"{resp.status_code} {resp.text[:500]}"
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert isinstance(body, dict)
    return body


@pytest.fixture
def exp(http, tracking_uri):
    exp_id = _ok(http.post(api(tracking_uri, "experiments/create"), json={"name": unique("lm")}))["experiment_id"]
    location = _ok(http.get(api(tracking_uri, "experiments/get"), params={"experiment_id": exp_id}))[
        "experiment"
    ]["artifact_location"]
    return exp_id, location


@pytest.fixture
def run_id(http, tracking_uri, exp):
    body = _ok(
        http.post(api(tracking_uri, "runs/create"), json={"experiment_id": exp[0], "start_time": now_ms()})
    )
    return body["run"]["info"]["run_id"]


def _create(http, base, exp_id, **fields):
    body = {"experiment_id": exp_id, **fields}
    return _ok(http.post(api(base, "logged-models"), json=body))["model"]


def test_log_model_flow(http, tracking_uri, exp, run_id):
    """`mlflow.<flavor>.log_model` then `register_model`'s lookup, step by step."""
    exp_id, location = exp
    base = tracking_uri
    model = _create(
        http,
        base,
        exp_id,
        name="model",
        model_type="sklearn",
        source_run_id=run_id,
        params=[{"key": "C", "value": "1.0"}],
        tags=[{"key": "mlflow.source.type", "value": "LOCAL"}],
    )
    assert set(model) == {"info", "data"}
    info = model["info"]
    model_id = info["model_id"]
    assert MODEL_ID.match(model_id), model_id
    assert info["experiment_id"] == exp_id
    assert info["name"] == "model"
    assert info["status"] == "LOGGED_MODEL_PENDING"
    assert info["model_type"] == "sklearn"
    assert info["source_run_id"] == run_id
    assert info["artifact_uri"] == f"{location}/models/{model_id}/artifacts"
    assert isinstance(info["creation_timestamp_ms"], int)
    assert info["last_updated_timestamp_ms"] == info["creation_timestamp_ms"]
    assert info["tags"] == [{"key": "mlflow.source.type", "value": "LOCAL"}]
    assert model["data"] == {"params": [{"key": "C", "value": "1.0"}]}
    assert "status_message" not in info and "registrations" not in info

    # runs/outputs, then the run's metrics are copied onto the model.
    _ok(http.post(api(base, "runs/outputs"), json={"run_id": run_id, "models": [{"model_id": model_id, "step": 0}]}))
    ts = now_ms()
    _ok(http.post(api(base, "runs/log-metric"), json={"run_id": run_id, "key": "acc", "value": 0.8, "timestamp": ts, "step": 0}))
    metric = {"key": "acc", "value": 0.8, "timestamp": ts, "step": 0, "model_id": model_id}
    _ok(http.post(api(base, "runs/log-batch"), json={"run_id": run_id, "metrics": [metric]}))

    got = _ok(http.get(api(base, f"logged-models/{model_id}")))["model"]
    assert got["info"] == info
    assert got["data"]["metrics"] == [{**metric, "run_id": run_id}]

    time.sleep(0.01)
    done = _ok(
        http.patch(api(base, f"logged-models/{model_id}"), json={"model_id": model_id, "status": "LOGGED_MODEL_READY"})
    )["model"]
    assert done["info"]["status"] == "LOGGED_MODEL_READY"
    assert done["info"]["last_updated_timestamp_ms"] > info["creation_timestamp_ms"]

    run = _ok(http.get(api(base, "runs/get"), params={"run_id": run_id}))["run"]
    assert run["outputs"]["model_outputs"] == [{"model_id": model_id, "step": 0}]

    # register_model: find the logged model of the run by name.
    other = _create(http, base, exp_id, name="other", source_run_id=run_id)["info"]["model_id"]
    found = _ok(
        http.post(
            api(base, "logged-models/search"),
            json={"experiment_ids": [exp_id], "filter": f"source_run_id='{run_id}' AND name='model'"},
        )
    )
    assert [m["info"]["model_id"] for m in found["models"]] == [model_id]
    assert "next_page_token" not in found
    assert other != model_id


def test_tags_params_and_delete(http, tracking_uri, exp):
    base = tracking_uri
    model_id = _create(http, base, exp[0], name="m1", tags=[{"key": "k", "value": "v"}])["info"]["model_id"]
    url = api(base, f"logged-models/{model_id}")
    assert _ok(http.patch(f"{url}/tags", json={"tags": [{"key": "stage", "value": "dev"}, {"key": "k", "value": "v2"}]})) == {}
    assert _ok(http.post(f"{url}/params", json={"model_id": model_id, "params": [{"key": "penalty", "value": "l2"}]})) == {}
    got = _ok(http.get(url))["model"]
    assert sorted(got["info"]["tags"], key=lambda t: t["key"]) == [
        {"key": "k", "value": "v2"},
        {"key": "stage", "value": "dev"},
    ]
    assert got["data"]["params"] == [{"key": "penalty", "value": "l2"}]
    assert _ok(http.delete(f"{url}/tags/stage")) == {}
    assert [t["key"] for t in _ok(http.get(url))["model"]["info"]["tags"]] == ["k"]

    assert _ok(http.delete(url)) == {}
    assert_error(http.get(url), 404, "RESOURCE_DOES_NOT_EXIST", f"Logged model with ID '{model_id}' not found.")
    deleted = _ok(http.get(url, params={"allow_deleted": "true"}))["model"]
    assert deleted["info"]["model_id"] == model_id
    assert_error(
        http.get(api(base, "logged-models/m-doesnotexist")),
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "Logged model with ID 'm-doesnotexist' not found.",
    )
    search = _ok(http.post(api(base, "logged-models/search"), json={"experiment_ids": [exp[0]]}))
    assert search.get("models", []) == []


def test_search_orders_filters_and_pages(http, tracking_uri, exp, run_id):
    base = tracking_uri
    exp_id = exp[0]
    ids = {}
    for name, acc in (("a", 0.5), ("b", 0.9), ("c", None)):
        model_id = _create(http, base, exp_id, name=name, source_run_id=run_id, params=[{"key": "p", "value": name}])[
            "info"
        ]["model_id"]
        ids[name] = model_id
        if acc is not None:
            metric = {"key": "acc", "value": acc, "timestamp": now_ms(), "step": 0, "model_id": model_id}
            _ok(http.post(api(base, "runs/log-metric"), json={"run_id": run_id, **metric}))

    def search(**body):
        return _ok(http.post(api(base, "logged-models/search"), json={"experiment_ids": [exp_id], **body}))

    def names(body):
        return [m["info"]["name"] for m in body.get("models", [])]

    assert names(search(order_by=[{"field_name": "metrics.acc", "ascending": False}])) == ["b", "a", "c"]
    assert names(search(order_by=[{"field_name": "metrics.acc", "ascending": True}])) == ["a", "b", "c"]
    assert names(search(order_by=[{"field_name": "name", "ascending": True}])) == ["a", "b", "c"]
    assert names(search(filter="metrics.acc > 0.6")) == ["b"]
    assert names(search(filter="params.p = 'c'")) == ["c"]
    assert names(search(filter="name != 'a'", order_by=[{"field_name": "name", "ascending": False}])) == ["c", "b"]

    order = [{"field_name": "name", "ascending": True}]
    first = search(order_by=order, max_results=2)
    assert names(first) == ["a", "b"]
    token = first["next_page_token"]
    second = search(order_by=order, max_results=2, page_token=token)
    assert names(second) == ["c"]
    assert not second.get("next_page_token")
    # A token is bound to its search.
    resp = http.post(
        api(base, "logged-models/search"),
        json={"experiment_ids": [exp_id], "order_by": order, "max_results": 2, "page_token": token, "filter": "name = 'a'"},
    )
    assert_error(resp, 400, "INVALID_PARAMETER_VALUE")


def test_client_apis(client, tracking_uri):
    """MlflowClient's logged-model calls, which need no artifact upload."""
    from mlflow.entities import LoggedModelStatus

    exp_id = client.create_experiment(unique("lm-client"))
    run = client.create_run(exp_id)
    run_id = run.info.run_id
    model = client.create_logged_model(
        experiment_id=exp_id,
        name="model",
        source_run_id=run_id,
        params={"alpha": "0.5"},
        tags={"team": "ml"},
        model_type="sklearn",
    )
    assert MODEL_ID.match(model.model_id)
    assert model.status == LoggedModelStatus.PENDING
    assert model.params == {"alpha": "0.5"}
    assert model.tags == {"team": "ml"}

    client.set_logged_model_tags(model.model_id, {"stage": "dev"})
    client.log_model_params(model.model_id, {"beta": "1"})
    client.log_metric(run_id, "acc", 0.75, model_id=model.model_id)
    client.delete_logged_model_tag(model.model_id, "team")
    ready = client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    assert ready.status == LoggedModelStatus.READY

    import mlflow

    got = mlflow.get_logged_model(model.model_id)
    assert got.tags == {"stage": "dev"}
    assert got.params == {"alpha": "0.5", "beta": "1"}
    assert [(m.key, m.value, m.run_id) for m in got.metrics] == [("acc", 0.75, run_id)]

    page = client.search_logged_models(
        experiment_ids=[exp_id], filter_string=f"source_run_id = '{run_id}' AND name = 'model'"
    )
    assert [m.model_id for m in page] == [model.model_id]
    page = client.search_logged_models(
        experiment_ids=[exp_id],
        filter_string="metrics.acc >= 0.7",
        order_by=[{"field_name": "creation_timestamp", "ascending": False}],
    )
    assert [m.model_id for m in page] == [model.model_id]
    found = mlflow.search_logged_models(experiment_ids=[exp_id], output_format="list")
    assert [m.model_id for m in found] == [model.model_id]

    client.delete_logged_model(model.model_id)
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.get_logged_model(model.model_id)
    assert list(client.search_logged_models(experiment_ids=[exp_id])) == []


def test_create_external_model(tracking_uri):
    """`mlflow.create_external_model` creates, uploads an MLmodel file and finalizes."""
    import mlflow
    from mlflow.entities import LoggedModelStatus

    server_info = None
    try:
        import requests

        server_info = requests.get(f"{tracking_uri.split('/ns/')[0]}/api/3.0/mlflow/server-info", timeout=10)
    except Exception:
        pass
    if server_info is not None and server_info.ok and server_info.json().get("artifacts_enabled") is False:
        pytest.skip("the server does not serve artifacts yet")
    mlflow.set_experiment(unique("lm-external"))
    model = mlflow.create_external_model(name="ext", params={"a": "1"}, tags={"t": "x"})
    assert model.status == LoggedModelStatus.READY
    got = mlflow.get_logged_model(model.model_id)
    assert got.name == "ext"
    assert got.tags["t"] == "x"
    assert got.tags["mlflow.model.isExternal"] == "true"
    assert got.params == {"a": "1"}
