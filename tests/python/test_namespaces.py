"""Quiver namespaces (tenancy) through the stock client: `<root>/ns/<name>` as the tracking
URI, and MLflow's `X-MLFLOW-WORKSPACE` header on raw requests. Not an MLflow feature, so
the whole module is skipped against the reference server."""

from __future__ import annotations

import pytest
import requests
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from helpers import api, assert_error, raises_mlflow, unique

pytestmark = pytest.mark.quiver_only

MISSING = "RESOURCE_DOES_NOT_EXIST"


@pytest.fixture
def two_namespaces(server_url):
    tag = unique("x").split("-", 1)[1]
    ns_a, ns_b = f"a-{tag}", f"b-{tag}"
    a = MlflowClient(tracking_uri=f"{server_url}/ns/{ns_a}")
    b = MlflowClient(tracking_uri=f"{server_url}/ns/{ns_b}")
    return (ns_a, a), (ns_b, b)


def _populate(client, exp_name, label):
    exp_id = client.create_experiment(exp_name, tags={"owner": label})
    runs = []
    for i in range(2):
        run = client.create_run(exp_id, run_name=f"{label}-{i}")
        client.log_param(run.info.run_id, "who", label)
        client.log_metric(run.info.run_id, "score", i)
        runs.append(run.info.run_id)
    return exp_id, runs


def test_same_experiment_name_isolated(two_namespaces):
    (_, a), (_, b) = two_namespaces
    name = unique("shared")
    exp_a, runs_a = _populate(a, name, "A")
    exp_b, runs_b = _populate(b, name, "B")

    # both namespaces own an experiment with that exact name, each sees its own
    ea, eb = a.get_experiment_by_name(name), b.get_experiment_by_name(name)
    assert ea.experiment_id == exp_a and ea.tags["owner"] == "A"
    assert eb.experiment_id == exp_b and eb.tags["owner"] == "B"

    # search_experiments lists only the namespace's own
    for client, exp_id in ((a, exp_a), (b, exp_b)):
        found = client.search_experiments(filter_string=f"name = '{name}'", view_type=ViewType.ALL)
        assert [e.experiment_id for e in found] == [exp_id]
        all_names = [e.name for e in client.search_experiments(view_type=ViewType.ALL)]
        assert all_names.count(name) == 1

    # search_runs only returns own runs, even when given the other's experiment id
    assert {r.info.run_id for r in a.search_runs([exp_a])} == set(runs_a)
    assert {r.info.run_id for r in b.search_runs([exp_b])} == set(runs_b)
    for client, foreign_exp, foreign_runs in ((a, exp_b, runs_b), (b, exp_a, runs_a)):
        try:
            seen = {r.info.run_id for r in client.search_runs([foreign_exp], run_view_type=ViewType.ALL)}
        except Exception as e:  # an unknown experiment id may also be rejected outright
            assert getattr(e, "error_code", None) in (MISSING, "INVALID_PARAMETER_VALUE"), e
            seen = set()
        assert not (seen & set(foreign_runs))

    # runs of the other namespace do not exist from here
    for client, foreign_runs in ((a, runs_b), (b, runs_a)):
        rid = foreign_runs[0]
        with raises_mlflow(MISSING):
            client.get_run(rid)
        with raises_mlflow(MISSING):
            client.set_tag(rid, "intruder", "1")
        with raises_mlflow(MISSING):
            client.log_param(rid, "intruder", "1")
        with raises_mlflow(MISSING):
            client.log_metric(rid, "intruder", 1.0)
        with raises_mlflow(MISSING):
            client.delete_run(rid)
        assert client.get_metric_history(rid, "score") == []

    # ... and nothing leaked into them
    for client, own in ((a, runs_a), (b, runs_b)):
        for rid in own:
            run = client.get_run(rid)
            assert "intruder" not in run.data.tags and "intruder" not in run.data.params
            assert run.info.lifecycle_stage == "active"

    # deleting in A leaves B's same-named experiment alone
    a.delete_experiment(exp_a)
    assert a.get_experiment_by_name(name).lifecycle_stage == "deleted"
    assert b.get_experiment_by_name(name).lifecycle_stage == "active"


