"""Tracking flows through the stock mlflow 3.x client (fluent API and MlflowClient).

Every test runs against the plain tracking root and (Quiver only) under a fresh
`/ns/<namespace>` root; see the `tracking_uri` fixture in conftest.py.
"""

from __future__ import annotations

import math
import re
import time

import mlflow
import pandas as pd
import pytest
from mlflow.entities import Metric, Param, RunStatus, RunTag, ViewType

from helpers import now_ms, raises_mlflow, unique

MAX_DOUBLE = 1.7976931348623157e308


def _new_experiment(client, prefix="exp", tags=None) -> str:
    return client.create_experiment(unique(prefix), tags=tags)


def _ids(runs) -> set[str]:
    return {r.info.run_id for r in runs}


def _search_all(client, exp_ids, **kw):
    """MlflowClient.search_runs following next-page tokens to the end."""
    out, token = [], None
    for _ in range(1000):
        page = client.search_runs(exp_ids, page_token=token, **kw)
        out.extend(page)
        token = page.token
        if not token:
            return out
    raise AssertionError("pagination did not terminate")


# --------------------------------------------------------------------------- experiments


def test_set_experiment_creates_then_reuses(tracking_uri, client):
    name = unique("setexp")
    assert client.get_experiment_by_name(name) is None
    exp = mlflow.set_experiment(name)
    assert exp.name == name
    assert exp.lifecycle_stage == "active"
    assert exp.experiment_id and exp.experiment_id != "0"
    assert exp.artifact_location
    again = mlflow.set_experiment(name)
    assert again.experiment_id == exp.experiment_id
    by_name = client.get_experiment_by_name(name)
    assert by_name.experiment_id == exp.experiment_id
    by_id = client.get_experiment(exp.experiment_id)
    assert by_id.name == name
    assert by_id.creation_time > 0 and by_id.last_update_time >= by_id.creation_time
    # set_experiment by id also works
    assert mlflow.set_experiment(experiment_id=exp.experiment_id).name == name


def test_default_experiment_exists(tracking_uri, client):
    exp = client.get_experiment("0")
    assert exp.name == "Default"
    assert client.get_experiment_by_name("Default").experiment_id == "0"


def test_get_experiment_by_name_missing_returns_none(tracking_uri, client):
    assert client.get_experiment_by_name(unique("missing")) is None
    assert mlflow.get_experiment_by_name(unique("missing")) is None


def test_duplicate_experiment_name(tracking_uri, client):
    name = unique("dup")
    client.create_experiment(name)
    with raises_mlflow("RESOURCE_ALREADY_EXISTS"):
        client.create_experiment(name)


def test_get_unknown_experiment(tracking_uri, client):
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.get_experiment("987654321")


def test_experiment_tags(tracking_uri, client):
    exp_id = client.create_experiment(unique("etag"), tags={"team": "ml", "k": "v"})
    client.set_experiment_tag(exp_id, "stage", "dev")
    mlflow.set_experiment(experiment_id=exp_id)
    mlflow.set_experiment_tags({"a": "1", "b": "2"})
    tags = client.get_experiment(exp_id).tags
    assert tags["team"] == "ml" and tags["k"] == "v" and tags["stage"] == "dev"
    assert tags["a"] == "1" and tags["b"] == "2"
    client.set_experiment_tag(exp_id, "stage", "prod")  # overwrite
    client.delete_experiment_tag(exp_id, "k")
    tags = client.get_experiment(exp_id).tags
    assert tags["stage"] == "prod"
    assert "k" not in tags


def test_delete_restore_experiment(tracking_uri, client):
    name = unique("delexp")
    exp_id = client.create_experiment(name)
    before = client.get_experiment(exp_id).last_update_time
    time.sleep(0.01)
    client.delete_experiment(exp_id)
    exp = client.get_experiment(exp_id)
    assert exp.lifecycle_stage == "deleted"
    assert exp.last_update_time >= before
    # still found by name (names stay reserved), but hidden from ACTIVE_ONLY searches
    assert client.get_experiment_by_name(name).lifecycle_stage == "deleted"
    flt = f"name = '{name}'"
    assert client.search_experiments(filter_string=flt) == []
    deleted = client.search_experiments(view_type=ViewType.DELETED_ONLY, filter_string=flt)
    assert [e.experiment_id for e in deleted] == [exp_id]
    assert len(client.search_experiments(view_type=ViewType.ALL, filter_string=flt)) == 1
    # the name is still taken while deleted
    with raises_mlflow("RESOURCE_ALREADY_EXISTS"):
        client.create_experiment(name)
    # creating a run in a deleted experiment fails
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.create_run(exp_id)
    # set_experiment refuses a deleted experiment (client-side check on lifecycle_stage)
    with raises_mlflow():
        mlflow.set_experiment(name)
    client.restore_experiment(exp_id)
    assert client.get_experiment(exp_id).lifecycle_stage == "active"
    assert [e.experiment_id for e in client.search_experiments(filter_string=flt)] == [exp_id]
    run = client.create_run(exp_id)
    assert run.info.experiment_id == exp_id


