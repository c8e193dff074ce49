"""Raw-HTTP checks of MLflow wire details (shared/mlflow-api.md §0, §3, §7) with `requests`.

RPC tests run below both tracking roots (plain and `/ns/<name>`, see conftest); the
server-level endpoints (/health, /version, unknown routes) only at the plain root.
"""

from __future__ import annotations

import json
import math

import pytest

from helpers import api, assert_error, now_ms, unique


def _post(http, base, path, body, **kw):
    return http.post(api(base, path), json=body, timeout=30, **kw)


def _get(http, base, path, params=None, **kw):
    return http.get(api(base, path), params=params, timeout=30, **kw)


def _ok(resp):
    assert resp.status_code == 200, f"{resp.status_code} {resp.text[:500]}"
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert isinstance(body, dict)
    return body


@pytest.fixture
def exp_id(http, tracking_uri):
    return _ok(_post(http, tracking_uri, "experiments/create", {"name": unique("rest")}))["experiment_id"]


@pytest.fixture
def run_id(http, tracking_uri, exp_id):
    body = _ok(_post(http, tracking_uri, "runs/create",
                     {"experiment_id": exp_id, "start_time": now_ms(), "run_name": "rest-run"}))
    return body["run"]["info"]["run_id"]


# ------------------------------------------------------------------ server-level endpoints


def test_health(http, server_url):
    r = http.get(server_url + "/health", timeout=10)
    assert r.status_code == 200
    assert r.text.strip() == "OK"


def test_version(http, server_url):
    r = http.get(server_url + "/version", timeout=10)
    assert r.status_code == 200
    assert r.text.strip()
    assert r.text.strip()[0].isdigit(), r.text


def test_server_info_is_json(http, tracking_uri):
    r = http.get(api(tracking_uri, "server-info", major=3), timeout=10)
    body = _ok(r)
    for key in ("multipart_uploads_enabled", "multipart_downloads_enabled"):
        if key in body:
            assert isinstance(body[key], bool)


@pytest.mark.quiver_only  # the reference answers Flask's HTML 404 page here (spec §0.4)
def test_unknown_route_is_json_404(http, server_url):
    r = http.get(server_url + "/api/2.0/mlflow/does-not-exist", timeout=10)
    assert_error(r, 404, "ENDPOINT_NOT_FOUND")


def test_unknown_route_404(http, server_url):
    # holds for both servers: the client maps a non-JSON 404 to ENDPOINT_NOT_FOUND
    r = http.get(server_url + "/api/2.0/mlflow/does-not-exist", timeout=10)
    assert r.status_code == 404


# ------------------------------------------------------------------ request encoding


def test_content_type_rules(http, tracking_uri):
    url = api(tracking_uri, "experiments/create")
    body = json.dumps({"name": unique("ct")})
    r = http.post(url, data=body, headers={"Content-Type": "text/plain"}, timeout=10)
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Bad Request. Content-Type must be one of")
    r = http.post(url, data=body, timeout=10)  # no Content-Type header at all
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    # parameters on the media type are fine
    r = http.post(url, data=body, headers={"Content-Type": "application/json; charset=utf-8"}, timeout=10)
    assert "experiment_id" in _ok(r)