def test_each_namespace_has_own_default_experiment(two_namespaces):
    (_, a), (_, b) = two_namespaces
    for client in (a, b):
        exp = client.get_experiment("0")
        assert exp.name == "Default" and exp.lifecycle_stage == "active"
        assert client.get_experiment_by_name("Default").experiment_id == "0"
    a.set_experiment_tag("0", "marker", "A")
    assert a.get_experiment("0").tags.get("marker") == "A"
    assert "marker" not in b.get_experiment("0").tags
    run_a = a.create_run("0").info.run_id
    assert run_a in {r.info.run_id for r in a.search_runs(["0"])}
    assert run_a not in {r.info.run_id for r in b.search_runs(["0"])}


def test_fluent_api_under_namespace(two_namespaces, server_url):
    import mlflow

    (ns_a, a), (_, b) = two_namespaces
    mlflow.set_tracking_uri(f"{server_url}/ns/{ns_a}")
    name = unique("fluent")
    exp = mlflow.set_experiment(name)
    with mlflow.start_run() as run:
        mlflow.log_param("p", 1)
        mlflow.log_metric("m", 2.0)
    assert a.get_run(run.info.run_id).info.status == "FINISHED"
    assert b.get_experiment_by_name(name) is None
    df = mlflow.search_runs([exp.experiment_id])
    assert list(df["run_id"]) == [run.info.run_id]


def test_workspace_header_selects_namespace(two_namespaces, server_url):
    (ns_a, a), (ns_b, b) = two_namespaces
    name = unique("hdr")
    exp_a, runs_a = _populate(a, name, "A")
    exp_b, runs_b = _populate(b, name, "B")

    def get(ns, path, params):
        headers = {"X-MLFLOW-WORKSPACE": ns} if ns else {}
        return requests.get(api(server_url, path), params=params, headers=headers, timeout=10)

    r = get(ns_a, "experiments/get-by-name", {"experiment_name": name})
    assert r.status_code == 200 and r.json()["experiment"]["experiment_id"] == exp_a
    r = get(ns_b, "experiments/get-by-name", {"experiment_name": name})
    assert r.status_code == 200 and r.json()["experiment"]["experiment_id"] == exp_b
    # no header: the default namespace, which has neither
    assert_error(get(None, "experiments/get-by-name", {"experiment_name": name}), 404, MISSING)
    # runs by id across the header boundary
    assert get(ns_a, "runs/get", {"run_id": runs_a[0]}).status_code == 200
    assert_error(get(ns_a, "runs/get", {"run_id": runs_b[0]}), 404, MISSING)
    assert_error(get(None, "runs/get", {"run_id": runs_a[0]}), 404, MISSING)
    # a write through the header lands in that namespace only
    r = requests.post(api(server_url, "runs/set-tag"), json={"run_id": runs_b[0], "key": "via", "value": "hdr"},
                      headers={"X-MLFLOW-WORKSPACE": ns_b}, timeout=10)
    assert r.status_code == 200, r.text
    assert b.get_run(runs_b[0]).data.tags["via"] == "hdr"
    r = requests.post(api(server_url, "runs/set-tag"), json={"run_id": runs_b[0], "key": "via", "value": "x"},
                      headers={"X-MLFLOW-WORKSPACE": ns_a}, timeout=10)
    assert_error(r, 404, MISSING)
    # search with the header
    r = requests.post(api(server_url, "runs/search"), json={"experiment_ids": [exp_a], "max_results": 10},
                      headers={"X-MLFLOW-WORKSPACE": ns_a}, timeout=10)
    assert {x["info"]["run_id"] for x in r.json()["runs"]} == set(runs_a)


def test_namespace_root_default_is_isolated_from_plain_root(server_url):
    plain = MlflowClient(tracking_uri=server_url)
    scoped = MlflowClient(tracking_uri=f"{server_url}/ns/{unique('iso')}")
    name = unique("iso-exp")
    exp_id = scoped.create_experiment(name)
    run_id = scoped.create_run(exp_id).info.run_id
    assert plain.get_experiment_by_name(name) is None
    with raises_mlflow(MISSING):
        plain.get_run(run_id)