def test_rename_experiment(tracking_uri, client):
    old, new = unique("old"), unique("new")
    exp_id = client.create_experiment(old)
    client.rename_experiment(exp_id, new)
    assert client.get_experiment(exp_id).name == new
    assert client.get_experiment_by_name(new).experiment_id == exp_id
    assert client.get_experiment_by_name(old) is None
    other = client.create_experiment(unique("other"))
    # The reference answers BAD_REQUEST (leaked sqlite IntegrityError) here; Quiver sends
    # the cleaner RESOURCE_ALREADY_EXISTS. Both are 400s.
    with raises_mlflow(("RESOURCE_ALREADY_EXISTS", "BAD_REQUEST")):
        client.rename_experiment(other, new)


def test_search_experiments_filter_and_order(tracking_uri, client):
    prefix = unique("sx")
    names = [f"{prefix}-b", f"{prefix}-a", f"{prefix}-c"]
    ids = {}
    for n, team in zip(names, ["ml", "ml", "infra"]):
        ids[n] = client.create_experiment(n, tags={"team": team})
        time.sleep(0.005)

    got = client.search_experiments(filter_string=f"name LIKE '{prefix}%'", order_by=["name ASC"])
    assert [e.name for e in got] == sorted(names)
    got = client.search_experiments(filter_string=f"name LIKE '{prefix}%'", order_by=["name DESC"])
    assert [e.name for e in got] == sorted(names, reverse=True)
    # default order: creation_time DESC
    got = client.search_experiments(filter_string=f"name LIKE '{prefix}%'")
    assert [e.name for e in got] == list(reversed(names))
    # ILIKE is case-insensitive, LIKE is not
    assert len(client.search_experiments(filter_string=f"name ILIKE '{prefix.upper()}%'")) == 3
    assert client.search_experiments(filter_string=f"name LIKE '{prefix.upper()}%'") == []
    # tags
    got = client.search_experiments(
        filter_string=f"tags.team = 'ml' AND name LIKE '{prefix}%'", order_by=["name"]
    )
    assert [e.name for e in got] == [f"{prefix}-a", f"{prefix}-b"]
    got = client.search_experiments(filter_string=f"tags.team != 'ml' AND name LIKE '{prefix}%'")
    assert [e.name for e in got] == [f"{prefix}-c"]
    # paging
    page1 = client.search_experiments(
        max_results=2, filter_string=f"name LIKE '{prefix}%'", order_by=["name"]
    )
    assert [e.name for e in page1] == sorted(names)[:2]
    assert page1.token
    page2 = client.search_experiments(
        max_results=2, filter_string=f"name LIKE '{prefix}%'", order_by=["name"], page_token=page1.token
    )
    assert [e.name for e in page2] == sorted(names)[2:]
    # fluent variant
    got = mlflow.search_experiments(filter_string=f"name = '{prefix}-c'")
    assert [e.experiment_id for e in got] == [ids[f"{prefix}-c"]]


# --------------------------------------------------------------------------- runs


def test_start_run_named(tracking_uri, client):
    exp = mlflow.set_experiment(unique("named"))
    t0 = now_ms()
    with mlflow.start_run(run_name="my-run") as run:
        assert run.info.run_name == "my-run"
        assert run.info.status == "RUNNING"
        assert run.info.experiment_id == exp.experiment_id
        assert re.fullmatch(r"[0-9a-f]{32}", run.info.run_id)
        assert mlflow.active_run().info.run_id == run.info.run_id
    got = client.get_run(run.info.run_id)
    assert got.info.run_name == "my-run"
    assert got.data.tags["mlflow.runName"] == "my-run"
    assert got.info.status == "FINISHED"
    assert got.info.lifecycle_stage == "active"
    assert t0 - 60_000 <= got.info.start_time <= got.info.end_time <= now_ms() + 60_000
    assert mlflow.active_run() is None


def test_start_run_unnamed_gets_generated_name(tracking_uri, client):
    mlflow.set_experiment(unique("unnamed"))
    with mlflow.start_run() as run:
        pass
    got = client.get_run(run.info.run_id)
    assert got.info.run_name
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d+", got.info.run_name), got.info.run_name
    assert got.data.tags["mlflow.runName"] == got.info.run_name