def test_error_json_shape(http, tracking_uri):
    r = _get(http, tracking_uri, "runs/get", {"run_id": "0123456789abcdef0123456789abcdef"})
    body = assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    assert "0123456789abcdef0123456789abcdef" in body["message"]
    r = _get(http, tracking_uri, "experiments/get-by-name", {"experiment_name": unique("nope")})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")
    r = _post(http, tracking_uri, "experiments/create", {})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'name'")
    r = _get(http, tracking_uri, "experiments/get", {"experiment_id": "987654321"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_create_run_in_unknown_experiment(http, tracking_uri):
    r = _post(http, tracking_uri, "runs/create", {"experiment_id": "987654321", "start_time": now_ms()})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_duplicate_experiment_is_400(http, tracking_uri):
    name = unique("dup")
    _ok(_post(http, tracking_uri, "experiments/create", {"name": name}))
    r = _post(http, tracking_uri, "experiments/create", {"name": name})
    assert_error(r, 400, "RESOURCE_ALREADY_EXISTS")


def test_run_in_deleted_experiment(http, tracking_uri, exp_id):
    _ok(_post(http, tracking_uri, "experiments/delete", {"experiment_id": exp_id}))
    r = _post(http, tracking_uri, "runs/create", {"experiment_id": exp_id, "start_time": now_ms()})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_int64_accepted_as_strings(http, tracking_uri, run_id):
    ts = now_ms()
    _ok(_post(http, tracking_uri, "runs/log-metric",
              {"run_id": run_id, "key": "m", "value": 1.5, "timestamp": str(ts), "step": "2"}))
    hist = _ok(_get(http, tracking_uri, "metrics/get-history", {"run_id": run_id, "metric_key": "m"}))
    (m,) = hist["metrics"]
    assert m["step"] == 2 and m["timestamp"] == ts and m["value"] == 1.5
    # int64 come back as JSON numbers
    assert isinstance(m["timestamp"], int) and isinstance(m["step"], int)
    info = _ok(_get(http, tracking_uri, "runs/get", {"run_id": run_id}))["run"]["info"]
    assert isinstance(info["start_time"], int)


def test_run_uuid_alias(http, tracking_uri, run_id):
    # POST with only run_uuid
    _ok(_post(http, tracking_uri, "runs/log-parameter", {"run_uuid": run_id, "key": "p", "value": "v"}))
    _ok(_post(http, tracking_uri, "runs/set-tag", {"run_uuid": run_id, "key": "t", "value": "x"}))
    # GET with only run_uuid, and with both (as the client sends)
    run = _ok(_get(http, tracking_uri, "runs/get", {"run_uuid": run_id}))["run"]
    assert run["info"]["run_id"] == run_id
    assert run["info"]["run_uuid"] == run_id
    run = _ok(_get(http, tracking_uri, "runs/get", {"run_uuid": run_id, "run_id": run_id}))["run"]
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params == {"p": "v"}
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["t"] == "x"


def test_enum_names_and_numbers(http, tracking_uri, exp_id, run_id):
    body = _ok(_post(http, tracking_uri, "runs/update",
                     {"run_id": run_id, "status": "FINISHED", "end_time": now_ms()}))
    assert body["run_info"]["status"] == "FINISHED"
    _ok(_post(http, tracking_uri, "runs/delete", {"run_id": run_id}))
    for view in ("DELETED_ONLY", 2):
        runs = _ok(_post(http, tracking_uri, "runs/search",
                         {"experiment_ids": [exp_id], "run_view_type": view, "max_results": 10}))["runs"]
        assert [r["info"]["run_id"] for r in runs] == [run_id]
        assert runs[0]["info"]["lifecycle_stage"] == "deleted"
    body = _ok(_post(http, tracking_uri, "runs/search",
                     {"experiment_ids": [exp_id], "run_view_type": "ACTIVE_ONLY", "max_results": 10}))
    assert body.get("runs", []) == []


def test_nan_inf_over_rest(http, tracking_uri, run_id):
    ts = now_ms()
    for key, value in (("n", "NaN"), ("pi", "Infinity"), ("ni", "-Infinity")):
        _ok(_post(http, tracking_uri, "runs/log-metric",
                  {"run_id": run_id, "key": key, "value": value, "timestamp": ts, "step": 0}))
    metrics = {m["key"]: m["value"] for m in
               _ok(_get(http, tracking_uri, "runs/get", {"run_id": run_id}))["run"]["data"]["metrics"]}
    assert math.isnan(float(metrics["n"]))
    assert float(metrics["pi"]) >= 1.7976931348623157e308
    assert float(metrics["ni"]) <= -1.7976931348623157e308


def test_metric_timestamp_required(http, tracking_uri, run_id):
    r = _post(http, tracking_uri, "runs/log-metric", {"run_id": run_id, "key": "m", "value": 1.0})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Missing value for required parameter 'timestamp'")


def test_ajax_api_copies(http, tracking_uri, exp_id, run_id):
    base = tracking_uri
    r = http.get(f"{base}/ajax-api/2.0/mlflow/experiments/get", params={"experiment_id": exp_id}, timeout=10)
    assert _ok(r)["experiment"]["experiment_id"] == exp_id
    r = http.post(f"{base}/ajax-api/2.0/mlflow/runs/search",
                  json={"experiment_ids": [exp_id], "max_results": 10}, timeout=10)
    assert [x["info"]["run_id"] for x in _ok(r)["runs"]] == [run_id]
    r = http.post(f"{base}/ajax-api/2.0/mlflow/runs/log-parameter",
                  json={"run_id": run_id, "key": "via_ajax", "value": "1"}, timeout=10)
    _ok(r)
    r = http.get(f"{base}/ajax-api/3.0/mlflow/server-info", timeout=10)
    _ok(r)


# ------------------------------------------------------------------ limits and validation


def test_param_value_truncated_to_6000(http, tracking_uri, run_id):
    _ok(_post(http, tracking_uri, "runs/log-parameter", {"run_id": run_id, "key": "long", "value": "x" * 6001}))
    run = _ok(_get(http, tracking_uri, "runs/get", {"run_id": run_id}))["run"]
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params["long"] == "x" * 6000


def test_param_conflict_over_rest(http, tracking_uri, run_id):
    _ok(_post(http, tracking_uri, "runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.1"}))
    _ok(_post(http, tracking_uri, "runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.1"}))
    r = _post(http, tracking_uri, "runs/log-parameter", {"run_id": run_id, "key": "lr", "value": "0.2"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Changing param values is not allowed")
    # same value through log-batch is idempotent, a different one is not
    _ok(_post(http, tracking_uri, "runs/log-batch", {"run_id": run_id, "params": [{"key": "lr", "value": "0.1"}]}))
    r = _post(http, tracking_uri, "runs/log-batch", {"run_id": run_id, "params": [{"key": "lr", "value": "0.3"}]})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Changing param values is not allowed")


def test_invalid_key_over_rest(http, tracking_uri, run_id):
    r = _post(http, tracking_uri, "runs/log-parameter", {"run_id": run_id, "key": "bad*key", "value": "v"})
    body = assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    assert "Names may only contain alphanumerics" in body["message"]
    r = _post(http, tracking_uri, "runs/log-metric",
              {"run_id": run_id, "key": "../x", "value": 1, "timestamp": now_ms()})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_log_batch_limits(http, tracking_uri, run_id):
    ts = now_ms()
    r = _post(http, tracking_uri, "runs/log-batch", {
        "run_id": run_id,
        "metrics": [{"key": f"m{i}", "value": i, "timestamp": ts, "step": 0} for i in range(1001)],
    })
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "A batch logging request can contain at most 1000 metrics")
    r = _post(http, tracking_uri, "runs/log-batch", {
        "run_id": run_id, "params": [{"key": f"p{i}", "value": "1"} for i in range(101)],
    })
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "A batch logging request can contain at most 100 params")
    r = _post(http, tracking_uri, "runs/log-batch", {
        "run_id": run_id, "tags": [{"key": f"t{i}", "value": "1"} for i in range(101)],
    })
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "A batch logging request can contain at most 100 tags")
    # exactly at the limits is fine, and nothing of the rejected batches was written
    run = _ok(_get(http, tracking_uri, "runs/get", {"run_id": run_id}))["run"]
    assert "params" not in run["data"] and "metrics" not in run["data"]
    _ok(_post(http, tracking_uri, "runs/log-batch", {
        "run_id": run_id,
        "metrics": [{"key": f"m{i}", "value": i, "timestamp": ts, "step": 0} for i in range(1000)],
    }))
    _ok(_post(http, tracking_uri, "runs/log-batch", {
        "run_id": run_id, "params": [{"key": f"p{i}", "value": "1"} for i in range(100)],
    }))
    run = _ok(_get(http, tracking_uri, "runs/get", {"run_id": run_id}))["run"]
    assert len(run["data"]["metrics"]) == 1000 and len(run["data"]["params"]) == 100


