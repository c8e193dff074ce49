"""A compact tracking flow through the stock mlflow 2.x client (2.22.x)."""

from __future__ import annotations

import math

import mlflow
import pytest
from mlflow.entities import Metric, ViewType
from mlflow.tracking import MlflowClient

from helpers import now_ms, raises_mlflow, unique


def test_client_is_2x():
    assert mlflow.__version__.startswith("2.")


def test_basic_flow(tracking_uri, client):
    name = unique("v2flow")
    exp = mlflow.set_experiment(name)
    assert mlflow.set_experiment(name).experiment_id == exp.experiment_id
    results = {}
    for lr in (0.1, 0.01, 0.001):
        with mlflow.start_run(run_name=f"lr-{lr}") as run:
            mlflow.log_param("lr", lr)
            mlflow.log_params({"depth": 3, "model": "tree"})
            for step in range(5):
                mlflow.log_metric("loss", lr * 10 / (step + 1), step=step)
            mlflow.log_metrics({"acc": 1 - lr, "nan": float("nan")})
            mlflow.set_tag("team", "v2")
            mlflow.set_tags({"lr_tag": str(lr)})
        results[lr] = run.info.run_id
    with mlflow.start_run() as unnamed:
        pass
    mlflow.start_run(run_name="failed")
    failed_id = mlflow.active_run().info.run_id
    mlflow.end_run(status="FAILED")

    got = client.get_run(results[0.01])
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "lr-0.01"
    assert got.data.params == {"lr": "0.01", "depth": "3", "model": "tree"}
    assert got.data.metrics["loss"] == pytest.approx(0.01 * 10 / 5)
    assert got.data.metrics["acc"] == pytest.approx(0.99)
    assert math.isnan(got.data.metrics["nan"])
    assert got.data.tags["team"] == "v2" and got.data.tags["mlflow.runName"] == "lr-0.01"
    assert got.info.end_time >= got.info.start_time
    assert client.get_run(unnamed.info.run_id).info.run_name  # server-generated
    assert client.get_run(failed_id).info.status == "FAILED"

    # search with filter + order_by (fluent DataFrame and client)
    df = mlflow.search_runs([exp.experiment_id], filter_string="tags.team = 'v2' and metrics.acc > 0.95",
                            order_by=["metrics.acc DESC"])
    assert list(df["run_id"]) == [results[0.001], results[0.01]]
    runs = client.search_runs([exp.experiment_id], "params.model = 'tree'", order_by=["metrics.loss ASC"])
    assert [r.info.run_id for r in runs] == [results[0.001], results[0.01], results[0.1]]
    runs = client.search_runs([exp.experiment_id], "attributes.status = 'FAILED'")
    assert [r.info.run_id for r in runs] == [failed_id]
    page = client.search_runs([exp.experiment_id], max_results=2)
    assert len(page) == 2 and page.token
    rest = client.search_runs([exp.experiment_id], max_results=10, page_token=page.token)
    assert len(rest) == 3

    # metric history
    hist = client.get_metric_history(results[0.1], "loss")
    assert [m.step for m in sorted(hist, key=lambda m: m.step)] == [0, 1, 2, 3, 4]
    assert sorted(hist, key=lambda m: m.step)[0].value == pytest.approx(1.0)

    # delete / restore
    victim = results[0.1]
    client.delete_run(victim)
    assert client.get_run(victim).info.lifecycle_stage == "deleted"
    active = {r.info.run_id for r in client.search_runs([exp.experiment_id])}
    assert victim not in active
    deleted = client.search_runs([exp.experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [victim]
    client.restore_run(victim)
    assert client.get_run(victim).info.lifecycle_stage == "active"


def test_history_paging_over_25000(tracking_uri, client):
    exp_id = client.create_experiment(unique("v2hist"))
    rid = client.create_run(exp_id).info.run_id
    n, ts = 25_100, now_ms()
    for start in range(0, n, 1000):
        client.log_batch(rid, metrics=[Metric("m", float(i), ts + i, i) for i in range(start, min(n, start + 1000))])
    hist = client.get_metric_history(rid, "m")
    assert [m.step for m in hist] == list(range(n))


def test_errors_and_experiment_lifecycle(tracking_uri, client):
    name = unique("v2exp")
    exp_id = client.create_experiment(name)
    with raises_mlflow("RESOURCE_ALREADY_EXISTS"):
        client.create_experiment(name)
    assert client.get_experiment_by_name(unique("none")) is None
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.get_run("0123456789abcdef0123456789abcdef")
    run = client.create_run(exp_id)
    client.log_param(run.info.run_id, "p", "1")
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.log_param(run.info.run_id, "p", "2")
    client.delete_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "deleted"
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.create_run(exp_id)
    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "active"
    new = unique("v2renamed")
    client.rename_experiment(exp_id, new)
    assert MlflowClient(tracking_uri=tracking_uri).get_experiment_by_name(new).experiment_id == exp_id