def test_nested_runs(tracking_uri, client):
    exp = mlflow.set_experiment(unique("nested"))
    with mlflow.start_run(run_name="parent") as parent:
        with mlflow.start_run(run_name="child-1", nested=True) as c1:
            mlflow.log_param("which", "1")
        with mlflow.start_run(run_name="child-2", nested=True) as c2:
            mlflow.log_param("which", "2")
        assert mlflow.active_run().info.run_id == parent.info.run_id
    pid = parent.info.run_id
    for child in (c1, c2):
        got = client.get_run(child.info.run_id)
        assert got.data.tags["mlflow.parentRunId"] == pid
        assert got.info.status == "FINISHED"
    assert "mlflow.parentRunId" not in client.get_run(pid).data.tags
    kids = client.search_runs([exp.experiment_id], f"tags.mlflow.parentRunId = '{pid}'")
    assert _ids(kids) == {c1.info.run_id, c2.info.run_id}
    kids = client.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{pid}'")
    assert len(kids) == 2
    roots = client.search_runs([exp.experiment_id], "tags.mlflow.parentRunId IS NULL")
    assert _ids(roots) == {pid}


def test_params(tracking_uri, client):
    mlflow.set_experiment(unique("params"))
    with mlflow.start_run() as run:
        mlflow.log_param("alpha", 0.5)
        mlflow.log_params({"depth": 3, "name": "cnn", "flag": True, "with space": "x y"})
        mlflow.log_param("alpha", 0.5)  # same value again is idempotent
        mlflow.log_params({"depth": 3})
        client.log_param(run.info.run_id, "via_client", "c")
    params = client.get_run(run.info.run_id).data.params
    assert params == {
        "alpha": "0.5", "depth": "3", "name": "cnn", "flag": "True", "with space": "x y", "via_client": "c",
    }


def test_changing_param_value_fails(tracking_uri, client):
    mlflow.set_experiment(unique("paramchg"))
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 0.1)
        with raises_mlflow("INVALID_PARAMETER_VALUE"):
            mlflow.log_param("lr", 0.2)
        with raises_mlflow("INVALID_PARAMETER_VALUE"):
            mlflow.log_params({"lr": 0.3})
    assert client.get_run(run.info.run_id).data.params["lr"] == "0.1"


def test_metrics_steps_timestamps_and_latest(tracking_uri, client):
    mlflow.set_experiment(unique("metrics"))
    with mlflow.start_run() as run:
        rid = run.info.run_id
        ts = now_ms()
        client.log_metric(rid, "loss", 1.0, timestamp=ts, step=0)
        client.log_metric(rid, "loss", 0.5, timestamp=ts + 20, step=2)
        client.log_metric(rid, "loss", 0.7, timestamp=ts + 10, step=1)
        mlflow.log_metric("acc", 0.8, step=5)
        mlflow.log_metrics({"acc": 0.85, "f1": 0.6}, step=6)
        mlflow.log_metric("plain", 3)
    data = client.get_run(rid).data
    # "latest" = the value at the max step (not the last one logged)
    assert data.metrics["loss"] == 0.5
    assert data.metrics["acc"] == 0.85
    assert data.metrics["f1"] == 0.6
    assert data.metrics["plain"] == 3.0
    hist = client.get_metric_history(rid, "loss")
    assert [(m.step, m.value, m.timestamp) for m in sorted(hist, key=lambda m: m.step)] == [
        (0, 1.0, ts), (1, 0.7, ts + 10), (2, 0.5, ts + 20),
    ]
    assert all(m.key == "loss" for m in hist)
    acc = client.get_metric_history(rid, "acc")
    assert sorted((m.step, m.value) for m in acc) == [(5, 0.8), (6, 0.85)]
    assert [m.step for m in client.get_metric_history(rid, "plain")] == [0]
    assert client.get_metric_history(rid, "never-logged") == []


def test_same_step_latest_by_timestamp(tracking_uri, client):
    exp_id = _new_experiment(client)
    rid = client.create_run(exp_id).info.run_id
    ts = now_ms()
    client.log_metric(rid, "m", 1.0, timestamp=ts + 100, step=3)
    client.log_metric(rid, "m", 2.0, timestamp=ts, step=3)
    assert client.get_run(rid).data.metrics["m"] == 1.0
    assert len(client.get_metric_history(rid, "m")) == 2