def test_log_batch_duplicate_param_keys(http, tracking_uri, run_id):
    r = _post(http, tracking_uri, "runs/log-batch", {
        "run_id": run_id, "params": [{"key": "dup", "value": "1"}, {"key": "dup", "value": "2"}],
    })
    assert_error(r, 400, "INVALID_PARAMETER_VALUE", "Duplicate parameter keys have been submitted")


def test_log_batch_roundtrip(http, tracking_uri, run_id):
    ts = now_ms()
    _ok(_post(http, tracking_uri, "runs/log-batch", {
        "run_id": run_id,
        "metrics": [{"key": "acc", "value": 0.9, "timestamp": ts, "step": 3},
                    {"key": "acc", "value": 0.95, "timestamp": ts + 5, "step": 4}],
        "params": [{"key": "depth", "value": "3"}],
        "tags": [{"key": "phase", "value": "train"}],
    }))
    data = _ok(_get(http, tracking_uri, "runs/get", {"run_id": run_id}))["run"]["data"]
    assert [(m["key"], m["value"], m["step"]) for m in data["metrics"]] == [("acc", 0.95, 4)]
    assert data["params"] == [{"key": "depth", "value": "3"}]
    assert {"key": "phase", "value": "train"} in data["tags"]


# ------------------------------------------------------------------ search and paging


