"""A compact tracking flow and a model-registry flow through the stock mlflow 2.x
client (2.22.x)."""

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


def test_registry_flow(tracking_uri, client):
    """Log a sklearn model in a run (2.x: the model lives in the run's artifacts), register
    it via runs:/, promote it, load it by stage and by alias; a second version replaces it."""
    import numpy as np
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    X, y = make_classification(n_samples=300, n_features=6, random_state=0)
    models, run_ids = [], []
    mlflow.set_experiment(unique("v2reg"))
    for depth in (1, 8):
        model = RandomForestClassifier(n_estimators=10, max_depth=depth, random_state=0).fit(X, y)
        with mlflow.start_run() as run:
            mlflow.log_param("max_depth", depth)
            # explicit requirements skip the client's slow requirement inference
            mlflow.sklearn.log_model(model, "model", pip_requirements=["scikit-learn"])
        models.append(model)
        run_ids.append(run.info.run_id)
    assert not np.array_equal(models[0].predict(X), models[1].predict(X))

    name = unique("v2model")
    mv = mlflow.register_model(f"runs:/{run_ids[0]}/model", name)
    assert (mv.name, mv.version, mv.run_id, mv.status) == (name, "1", run_ids[0], "READY")
    # the 2.x client registers the run's own artifact location
    assert mv.source == client.get_run(run_ids[0]).info.artifact_uri + "/model"
    assert client.get_model_version_download_uri(name, "1") == mv.source

    assert client.transition_model_version_stage(name, "1", "Production").current_stage == "Production"
    prod = mlflow.pyfunc.load_model(f"models:/{name}/Production")
    assert np.array_equal(prod.predict(X), models[0].predict(X))

    client.set_registered_model_alias(name, "champion", "1")
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    champion = mlflow.sklearn.load_model(f"models:/{name}@champion")
    assert np.array_equal(champion.predict(X), models[0].predict(X))
    assert np.array_equal(champion.predict(X), prod.predict(X))

    mv2 = mlflow.register_model(f"runs:/{run_ids[1]}/model", name)
    assert mv2.version == "2"
    client.transition_model_version_stage(name, "2", "Production", archive_existing_versions=True)
    assert client.get_model_version(name, "1").current_stage == "Archived"
    assert [v.version for v in client.get_latest_versions(name, stages=["Production"])] == ["2"]
    prod = mlflow.pyfunc.load_model(f"models:/{name}/Production")
    assert np.array_equal(prod.predict(X), models[1].predict(X))
    client.set_registered_model_alias(name, "champion", "2")
    champion = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert np.array_equal(champion.predict(X), models[1].predict(X))

    client.delete_registered_model_alias(name, "champion")
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.get_model_version_by_alias(name, "champion")
    client.delete_registered_model(name)
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.get_registered_model(name)