def test_nan_and_inf_metrics(tracking_uri, client):
    mlflow.set_experiment(unique("nan"))
    with mlflow.start_run() as run:
        mlflow.log_metric("nan", float("nan"))
        mlflow.log_metric("pinf", float("inf"))
        mlflow.log_metric("ninf", float("-inf"))
        mlflow.log_metrics({"b_nan": float("nan"), "b_inf": float("inf")})
    m = client.get_run(run.info.run_id).data.metrics
    assert math.isnan(m["nan"]) and math.isnan(m["b_nan"])
    assert m["pinf"] >= MAX_DOUBLE and m["b_inf"] >= MAX_DOUBLE
    assert m["ninf"] <= -MAX_DOUBLE
    (h,) = client.get_metric_history(run.info.run_id, "nan")
    assert math.isnan(h.value)
    (h,) = client.get_metric_history(run.info.run_id, "pinf")
    assert h.value >= MAX_DOUBLE


def test_tags(tracking_uri, client):
    mlflow.set_experiment(unique("tags"))
    with mlflow.start_run() as run:
        mlflow.set_tag("team", "vision")
        mlflow.set_tags({"stage": "dev", "n": 3, "my key": "v"})
        mlflow.set_tag("team", "nlp")  # tags may be overwritten
        client.set_tag(run.info.run_id, "gone", "x")
        client.delete_tag(run.info.run_id, "gone")
    tags = client.get_run(run.info.run_id).data.tags
    assert tags["team"] == "nlp"
    assert tags["stage"] == "dev" and tags["n"] == "3" and tags["my key"] == "v"
    assert "gone" not in tags
    # client sends these system tags at creation
    assert "mlflow.user" in tags and "mlflow.source.type" in tags and "mlflow.source.name" in tags
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.delete_tag(run.info.run_id, "never-set")


def test_end_run_statuses(tracking_uri, client):
    mlflow.set_experiment(unique("status"))
    r1 = mlflow.start_run()
    mlflow.end_run()
    r2 = mlflow.start_run()
    mlflow.end_run(status="FAILED")
    r3 = mlflow.start_run()
    mlflow.end_run(status="KILLED")
    assert client.get_run(r1.info.run_id).info.status == "FINISHED"
    assert client.get_run(r2.info.run_id).info.status == "FAILED"
    assert client.get_run(r3.info.run_id).info.status == "KILLED"
    for r in (r1, r2, r3):
        info = client.get_run(r.info.run_id).info
        assert info.end_time is not None and info.end_time >= info.start_time


def test_context_manager_exception_marks_failed(tracking_uri, client):
    mlflow.set_experiment(unique("fail"))
    with pytest.raises(ZeroDivisionError):
        with mlflow.start_run() as run:
            mlflow.log_param("x", 1)
            1 / 0  # noqa: B018
    info = client.get_run(run.info.run_id).info
    assert info.status == "FAILED"
    assert info.end_time is not None
    assert mlflow.active_run() is None


def test_client_set_terminated_and_update_run(tracking_uri, client):
    exp_id = _new_experiment(client)
    run = client.create_run(exp_id, run_name="before", tags={"k": "v"})
    assert run.info.status == "RUNNING"
    assert run.data.tags["k"] == "v"
    client.update_run(run.info.run_id, name="after")
    got = client.get_run(run.info.run_id)
    assert got.info.run_name == "after"
    assert got.data.tags["mlflow.runName"] == "after"
    end = now_ms()
    client.set_terminated(run.info.run_id, status="FINISHED", end_time=end)
    got = client.get_run(run.info.run_id)
    assert got.info.status == "FINISHED"
    assert got.info.end_time == end


def test_get_run_fields(tracking_uri, client):
    exp = mlflow.set_experiment(unique("fields"))
    with mlflow.start_run(run_name="fields") as run:
        mlflow.log_param("p", "v")
        mlflow.log_metric("m", 1.5, step=1)
        mlflow.log_metric("m", 2.5, step=2)
        mlflow.set_tag("t", "x")
    got = client.get_run(run.info.run_id)
    info = got.info
    assert info.run_id == run.info.run_id
    assert info.experiment_id == exp.experiment_id
    assert info.status == RunStatus.to_string(RunStatus.FINISHED)
    assert info.lifecycle_stage == "active"
    assert info.start_time > 0 and info.end_time >= info.start_time
    assert info.artifact_uri and run.info.run_id in info.artifact_uri
    assert info.user_id == got.data.tags["mlflow.user"]
    assert got.data.params == {"p": "v"}
    assert got.data.metrics == {"m": 2.5}
    assert got.data.tags["t"] == "x"
    # fluent getter agrees
    assert mlflow.get_run(run.info.run_id).data.metrics == {"m": 2.5}