def test_search_runs_max_results_bounds(http, tracking_uri, exp_id, run_id):
    for bad in (0, -1, 50001):
        r = _post(http, tracking_uri, "runs/search", {"experiment_ids": [exp_id], "max_results": bad})
        assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    body = _ok(_post(http, tracking_uri, "runs/search", {"experiment_ids": [exp_id], "max_results": 50000}))
    assert len(body["runs"]) == 1


def test_search_runs_garbage_page_token(http, tracking_uri, exp_id, run_id):
    r = _post(http, tracking_uri, "runs/search",
              {"experiment_ids": [exp_id], "max_results": 10, "page_token": "%%%not-a-token%%%"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_search_runs_paging_over_rest(http, tracking_uri, exp_id):
    ids = []
    base = now_ms() - 10_000
    for i in range(5):
        body = _ok(_post(http, tracking_uri, "runs/create", {"experiment_id": exp_id, "start_time": base + i}))
        ids.append(body["run"]["info"]["run_id"])
    seen, token = [], None
    for _ in range(10):
        req = {"experiment_ids": [exp_id], "max_results": 2, "order_by": ["attributes.start_time ASC"]}
        if token:
            req["page_token"] = token
        body = _ok(_post(http, tracking_uri, "runs/search", req))
        seen += [r["info"]["run_id"] for r in body.get("runs", [])]
        token = body.get("next_page_token")
        if not token:
            break
    assert seen == ids


def test_search_runs_empty_experiment_list(http, tracking_uri):
    body = _ok(_post(http, tracking_uri, "runs/search", {"experiment_ids": [], "max_results": 10}))
    assert body.get("runs", []) == []


def test_search_experiments_over_rest(http, tracking_uri):
    name = unique("sxr")
    _ok(_post(http, tracking_uri, "experiments/create", {"name": name, "tags": [{"key": "team", "value": "ml"}]}))
    body = _ok(_post(http, tracking_uri, "experiments/search",
                     {"max_results": 10, "filter": f"tags.team = 'ml' and name ILIKE '{name.upper()}'"}))
    assert [e["name"] for e in body["experiments"]] == [name]
    body = _ok(_get(http, tracking_uri, "experiments/search",
                    {"max_results": 10, "filter": f"name = '{name}'"}))
    assert [e["name"] for e in body["experiments"]] == [name]
    r = _post(http, tracking_uri, "experiments/search", {"max_results": 50001})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


# ------------------------------------------------------------------ metric history


def _log_steps(http, base, run_id, key, steps, value=lambda s: s * 1.0):
    ts = now_ms()
    metrics = [{"key": key, "value": value(s), "timestamp": ts + s, "step": s} for s in steps]
    for i in range(0, len(metrics), 1000):
        _ok(_post(http, base, "runs/log-batch", {"run_id": run_id, "metrics": metrics[i:i + 1000]}))


def test_get_history_paging_and_unknown(http, tracking_uri, run_id):
    _log_steps(http, tracking_uri, run_id, "loss", range(5))
    body = _ok(_get(http, tracking_uri, "metrics/get-history", {"run_id": run_id, "metric_key": "loss"}))
    assert [m["step"] for m in body["metrics"]] == [0, 1, 2, 3, 4]
    assert not body.get("next_page_token")
    seen, token = [], None
    for _ in range(10):
        q = {"run_id": run_id, "metric_key": "loss", "max_results": 2}
        if token:
            q["page_token"] = token
        body = _ok(_get(http, tracking_uri, "metrics/get-history", q))
        seen += [m["step"] for m in body.get("metrics", [])]
        token = body.get("next_page_token")
        if not token:
            break
    assert seen == [0, 1, 2, 3, 4]
    # a metric that was never logged, and (per spec correction 11) an unknown run: 200 {}
    assert _ok(_get(http, tracking_uri, "metrics/get-history",
                    {"run_id": run_id, "metric_key": "nope"})).get("metrics", []) == []
    assert _ok(_get(http, tracking_uri, "metrics/get-history",
                    {"run_id": "0123456789abcdef0123456789abcdef", "metric_key": "loss"})).get("metrics", []) == []


def test_get_history_bulk_interval(http, tracking_uri, exp_id):
    runs = []
    for n in (100, 30):
        body = _ok(_post(http, tracking_uri, "runs/create", {"experiment_id": exp_id, "start_time": now_ms()}))
        rid = body["run"]["info"]["run_id"]
        _log_steps(http, tracking_uri, rid, "m", range(n))
        runs.append((rid, n))
    (r1, n1), (r2, n2) = runs
    url = "metrics/get-history-bulk-interval"

    # all points when max_results is large enough
    body = _ok(_get(http, tracking_uri, url, {"run_ids": [r1, r2], "metric_key": "m", "max_results": 200}))
    per_run = {}
    for m in body["metrics"]:
        assert set(m) >= {"key", "value", "timestamp", "step", "run_id"}
        per_run.setdefault(m["run_id"], []).append(m["step"])
    assert sorted(per_run[r1]) == list(range(n1)) and sorted(per_run[r2]) == list(range(n2))

    # sampled: at most max_results per run, always including the min and max step
    body = _ok(_get(http, tracking_uri, url, {"run_ids": [r1, r2], "metric_key": "m", "max_results": 10}))
    per_run = {}
    for m in body["metrics"]:
        per_run.setdefault(m["run_id"], []).append(m["step"])
    for rid, n in runs:
        steps = per_run[rid]
        assert 2 <= len(steps) <= 10
        assert min(steps) == 0 and max(steps) == n - 1
        assert len(set(steps)) == len(steps)

    # a step window
    body = _ok(_get(http, tracking_uri, url, {"run_ids": r1, "metric_key": "m",
                                             "start_step": 10, "end_step": 20, "max_results": 100}))
    steps = sorted(m["step"] for m in body["metrics"])
    assert steps == list(range(10, 21))
    assert all(m["run_id"] == r1 and m["value"] == m["step"] * 1.0 for m in body["metrics"])

    # validation
    r = _get(http, tracking_uri, url, {"run_ids": [r1], "metric_key": "m", "start_step": 5})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = _get(http, tracking_uri, url, {"run_ids": [r1], "metric_key": "m", "start_step": 20, "end_step": 10})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = _get(http, tracking_uri, url, {"run_ids": [r1], "metric_key": "m", "max_results": 2501})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")
    r = _get(http, tracking_uri, url, {"run_ids": [f"{i:032x}" for i in range(101)], "metric_key": "m"})
    assert_error(r, 400, "INVALID_PARAMETER_VALUE")


def test_delete_tag_missing(http, tracking_uri, run_id):
    r = _post(http, tracking_uri, "runs/delete-tag", {"run_id": run_id, "key": "nope"})
    assert_error(r, 404, "RESOURCE_DOES_NOT_EXIST")


def test_log_inputs_and_get(http, tracking_uri, exp_id, run_id):
    ds = {"name": "iris", "digest": "abc123", "source_type": "local",
          "source": json.dumps({"uri": "/tmp/iris.csv"}), "schema": "{}", "profile": "{}"}
    _ok(_post(http, tracking_uri, "runs/log-inputs", {
        "run_id": run_id,
        "datasets": [{"tags": [{"key": "mlflow.data.context", "value": "training"}], "dataset": ds}],
    }))
    run = _ok(_get(http, tracking_uri, "runs/get", {"run_id": run_id}))["run"]
    (di,) = run["inputs"]["dataset_inputs"]
    assert di["dataset"]["name"] == "iris" and di["dataset"]["digest"] == "abc123"
    assert {"key": "mlflow.data.context", "value": "training"} in di["tags"]
    body = _ok(_post(http, tracking_uri, "runs/search", {
        "experiment_ids": [exp_id], "max_results": 10,
        "filter": "datasets.name = 'iris' AND datasets.context = 'training'"}))
    assert [r["info"]["run_id"] for r in body["runs"]] == [run_id]