def test_unknown_run_id(tracking_uri, client):
    missing = "0123456789abcdef0123456789abcdef"
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.get_run(missing)
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.log_param(missing, "k", "v")
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.log_metric(missing, "k", 1.0)
    with raises_mlflow("RESOURCE_DOES_NOT_EXIST"):
        client.set_tag(missing, "k", "v")


def test_invalid_key_characters(tracking_uri, client):
    exp_id = _new_experiment(client)
    rid = client.create_run(exp_id).info.run_id
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.log_param(rid, "bad*key", "v")
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.log_metric(rid, "bad?key", 1.0)
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.set_tag(rid, "../escape", "v")
    # allowed special characters
    client.log_param(rid, "a-b_c.d e:f/g", "ok")
    assert client.get_run(rid).data.params["a-b_c.d e:f/g"] == "ok"


def test_delete_restore_run(tracking_uri, client):
    exp_id = _new_experiment(client)
    keep = client.create_run(exp_id).info.run_id
    gone = client.create_run(exp_id).info.run_id
    client.delete_run(gone)
    assert client.get_run(gone).info.lifecycle_stage == "deleted"
    assert _ids(client.search_runs([exp_id])) == {keep}
    assert _ids(client.search_runs([exp_id], run_view_type=ViewType.ACTIVE_ONLY)) == {keep}
    assert _ids(client.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)) == {gone}
    assert _ids(client.search_runs([exp_id], run_view_type=ViewType.ALL)) == {keep, gone}
    df = mlflow.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY)
    assert list(df["run_id"]) == [gone]
    # writes to a deleted run are rejected
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.log_param(gone, "k", "v")
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.log_metric(gone, "k", 1.0)
    client.restore_run(gone)
    assert client.get_run(gone).info.lifecycle_stage == "active"
    assert _ids(client.search_runs([exp_id])) == {keep, gone}
    client.log_param(gone, "k", "v")


# --------------------------------------------------------------------------- search_runs


@pytest.fixture
def search_fixture(client):
    """Four runs with distinct start times and a mix of metrics/params/tags."""
    exp_id = _new_experiment(client, "search")
    base = now_ms() - 100_000
    spec = [
        # name,     start,      params,                          metrics,                         tags,                                    status
        ("alpha-1", base + 1000, {"model": "cnn", "lr": "0.1"}, {"acc": 0.9, "loss": 0.3}, {"team": "vision", "my key": "x"}, "FINISHED"),
        ("alpha-2", base + 2000, {"model": "rnn", "lr": "0.01"}, {"acc": 0.7, "loss": 0.5, "val-loss": 0.6}, {"team": "nlp"}, "FAILED"),
        ("beta-1", base + 3000, {"model": "CNN-large"}, {"acc": 0.8}, {"team": "Vision"}, "RUNNING"),
        ("beta-2", base + 4000, {}, {"loss": 0.1}, {}, "FINISHED"),
    ]
    runs = {}
    for name, start, params, metrics, tags, status in spec:
        run = client.create_run(exp_id, start_time=start, run_name=name, tags=tags)
        rid = run.info.run_id
        ts = now_ms()
        client.log_batch(
            rid,
            metrics=[Metric(k, v, ts, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
        )
        if status != "RUNNING":
            client.set_terminated(rid, status=status, end_time=start + 500)
        runs[name] = rid
    return exp_id, base, runs


def _names(runs):
    return [r.info.run_name for r in runs]


def test_search_runs_filters(tracking_uri, client, search_fixture):
    exp_id, base, r = search_fixture

    def names(flt):
        return set(_names(client.search_runs([exp_id], flt)))

    assert names("") == {"alpha-1", "alpha-2", "beta-1", "beta-2"}
    # metrics (latest value)
    assert names("metrics.acc > 0.75") == {"alpha-1", "beta-1"}
    assert names("metrics.acc >= 0.8 and metrics.loss < 0.5") == {"alpha-1"}
    assert names("metrics.acc = 0.7") == {"alpha-2"}
    assert names("metrics.acc != 0.7") == {"alpha-1", "beta-1"}
    assert names("metrics.loss <= 0.3") == {"alpha-1", "beta-2"}
    assert names("metrics.`val-loss` < 1") == {"alpha-2"}
    assert names("metric.acc > 0.85") == {"alpha-1"}
    # params
    assert names("params.model = 'cnn'") == {"alpha-1"}
    assert names('params.model = "rnn"') == {"alpha-2"}
    assert names("params.model LIKE 'cnn%'") == {"alpha-1"}
    assert names("params.model ILIKE 'cnn%'") == {"alpha-1", "beta-1"}
    assert names("params.model LIKE '%N%'") == {"beta-1"}
    assert names("params.lr != '0.1'") == {"alpha-2"}
    assert names("params.model IS NULL") == {"beta-2"}
    assert names("params.model IS NOT NULL") == {"alpha-1", "alpha-2", "beta-1"}
    assert names("param.lr = '0.01' and params.model = 'rnn'") == {"alpha-2"}
    # tags
    assert names("tags.team = 'vision'") == {"alpha-1"}
    assert names("tags.team ILIKE 'vision'") == {"alpha-1", "beta-1"}
    assert names("tags.team LIKE 'V%'") == {"beta-1"}
    assert names("tags.`my key` = 'x'") == {"alpha-1"}
    assert names("tags.team IS NULL") == {"beta-2"}
    assert names("tags.team IS NOT NULL and tags.team != 'nlp'") == {"alpha-1", "beta-1"}
    assert names("tags.\"mlflow.runName\" = 'beta-1'") == {"beta-1"}
    # attributes
    assert names("attributes.status = 'FINISHED'") == {"alpha-1", "beta-2"}
    assert names("attributes.status = 'RUNNING'") == {"beta-1"}
    assert names("status != 'RUNNING'") == {"alpha-1", "alpha-2", "beta-2"}
    assert names("attributes.run_name = 'alpha-1'") == {"alpha-1"}
    assert names("attributes.run_name LIKE 'alpha%'") == {"alpha-1", "alpha-2"}
    assert names("attributes.run_name ILIKE 'BETA%'") == {"beta-1", "beta-2"}
    assert names(f"attributes.start_time >= {base + 3000}") == {"beta-1", "beta-2"}
    assert names(f"attributes.start_time < {base + 2000}") == {"alpha-1"}
    assert names(f"attributes.start_time = {base + 2000}") == {"alpha-2"}
    assert names(f"attributes.run_id IN ('{r['alpha-1']}', '{r['beta-2']}')") == {"alpha-1", "beta-2"}
    assert names(f"attributes.run_id NOT IN ('{r['alpha-1']}')") == {"alpha-2", "beta-1", "beta-2"}
    assert names(f"attributes.run_id = '{r['beta-1']}'") == {"beta-1"}
    # combined
    assert names(
        "metrics.acc > 0.5 and params.model ILIKE '%cnn%' and attributes.status = 'FINISHED'"
    ) == {"alpha-1"}


def test_search_runs_bad_filter(tracking_uri, client, search_fixture):
    exp_id, _, _ = search_fixture
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_runs([exp_id], "metrics.acc = 'x'")
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_runs([exp_id], "metrics.acc > 1 OR metrics.acc < 0")
    with raises_mlflow("INVALID_PARAMETER_VALUE"):
        client.search_runs([exp_id], order_by=["foo.bar"])


def test_search_runs_order_by(tracking_uri, client, search_fixture):
    exp_id, _, _ = search_fixture
    # missing metric sorts last in both directions
    assert _names(client.search_runs([exp_id], order_by=["metrics.acc DESC"])) == [
        "alpha-1", "beta-1", "alpha-2", "beta-2"]
    assert _names(client.search_runs([exp_id], order_by=["metrics.acc ASC"])) == [
        "alpha-2", "beta-1", "alpha-1", "beta-2"]
    assert _names(client.search_runs([exp_id], order_by=["metrics.acc"])) == [
        "alpha-2", "beta-1", "alpha-1", "beta-2"]
    # missing loss (beta-1) last; default tiebreakers don't matter here
    assert _names(client.search_runs([exp_id], order_by=["metrics.loss DESC"])) == [
        "alpha-2", "alpha-1", "beta-2", "beta-1"]
    # default: start_time DESC
    assert _names(client.search_runs([exp_id])) == ["beta-2", "beta-1", "alpha-2", "alpha-1"]
    assert _names(client.search_runs([exp_id], order_by=["attributes.start_time ASC"])) == [
        "alpha-1", "alpha-2", "beta-1", "beta-2"]
    assert _names(client.search_runs([exp_id], order_by=["attributes.run_name DESC"])) == [
        "beta-2", "beta-1", "alpha-2", "alpha-1"]
    # params compare as strings ('0.01' < '0.1'); lr missing on beta-*, which sort last
    # with the start_time DESC tiebreaker between them
    assert _names(client.search_runs([exp_id], order_by=["params.lr ASC"])) == [
        "alpha-2", "alpha-1", "beta-2", "beta-1"]
    assert _names(client.search_runs([exp_id], order_by=["params.lr DESC"])) == [
        "alpha-1", "alpha-2", "beta-2", "beta-1"]
    # multiple keys: status then start_time
    assert _names(client.search_runs(
        [exp_id], order_by=["attributes.status ASC", "attributes.start_time ASC"])) == [
        "alpha-2", "alpha-1", "beta-2", "beta-1"]


def test_search_runs_dataframe(tracking_uri, client, search_fixture):
    exp_id, _, r = search_fixture
    df = mlflow.search_runs(experiment_ids=[exp_id], filter_string="metrics.acc > 0.5",
                            order_by=["metrics.acc DESC"])
    assert isinstance(df, pd.DataFrame)
    assert list(df["run_id"]) == [r["alpha-1"], r["beta-1"], r["alpha-2"]]
    assert list(df["metrics.acc"]) == [0.9, 0.8, 0.7]
    assert list(df["params.model"]) == ["cnn", "CNN-large", "rnn"]
    assert list(df["tags.team"]) == ["vision", "Vision", "nlp"]
    assert list(df["status"]) == ["FINISHED", "RUNNING", "FAILED"]
    assert list(df["tags.mlflow.runName"]) == ["alpha-1", "beta-1", "alpha-2"]
    # search by experiment name, output as list
    exp_name = client.get_experiment(exp_id).name
    runs = mlflow.search_runs(experiment_names=[exp_name], output_format="list",
                              filter_string="params.model = 'rnn'")
    assert [x.info.run_id for x in runs] == [r["alpha-2"]]
    # max_results caps the DataFrame
    assert len(mlflow.search_runs([exp_id], max_results=2)) == 2


def test_search_runs_paging(tracking_uri, client):
    exp_id = _new_experiment(client, "paging")
    base = now_ms() - 100_000
    all_ids = []
    for i in range(11):
        run = client.create_run(exp_id, start_time=base + i)
        client.log_metric(run.info.run_id, "i", i)
        all_ids.append(run.info.run_id)
    pages, token, seen = 0, None, []
    while True:
        page = client.search_runs([exp_id], max_results=3, page_token=token,
                                  order_by=["metrics.i ASC"])
        assert len(page) <= 3
        seen.extend(r.info.run_id for r in page)
        pages += 1
        token = page.token
        if not token:
            break
        assert pages < 10
    assert seen == all_ids
    assert pages in (4, 5)  # a token on the last full page is allowed
    # default order paged, too
    got = _search_all(client, [exp_id], max_results=4)
    assert [r.info.run_id for r in got] == list(reversed(all_ids))
    # fluent search pages internally
    assert len(mlflow.search_runs([exp_id], max_results=11)) == 11


def test_search_runs_across_experiments(tracking_uri, client):
    e1, e2 = _new_experiment(client), _new_experiment(client)
    r1 = client.create_run(e1).info.run_id
    r2 = client.create_run(e2).info.run_id
    assert _ids(client.search_runs([e1, e2])) == {r1, r2}
    assert _ids(client.search_runs([e2])) == {r2}


def test_hyperparameter_sweep_best_run(tracking_uri, client):
    exp = mlflow.set_experiment(unique("sweep"))
    lrs, depths = [0.001, 0.01, 0.1], [2, 4, 8]

    lr_penalty = {0.001: 0.08, 0.01: 0.0, 0.1: 0.12}
    depth_penalty = {2: 0.03, 4: 0.0, 8: 0.05}

    def score(lr, depth):  # deterministic; all nine scores distinct, optimum lr=0.01, depth=4
        return round(1.0 - lr_penalty[lr] - depth_penalty[depth], 6)

    expected = {}
    with mlflow.start_run(run_name="sweep-parent") as parent:
        for lr in lrs:
            for depth in depths:
                with mlflow.start_run(run_name=f"lr{lr}-d{depth}", nested=True) as child:
                    mlflow.log_params({"lr": lr, "depth": depth})
                    final = score(lr, depth)
                    for epoch, value in enumerate([final * 0.5, final * 0.8, final]):
                        mlflow.log_metric("score", value, step=epoch)
                    expected[child.info.run_id] = (str(lr), str(depth), score(lr, depth))
    best_id = max(expected, key=lambda k: expected[k][2])
    children_filter = f"tags.mlflow.parentRunId = '{parent.info.run_id}'"

    best = client.search_runs([exp.experiment_id], children_filter,
                              order_by=["metrics.score DESC"], max_results=1)
    assert len(best) == 1
    assert best[0].info.run_id == best_id
    assert best[0].data.params == {"lr": "0.01", "depth": "4"}
    assert best[0].data.metrics["score"] == pytest.approx(1.0)

    df = mlflow.search_runs([exp.experiment_id], filter_string=children_filter,
                            order_by=["metrics.score DESC"])
    assert len(df) == 9
    assert df.iloc[0]["run_id"] == best_id
    assert list(df["metrics.score"]) == sorted((v[2] for v in expected.values()), reverse=True)
    worst = client.search_runs([exp.experiment_id], children_filter,
                               order_by=["metrics.score ASC"], max_results=1)[0]
    assert worst.info.run_id == min(expected, key=lambda k: expected[k][2])
    # filter + order together
    good = client.search_runs([exp.experiment_id], children_filter + " and params.lr = '0.01'",
                              order_by=["metrics.score DESC"])
    assert [r.data.params["depth"] for r in good] == ["4", "2", "8"]
    assert good[0].info.run_id == best_id


@pytest.mark.slow
def test_metric_history_over_25000_points(tracking_uri, client):
    exp_id = _new_experiment(client, "bighist")
    rid = client.create_run(exp_id).info.run_id
    n, chunk = 25_500, 1000
    ts0 = now_ms()
    for start in range(0, n, chunk):
        client.log_batch(rid, metrics=[
            Metric("big", float(i) * 0.5, ts0 + i, i) for i in range(start, min(n, start + chunk))
        ])
    hist = client.get_metric_history(rid, "big")
    assert len(hist) == n
    assert [m.step for m in hist] == list(range(n))
    assert [m.value for m in hist[:3]] == [0.0, 0.5, 1.0]
    assert hist[-1].value == (n - 1) * 0.5 and hist[-1].timestamp == ts0 + n - 1
    assert client.get_run(rid).data.metrics["big"] == (n - 1) * 0.5


def test_log_batch_via_client(tracking_uri, client):
    exp_id = _new_experiment(client)
    rid = client.create_run(exp_id).info.run_id
    ts = now_ms()
    # over the server limits on purpose: the client splits these into several requests
    client.log_batch(
        rid,
        metrics=[Metric(f"m{i}", i, ts, 0) for i in range(1500)],
        params=[Param(f"p{i}", str(i)) for i in range(150)],
        tags=[RunTag(f"t{i}", str(i)) for i in range(120)],
    )
    data = client.get_run(rid).data
    assert len(data.metrics) == 1500
    assert len(data.params) == 150
    assert sum(1 for k in data.tags if k.startswith("t")) == 120
    assert data.params["p149"] == "149" and data.metrics["m1499"] == 1499


def test_dataset_inputs(tracking_uri, client):
    exp = mlflow.set_experiment(unique("datasets"))
    ds_name = unique("iris")
    df = pd.DataFrame({"a": [1, 2, 3], "b": [0.1, 0.2, 0.3], "label": [0, 1, 0]})
    dataset = mlflow.data.from_pandas(df, name=ds_name, targets="label")
    with mlflow.start_run() as train_run:
        mlflow.log_input(dataset, context="training")
    other = mlflow.data.from_pandas(df.head(2), name=unique("other"))
    with mlflow.start_run() as eval_run:
        mlflow.log_input(other, context="eval")
    with mlflow.start_run() as no_ds_run:
        pass

    run = client.get_run(train_run.info.run_id)
    (di,) = run.inputs.dataset_inputs
    assert di.dataset.name == ds_name
    assert di.dataset.digest == dataset.digest
    assert di.dataset.source_type
    assert di.dataset.schema and "label" in di.dataset.schema
    assert {t.key: t.value for t in di.tags}["mlflow.data.context"] == "training"
    assert client.get_run(no_ds_run.info.run_id).inputs.dataset_inputs == []

    eid = exp.experiment_id
    assert _ids(client.search_runs([eid], f"datasets.name = '{ds_name}'")) == {train_run.info.run_id}
    assert _ids(client.search_runs([eid], "datasets.context = 'training'")) == {train_run.info.run_id}
    assert _ids(client.search_runs([eid], "datasets.context = 'eval'")) == {eval_run.info.run_id}
    assert _ids(client.search_runs(
        [eid], f"datasets.name = '{ds_name}' AND datasets.context = 'training'")) == {train_run.info.run_id}
    assert _ids(client.search_runs([eid], f"datasets.digest = '{dataset.digest}'")) == {train_run.info.run_id}
    assert client.search_runs([eid], f"datasets.name = '{ds_name}' AND datasets.context = 'eval'") == []
