"""The model registry through the stock mlflow 3.x client (shared/mlflow-api.md §6, §7.4,
§7.5, §10 and the `rm_*`/`mv_*`/`alias_*` examples of Appendix B): the seed's whole
train → compare → register → promote → load workflow, tags, descriptions, stages, aliases,
search and paging, rename and delete, registration from an MLflow-3 logged model id, the
error codes the client sees, and raw-REST wire details the client cannot express.

Models are logged with explicit `pip_requirements`: the client's requirement inference
loads the model in a subprocess and costs seconds per `log_model`, and it never reaches the
server. Metadata-only tests register a `runs:/<run>/model` source of a bare run, which the
server stores verbatim without looking at artifacts.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from helpers import api, assert_error, now_ms, raises_mlflow, unique

MISSING = "RESOURCE_DOES_NOT_EXIST"
INVALID = "INVALID_PARAMETER_VALUE"
EXISTS = "RESOURCE_ALREADY_EXISTS"

# Explicit requirements: skips the client's slow requirement inference (see module doc).
PIP = ["scikit-learn"]
# The 3.x default (skops) format needs the tree type trusted for a RandomForest.
SKOPS = {"skops_trusted_types": ["sklearn.tree._tree.Tree"]}
CLOUDPICKLE = {"serialization_format": "cloudpickle"}


# ------------------------------------------------------------------------------ helpers


def _split():
    from sklearn.datasets import make_classification
    from sklearn.model_selection import train_test_split

    X, y = make_classification(n_samples=300, n_features=8, n_informative=4, random_state=42)
    return train_test_split(X, y, test_size=0.3, random_state=42)


def _fit(X, y, random_state=0, **params):
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(random_state=random_state, **params).fit(X, y)


def _log_model(model, **kw):
    import mlflow

    kw = kw or dict(CLOUDPICKLE)
    return mlflow.sklearn.log_model(model, name="model", pip_requirements=PIP, **kw)


def _logged_model(experiment: str, random_state=0, **params):
    """A real sklearn model logged in a fresh run of the given experiment.
    Returns (run_id, model_info, model, X_val)."""
    import mlflow

    X_train, X_val, y_train, _ = _split()
    model = _fit(X_train, y_train, random_state=random_state, **params)
    mlflow.set_experiment(experiment)
    with mlflow.start_run() as run:
        info = _log_model(model)
    return run.info.run_id, info, model, X_val


def _bare_run(client) -> str:
    exp_id = client.create_experiment(unique("reg-exp"))
    return client.create_run(exp_id).info.run_id


def _model_with_versions(client, n: int, run_id: str | None = None, name: str | None = None, **create_kw):
    """A registered model with n versions whose source is `runs:/<run>/model`."""
    run_id = run_id or _bare_run(client)
    name = name or unique("reg")
    client.create_registered_model(name, **create_kw)
    for i in range(n):
        mv = client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
        assert mv.version == str(i + 1)
    return name, run_id


def _stages(versions) -> dict[str, str]:
    by_stage = {}
    for mv in versions:
        assert mv.current_stage not in by_stage, f"two latest versions for {mv.current_stage}"
        by_stage[mv.current_stage] = mv.version
    return by_stage


def _all_pages(search, **kw):
    """Every page of a client search (max_results per page); returns the page sizes too.
    The reference may hand out a token for an empty last page (spec §7.7)."""
    items, sizes, token = [], [], None
    for _ in range(50):
        page = search(page_token=token, **kw)
        items.extend(page)
        sizes.append(len(page))
        token = page.token
        if not token:
            break
    else:
        pytest.fail("search never stopped returning a page token")
    while sizes and sizes[-1] == 0 and len(sizes) > 1:
        sizes.pop()
    return items, sizes


def _ok(resp):
    assert resp.status_code == 200, f"{resp.status_code} {resp.text[:500]}"
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert isinstance(body, dict)
    return body


# ------------------------------------------------------------- 1. the seed's whole workflow


def test_seed_workflow(tracking_uri, client):
    """Train a few RandomForests, pick the best by val_f1, register it, promote it to
    Production, load it by stage; register and promote a second version (the same load code
    now serves v2); then the same with an alias."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow
    from sklearn.metrics import accuracy_score, f1_score

    mlflow.set_experiment(unique("registry-seed"))
    X_train, X_val, y_train, y_val = _split()
    trained = {}
    for params in ({"n_estimators": 10, "max_depth": 2}, {"n_estimators": 10, "max_depth": 8},
                   {"n_estimators": 5, "max_depth": 1}):
        model = _fit(X_train, y_train, **params)
        pred = model.predict(X_val)
        with mlflow.start_run() as run:
            mlflow.log_params(params)
            mlflow.log_metrics({"val_accuracy": accuracy_score(y_val, pred), "val_f1": f1_score(y_val, pred)})
            info = mlflow.sklearn.log_model(model, name="model", pip_requirements=PIP, **SKOPS)
            fig, ax = plt.subplots()
            ax.barh([f"f{i}" for i in range(X_train.shape[1])], model.feature_importances_)
            mlflow.log_figure(fig, "feature_importance.png")
            plt.close(fig)
        trained[run.info.run_id] = (model, f1_score(y_val, pred), info, params)

    runs = mlflow.search_runs(order_by=["metrics.val_f1 DESC"])
    assert set(runs["run_id"]) == set(trained)
    f1s = list(runs["metrics.val_f1"])
    assert f1s == sorted(f1s, reverse=True)
    best_id = runs.iloc[0]["run_id"]
    best_model, best_f1, best_info, best_params = trained[best_id]
    assert best_f1 == pytest.approx(max(t[1] for t in trained.values()))
    assert runs.iloc[0]["params.max_depth"] == str(best_params["max_depth"])
    assert "feature_importance.png" in {f.path for f in client.list_artifacts(best_id)}
    # the challenger: another run whose predictions differ from the best one's
    other_id = next(r for r in runs["run_id"][1:]
                    if not np.array_equal(trained[r][0].predict(X_val), best_model.predict(X_val)))
    other_model, other_info = trained[other_id][0], trained[other_id][2]

    name = unique("seed-model")
    mv1 = mlflow.register_model(f"runs:/{best_id}/model", name)
    assert (mv1.name, mv1.version, mv1.run_id, mv1.status) == (name, "1", best_id, "READY")
    assert mv1.source == f"models:/{best_info.model_id}"
    assert mv1.current_stage == "None"

    promoted = client.transition_model_version_stage(name, "1", "Production")
    assert (promoted.version, promoted.current_stage) == ("1", "Production")
    prod = mlflow.pyfunc.load_model(f"models:/{name}/Production")
    assert np.array_equal(prod.predict(X_val), best_model.predict(X_val))
    assert prod.metadata.run_id == best_id

    mv2 = mlflow.register_model(f"runs:/{other_id}/model", name)
    assert (mv2.version, mv2.run_id, mv2.source) == ("2", other_id, f"models:/{other_info.model_id}")
    promoted = client.transition_model_version_stage(name, "2", "Production", archive_existing_versions=True)
    assert promoted.current_stage == "Production"
    assert client.get_model_version(name, "1").current_stage == "Archived"
    assert client.get_model_version(name, "2").current_stage == "Production"
    prod = mlflow.pyfunc.load_model(f"models:/{name}/Production")  # the same load code
    assert np.array_equal(prod.predict(X_val), other_model.predict(X_val))
    assert [v.version for v in client.get_latest_versions(name, stages=["Production"])] == ["2"]
    assert [v.version for v in client.get_latest_versions(name, stages=["Archived"])] == ["1"]

    # aliases
    client.set_registered_model_alias(name, "champion", "2")
    champion = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert np.array_equal(champion.predict(X_val), other_model.predict(X_val))
    by_alias = client.get_model_version_by_alias(name, "champion")
    assert (by_alias.version, by_alias.run_id, by_alias.aliases) == ("2", other_id, ["champion"])
    assert client.get_registered_model(name).aliases == {"champion": "2"}

    client.set_registered_model_alias(name, "champion", "1")  # moving it
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert client.get_model_version(name, "2").aliases == []
    assert client.get_model_version(name, "1").aliases == ["champion"]
    champion = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    assert np.array_equal(champion.predict(X_val), best_model.predict(X_val))

    client.delete_registered_model_alias(name, "champion")
    assert client.get_registered_model(name).aliases == {}
    assert client.get_model_version(name, "1").aliases == []
    with raises_mlflow(INVALID):  # correction 7: a missing alias is 400, not 404
        client.get_model_version_by_alias(name, "champion")


# --------------------------------------------------- 2. tags, descriptions, stages, search


def test_registered_model_tags_and_description(tracking_uri, client):
    name = unique("reg-tags")
    rm = client.create_registered_model(name, tags={"team": "ml", "tier": "gold"}, description="first")
    assert (rm.name, rm.description, rm.tags) == (name, "first", {"team": "ml", "tier": "gold"})
    assert rm.creation_timestamp == rm.last_updated_timestamp and rm.creation_timestamp > 0
    assert rm.latest_versions == [] and rm.aliases == {}

    client.set_registered_model_tag(name, "stage", "dev")
    client.set_registered_model_tag(name, "tier", "silver")  # overwrite
    client.delete_registered_model_tag(name, "team")
    client.delete_registered_model_tag(name, "never-set")  # no error (correction 8)
    assert client.get_registered_model(name).tags == {"stage": "dev", "tier": "silver"}

    time.sleep(0.01)
    updated = client.update_registered_model(name, description="second")
    assert updated.description == "second"
    assert updated.last_updated_timestamp > rm.creation_timestamp
    got = client.get_registered_model(name)
    assert (got.description, got.creation_timestamp) == ("second", rm.creation_timestamp)


def test_model_version_tags_and_description(tracking_uri, client):
    run_id = _bare_run(client)
    name = unique("reg-mvtags")
    client.create_registered_model(name)
    mv = client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id,
                                     tags={"a": "1", "b": "2"}, description="v1 desc")
    assert (mv.version, mv.description, mv.tags, mv.run_id) == ("1", "v1 desc", {"a": "1", "b": "2"}, run_id)
    assert mv.source == f"runs:/{run_id}/model"
    assert mv.current_stage == "None" and mv.status == "READY"

    client.set_model_version_tag(name, "1", "validated", "yes")
    client.set_model_version_tag(name, "1", "b", "3")
    client.delete_model_version_tag(name, "1", "a")
    client.delete_model_version_tag(name, "1", "never-set")  # no error (correction 8)
    assert client.get_model_version(name, "1").tags == {"b": "3", "validated": "yes"}

    updated = client.update_model_version(name, "1", description="better")
    assert (updated.version, updated.description) == ("1", "better")
    got = client.get_model_version(name, "1")
    assert (got.description, got.tags["validated"], got.creation_timestamp) == ("better", "yes", mv.creation_timestamp)
    # a second version does not inherit anything
    mv2 = client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    assert (mv2.version, mv2.tags, mv2.description) == ("2", {}, "")


def test_stages_latest_versions_and_download_uri(tracking_uri, client):
    name, run_id = _model_with_versions(client, 3)
    assert _stages(client.get_latest_versions(name)) == {"None": "3"}
    client.transition_model_version_stage(name, "1", "Staging")
    client.transition_model_version_stage(name, "2", "Production")
    assert _stages(client.get_latest_versions(name)) == {"Staging": "1", "Production": "2", "None": "3"}
    assert [v.version for v in client.get_latest_versions(name, stages=["Production"])] == ["2"]
    assert _stages(client.get_latest_versions(name, stages=["Staging", "Production"])) == {
        "Staging": "1", "Production": "2"}
    assert client.get_latest_versions(name, stages=["Archived"]) == []

    # a newer version in the same stage wins; without archiving, the old one stays there
    client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    client.transition_model_version_stage(name, "4", "Staging")
    assert client.get_model_version(name, "1").current_stage == "Staging"
    assert _stages(client.get_latest_versions(name, stages=["Staging"])) == {"Staging": "4"}
    # archive_existing_versions archives only the other versions in the target stage
    client.transition_model_version_stage(name, "3", "Staging", archive_existing_versions=True)
    assert {v: client.get_model_version(name, v).current_stage for v in "1234"} == {
        "1": "Archived", "2": "Production", "3": "Staging", "4": "Archived"}
    assert _stages(client.get_latest_versions(name)) == {"Archived": "4", "Production": "2", "Staging": "3"}
    client.transition_model_version_stage(name, "2", "None")
    assert client.get_latest_versions(name, stages=["Production"]) == []

    # a runs:/ source comes back as stored (correction 6: the client resolves it), or
    # already resolved to the run's artifact location, which the client handles too
    run_uri = client.get_run(run_id).info.artifact_uri
    assert client.get_model_version_download_uri(name, "1") in (f"runs:/{run_id}/model", f"{run_uri}/model")


def test_search_registered_models(tracking_uri, client):
    import mlflow

    prefix = unique("srm")
    names = [f"{prefix}-{i}" for i in range(7)]
    for i, name in enumerate(names):
        client.create_registered_model(name, tags={"parity": "even" if i % 2 == 0 else "odd", "idx": str(i)})
        time.sleep(0.005)  # distinct last_updated_timestamps

    def search(flt, **kw):
        return [m.name for m in client.search_registered_models(filter_string=flt, **kw)]

    like = f"name LIKE '{prefix}-%'"
    assert search(like) == names  # default order: name ASC
    assert search(f"name = '{names[3]}'") == [names[3]]
    assert search(f"name = '{prefix}'") == []
    assert search(f"name ILIKE '{prefix.upper()}-%'") == names
    assert search(f"name LIKE '{prefix.upper()}-%'") == []  # LIKE is case-sensitive
    assert search(f"name LIKE '%{prefix[4:]}-_'") == names
    assert search(f"{like} AND name != '{names[0]}'") == names[1:]
    assert search(f"name IN ('{names[1]}', '{names[5]}', 'nope')") == [names[1], names[5]]
    assert search(f"{like} AND tags.parity = 'even'") == names[0::2]
    assert search(f"tags.parity = 'odd' AND {like}") == names[1::2]
    assert search(f"{like} AND tags.idx LIKE '1%'") == [names[1]]
    assert search(f"{like} AND tags.parity = 'none'") == []

    # order_by
    assert search(like, order_by=["name DESC"]) == names[::-1]
    assert search(like, order_by=["name ASC"]) == names
    client.update_registered_model(names[2], description="touched")
    recent = search(like, order_by=["last_updated_timestamp DESC"])
    assert recent == [names[2]] + [n for n in names[::-1] if n != names[2]]
    assert search(like, order_by=["last_updated_timestamp ASC"]) == recent[::-1]
    assert search(like, order_by=["timestamp DESC"]) == recent

    # max_results and paging through every page
    first = client.search_registered_models(filter_string=like, max_results=3)
    assert [m.name for m in first] == names[:3] and first.token
    found, sizes = _all_pages(client.search_registered_models, filter_string=like, max_results=3)
    assert [m.name for m in found] == names
    assert sizes == [3, 3, 1]
    found, _ = _all_pages(client.search_registered_models, filter_string=like, max_results=3,
                          order_by=["name DESC"])
    assert [m.name for m in found] == names[::-1]
    # the fluent API pages by itself
    assert [m.name for m in mlflow.search_registered_models(filter_string=like)] == names
    assert [m.name for m in mlflow.search_registered_models(filter_string=like, max_results=4)] == names[:4]

    with raises_mlflow(INVALID):
        client.search_registered_models(filter_string="foo = 'x'")
    with raises_mlflow(INVALID):
        client.search_registered_models(filter_string=f"{like} OR name = 'x'")
    with raises_mlflow(INVALID):
        client.search_registered_models(order_by=["creation_timestamp DESC"])


def test_search_model_versions(tracking_uri, client):
    import mlflow

    prefix = unique("smv")
    run_a, run_b = _bare_run(client), _bare_run(client)
    a, b = f"{prefix}-a", f"{prefix}-b"
    client.create_registered_model(a)
    client.create_registered_model(b)
    for name, run_id in ((a, run_a), (a, run_a), (a, run_b), (b, run_b), (b, run_b)):
        client.create_model_version(name, f"runs:/{run_id}/model", run_id=run_id)
    tag = unique("tagval")
    client.set_model_version_tag(a, "2", "k", tag)
    client.set_model_version_tag(b, "1", "k", tag)

    def search(flt, **kw):
        return [(m.name, m.version) for m in client.search_model_versions(flt, **kw)]

    assert search(f"name='{a}'", order_by=["version_number DESC"]) == [(a, "3"), (a, "2"), (a, "1")]
    assert search(f"name='{a}'", order_by=["version_number ASC"]) == [(a, "1"), (a, "2"), (a, "3")]
    assert sorted(search(f"name='{b}'")) == [(b, "1"), (b, "2")]
    assert sorted(search(f"run_id='{run_b}'")) == [(a, "3"), (b, "1"), (b, "2")]
    assert sorted(search(f"run_id='{run_a}'")) == [(a, "1"), (a, "2")]
    assert sorted(search(f"name='{a}' AND run_id='{run_a}'")) == [(a, "1"), (a, "2")]
    assert search(f"name='{a}' AND version_number > 1", order_by=["version_number ASC"]) == [(a, "2"), (a, "3")]
    assert search(f"name='{a}' AND version_number >= 3") == [(a, "3")]
    assert sorted(search(f"tags.k='{tag}'")) == [(a, "2"), (b, "1")]
    assert search(f"tags.k='{tag}' AND name='{b}'") == [(b, "1")]
    assert sorted(search(f"name IN ('{a}', '{b}') AND version_number = 2")) == [(a, "2"), (b, "2")]
    assert search(f"name LIKE '{prefix}-%'", order_by=["name DESC", "version_number ASC"]) == [
        (b, "1"), (b, "2"), (a, "1"), (a, "2"), (a, "3")]
    assert search(f"name = '{prefix}'") == []
    mv = client.search_model_versions(f"name='{a}' AND version_number = 3")[0]
    assert (mv.run_id, mv.source, mv.current_stage, mv.status) == (run_b, f"runs:/{run_b}/model", "None", "READY")

    ordered = search(f"name LIKE '{prefix}-%'", order_by=["name ASC", "version_number DESC"])
    assert ordered == [(a, "3"), (a, "2"), (a, "1"), (b, "2"), (b, "1")]
    first = client.search_model_versions(f"name LIKE '{prefix}-%'", max_results=2,
                                         order_by=["name ASC", "version_number DESC"])
    assert [(m.name, m.version) for m in first] == ordered[:2] and first.token
    found, sizes = _all_pages(client.search_model_versions, filter_string=f"name LIKE '{prefix}-%'",
                              max_results=2, order_by=["name ASC", "version_number DESC"])
    assert [(m.name, m.version) for m in found] == ordered
    assert sizes == [2, 2, 1]
    # the fluent API pages by itself
    fluent = mlflow.search_model_versions(filter_string=f"name LIKE '{prefix}-%'",
                                          order_by=["name ASC", "version_number DESC"])
    assert [(m.name, m.version) for m in fluent] == ordered

    with raises_mlflow(INVALID):
        client.search_model_versions("foo = 'x'")
    with raises_mlflow(INVALID):
        client.search_model_versions("version_number > 'a'")


def test_rename_and_delete(tracking_uri, client):
    name, run_id = _model_with_versions(client, 3, tags={"t": "1"}, description="d")
    client.set_registered_model_alias(name, "keep", "1")
    client.set_registered_model_alias(name, "gone", "2")
    client.transition_model_version_stage(name, "1", "Production")

    new = unique("reg-renamed")
    client.rename_registered_model(name, new)  # the client returns None
    renamed = client.get_registered_model(new)
    assert (renamed.name, renamed.description, renamed.tags) == (new, "d", {"t": "1"})
    with raises_mlflow(MISSING):
        client.get_registered_model(name)
    with raises_mlflow(MISSING):
        client.get_model_version(name, "1")
    assert client.search_registered_models(filter_string=f"name = '{name}'") == []
    assert client.search_model_versions(f"name = '{name}'") == []
    moved = client.get_model_version(new, "1")
    assert (moved.name, moved.run_id, moved.current_stage) == (new, run_id, "Production")
    assert sorted(m.version for m in client.search_model_versions(f"name = '{new}'")) == ["1", "2", "3"]
    assert client.get_model_version_by_alias(new, "keep").version == "1"
    assert client.get_registered_model(new).aliases == {"keep": "1", "gone": "2"}
    # the old name is free again
    client.create_registered_model(name)
    assert client.get_registered_model(name).latest_versions == []
    client.delete_registered_model(name)

    # deleting a version removes it and its aliases; version numbers are never reused
    client.delete_model_version(new, "2")
    with raises_mlflow(MISSING):
        client.get_model_version(new, "2")
    assert client.get_registered_model(new).aliases == {"keep": "1"}
    with raises_mlflow(INVALID):
        client.get_model_version_by_alias(new, "gone")
    assert sorted(m.version for m in client.search_model_versions(f"name = '{new}'")) == ["1", "3"]
    client.delete_model_version(new, "3")
    mv = client.create_model_version(new, f"runs:/{run_id}/model", run_id=run_id)
    assert mv.version == "4"

    client.delete_registered_model(new)
    with raises_mlflow(MISSING):
        client.get_registered_model(new)
    with raises_mlflow(MISSING):
        client.get_model_version(new, "1")
    with raises_mlflow(MISSING):
        client.get_model_version_by_alias(new, "keep")
    assert client.search_registered_models(filter_string=f"name = '{new}'") == []
    assert client.search_model_versions(f"name = '{new}'") == []
    # a model re-created under a deleted name starts over at version 1
    client.create_registered_model(new)
    assert client.create_model_version(new, f"runs:/{run_id}/model", run_id=run_id).version == "1"
    assert client.get_registered_model(new).aliases == {}


# ------------------------------------------------------- 3. registering an MLflow-3 model id


def test_register_logged_model_id(tracking_uri, client):
    import mlflow

    run_id, info, model, X_val = _logged_model(unique("reg-lm"))
    assert info.model_uri == f"models:/{info.model_id}"
    name = unique("reg-lm")
    mv = mlflow.register_model(info.model_uri, name)
    assert (mv.name, mv.version, mv.source, mv.run_id) == (name, "1", f"models:/{info.model_id}", run_id)
    got = client.get_model_version(name, "1")
    assert (got.source, got.run_id, got.status) == (f"models:/{info.model_id}", run_id, "READY")
    logged = client.get_logged_model(info.model_id)
    links = json.loads(logged.tags["mlflow.modelVersions"])
    # The client appends {"name", "version": "1"}; the reference server records the link
    # itself first, with an int version, so the list holds the same link twice there.
    assert {"name": name, "version": "1"} in links
    assert {(link["name"], str(link["version"])) for link in links} == {(name, "1")}
    # a models:/<id> source resolves to the logged model's own artifact location
    assert client.get_model_version_download_uri(name, "1") == logged.artifact_location

    mv2 = mlflow.register_model(f"models:/{info.model_id}", name)
    assert (mv2.version, mv2.source) == ("2", f"models:/{info.model_id}")
    logged = client.get_logged_model(info.model_id)
    links = json.loads(logged.tags["mlflow.modelVersions"])
    assert {"name": name, "version": "2"} in links
    assert {(link["name"], str(link["version"])) for link in links} == {(name, "1"), (name, "2")}
    assert sorted(m.version for m in client.search_model_versions(f"run_id = '{run_id}'")) == ["1", "2"]

    loaded = mlflow.pyfunc.load_model(f"models:/{name}/1")
    assert np.array_equal(loaded.predict(X_val), model.predict(X_val))
    assert loaded.metadata.model_id == info.model_id
    latest = mlflow.sklearn.load_model(f"models:/{name}/latest")
    assert np.array_equal(latest.predict(X_val), model.predict(X_val))


# ------------------------------------------------------------------------------ 4. errors


def test_client_error_codes(tracking_uri, client):
    name, run_id = _model_with_versions(client, 1)
    missing = unique("reg-missing")

    for alias in ("latest", "LATEST", "v1", "V12"):
        with raises_mlflow(INVALID):
            client.set_registered_model_alias(name, alias, "1")
    with raises_mlflow(INVALID):
        client.transition_model_version_stage(name, "1", "Prod")
    with raises_mlflow(INVALID):
        client.get_latest_versions(name, stages=["Prod"])
    for bad in ("a/b", "a:b", ""):
        with raises_mlflow(INVALID):
            client.create_registered_model(bad)
    with raises_mlflow(INVALID):
        client.rename_registered_model(name, "x/y")
    with raises_mlflow(INVALID):
        client.get_model_version(name, "abc")

    # unknown version
    with raises_mlflow(MISSING):
        client.get_model_version(name, "99")
    with raises_mlflow(MISSING):
        client.update_model_version(name, "99", description="x")
    with raises_mlflow(MISSING):
        client.transition_model_version_stage(name, "99", "Staging")
    with raises_mlflow(MISSING):
        client.delete_model_version(name, "99")
    with raises_mlflow(MISSING):
        client.set_model_version_tag(name, "99", "k", "v")
    with raises_mlflow(MISSING):
        client.set_registered_model_alias(name, "champion", "99")
    with raises_mlflow(MISSING):
        client.get_model_version_download_uri(name, "99")

    # unknown model
    with raises_mlflow(MISSING):
        client.get_registered_model(missing)
    with raises_mlflow(MISSING):
        client.get_model_version(missing, "1")
    with raises_mlflow(MISSING):
        client.update_registered_model(missing, description="x")
    with raises_mlflow(MISSING):
        client.rename_registered_model(missing, unique("reg-new"))
    with raises_mlflow(MISSING):
        client.delete_registered_model(missing)
    with raises_mlflow(MISSING):
        client.set_registered_model_tag(missing, "k", "v")
    with raises_mlflow(MISSING):
        client.get_latest_versions(missing)
    with raises_mlflow(MISSING):
        client.get_model_version_by_alias(missing, "champion")
    with raises_mlflow(MISSING):  # correction 9: a real run, so the model lookup decides
        client.create_model_version(missing, f"runs:/{run_id}/model", run_id=run_id)

    # duplicates
    with raises_mlflow(EXISTS):
        client.create_registered_model(name)
    other, _ = _model_with_versions(client, 0)
    with raises_mlflow(EXISTS):
        client.rename_registered_model(other, name)
    assert client.get_registered_model(other).name == other

    # missing alias: 400 INVALID_PARAMETER_VALUE (correction 7)
    with raises_mlflow(INVALID):
        client.get_model_version_by_alias(name, "nope")
    client.delete_registered_model_alias(name, "nope")  # deleting a missing alias is fine

    # nothing above changed the model
    assert [m.version for m in client.search_model_versions(f"name = '{name}'")] == ["1"]
    assert client.get_registered_model(name).aliases == {}
    assert client.get_model_version(name, "1").current_stage == "None"


def test_register_model_errors(tracking_uri, client):
    import mlflow

    with raises_mlflow(MISSING):  # no such run
        mlflow.register_model("runs:/0123456789abcdef0123456789abcdef/model", unique("reg-none"))
    with raises_mlflow(MISSING):
        mlflow.pyfunc.load_model(f"models:/{unique('reg-none')}/1")
    name, _ = _model_with_versions(client, 1)
    with raises_mlflow(INVALID):
        mlflow.pyfunc.load_model(f"models:/{name}@nope")
    with raises_mlflow():  # no version in that stage (the client raises it itself)
        mlflow.pyfunc.load_model(f"models:/{name}/Staging")


# --------------------------------------------------------------------------- 5. raw REST


def _rest_run(http, base) -> str:
    exp_id = _ok(http.post(api(base, "experiments/create"), json={"name": unique("reg-rest")}))["experiment_id"]
    return _ok(http.post(api(base, "runs/create"), json={"experiment_id": exp_id, "start_time": now_ms()}))[
        "run"]["info"]["run_id"]


def _rest_model(http, base, n: int, run_id: str | None = None) -> tuple[str, str]:
    run_id = run_id or _rest_run(http, base)
    name = unique("reg-rest")
    rm = _ok(http.post(api(base, "registered-models/create"), json={"name": name}))["registered_model"]
    assert rm["name"] == name and "latest_versions" not in rm
    for i in range(n):
        mv = _ok(http.post(api(base, "model-versions/create"),
                           json={"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id}))["model_version"]
        assert mv["version"] == str(i + 1)
    return name, run_id


def _versions(http, base, name) -> list[str]:
    body = _ok(http.get(api(base, "model-versions/search"), params={"filter": f"name = '{name}'"}))
    return sorted(mv["version"] for mv in body.get("model_versions", []))


def test_rest_deletes_carry_json_bodies(http, tracking_uri):
    base = tracking_uri
    name, _ = _rest_model(http, base, 2)
    assert _ok(http.post(api(base, "registered-models/set-tag"), json={"name": name, "key": "k", "value": "v"})) == {}
    assert _ok(http.post(api(base, "model-versions/set-tag"),
                         json={"name": name, "version": "1", "key": "mk", "value": "mv"})) == {}
    assert _ok(http.post(api(base, "registered-models/alias"),
                         json={"name": name, "alias": "best", "version": "2"})) == {}
    rm = _ok(http.get(api(base, "registered-models/get"), params={"name": name}))["registered_model"]
    assert rm["tags"] == [{"key": "k", "value": "v"}]
    assert rm["aliases"] == [{"alias": "best", "version": "2"}]

    assert _ok(http.delete(api(base, "registered-models/delete-tag"), json={"name": name, "key": "k"})) == {}
    assert _ok(http.delete(api(base, "model-versions/delete-tag"),
                           json={"name": name, "version": "1", "key": "mk"})) == {}
    assert _ok(http.delete(api(base, "registered-models/alias"), json={"name": name, "alias": "best"})) == {}
    rm = _ok(http.get(api(base, "registered-models/get"), params={"name": name}))["registered_model"]
    assert "tags" not in rm and "aliases" not in rm
    mv = _ok(http.get(api(base, "model-versions/get"), params={"name": name, "version": "1"}))["model_version"]
    assert "tags" not in mv and "aliases" not in mv
    # deleting what is not there is still 200 (correction 8)
    assert _ok(http.delete(api(base, "registered-models/delete-tag"), json={"name": name, "key": "k"})) == {}
    assert _ok(http.delete(api(base, "model-versions/delete-tag"),
                           json={"name": name, "version": "1", "key": "mk"})) == {}
    assert _ok(http.delete(api(base, "registered-models/alias"), json={"name": name, "alias": "best"})) == {}

    assert _ok(http.delete(api(base, "model-versions/delete"), json={"name": name, "version": "2"})) == {}
    assert_error(http.get(api(base, "model-versions/get"), params={"name": name, "version": "2"}), 404, MISSING)
    assert _versions(http, base, name) == ["1"]
    # the name is read from the body, not from the query string
    assert_error(http.delete(api(base, "registered-models/delete"), params={"name": name}), 400, INVALID,
                 "Missing value for required parameter 'name'")
    assert _ok(http.delete(api(base, "registered-models/delete"), json={"name": name})) == {}
    assert_error(http.get(api(base, "registered-models/get"), params={"name": name}), 404, MISSING,
                 f"Registered Model with name={name} not found")
    assert_error(http.get(api(base, "model-versions/get"), params={"name": name, "version": "1"}), 404, MISSING)


def test_rest_version_string_and_number(http, tracking_uri):
    base = tracking_uri
    name, _ = _rest_model(http, base, 1)
    # query strings are always strings
    mv = _ok(http.get(api(base, "model-versions/get"), params={"name": name, "version": 1}))["model_version"]
    assert mv["version"] == "1" and isinstance(mv["creation_timestamp"], int)
    # a JSON string works everywhere
    ok_calls = [
        ("PATCH", "model-versions/update", {"description": "d"}),
        ("POST", "model-versions/transition-stage", {"stage": "Staging", "archive_existing_versions": False}),
        ("POST", "model-versions/set-tag", {"key": "k", "value": "v"}),
        ("POST", "registered-models/alias", {"alias": "a1"}),
    ]
    for method, path, extra in ok_calls:
        _ok(http.request(method, api(base, path), json={"name": name, "version": "1", **extra}))
    mv = _ok(http.get(api(base, "model-versions/get"), params={"name": name, "version": "1"}))["model_version"]
    assert (mv["description"], mv["current_stage"], mv["tags"], mv["aliases"]) == (
        "d", "Staging", [{"key": "k", "value": "v"}], ["a1"])
    # a JSON number is a type error on the reference: 400 "Invalid value 1 for parameter
    # 'version' supplied: Hint: Value was of type 'int'..." (the string field is validated)
    number_calls = ok_calls + [("DELETE", "model-versions/delete-tag", {"key": "k"}),
                               ("DELETE", "model-versions/delete", {})]
    for method, path, extra in number_calls:
        resp = http.request(method, api(base, path), json={"name": name, "version": 1, **extra})
        body = assert_error(resp, 400, INVALID)
        assert "version" in body["message"], body
    mv = _ok(http.get(api(base, "model-versions/get"), params={"name": name, "version": "1"}))["model_version"]
    assert (mv["description"], mv["current_stage"], mv["tags"]) == ("d", "Staging", [{"key": "k", "value": "v"}])
    assert_error(http.get(api(base, "model-versions/get"), params={"name": name, "version": "one"}), 400, INVALID)


def test_rest_stage_is_case_insensitive(http, tracking_uri):
    base = tracking_uri
    name, _ = _rest_model(http, base, 2)
    for sent, canonical in (("production", "Production"), ("STAGING", "Staging"), ("archived", "Archived"),
                            ("nOnE", "None"), ("Production", "Production")):
        mv = _ok(http.post(api(base, "model-versions/transition-stage"),
                           json={"name": name, "version": "1", "stage": sent, "archive_existing_versions": False}))
        assert mv["model_version"]["current_stage"] == canonical, (sent, mv)
    # archive_existing_versions with a lower-case target stage
    mv = _ok(http.post(api(base, "model-versions/transition-stage"),
                       json={"name": name, "version": "2", "stage": "production", "archive_existing_versions": True}))
    assert mv["model_version"]["current_stage"] == "Production"
    got = _ok(http.get(api(base, "model-versions/get"), params={"name": name, "version": "1"}))
    assert got["model_version"]["current_stage"] == "Archived"
    latest = _ok(http.post(api(base, "registered-models/get-latest-versions"),
                           json={"name": name, "stages": ["PRODUCTION"]}))
    assert [v["version"] for v in latest["model_versions"]] == ["2"]
    assert_error(
        http.post(api(base, "model-versions/transition-stage"),
                  json={"name": name, "version": "1", "stage": "Prod", "archive_existing_versions": False}),
        400, INVALID,
        "Invalid Model Version stage: Prod. Value must be one of None, Staging, Production, Archived.",
    )


def _latest_set(rm_or_body, key):
    return {(v["current_stage"], v["version"]) for v in rm_or_body.get(key, [])}


def test_rest_latest_versions(http, tracking_uri):
    base = tracking_uri
    name, _ = _rest_model(http, base, 5)
    for version, stage in (("1", "Production"), ("2", "Archived"), ("3", "Production"), ("4", "Staging")):
        _ok(http.post(api(base, "model-versions/transition-stage"),
                      json={"name": name, "version": version, "stage": stage, "archive_existing_versions": False}))
    expected = {("Production", "3"), ("Archived", "2"), ("Staging", "4"), ("None", "5")}

    rm = _ok(http.get(api(base, "registered-models/get"), params={"name": name}))["registered_model"]
    assert _latest_set(rm, "latest_versions") == expected
    assert len(rm["latest_versions"]) == 4
    found = _ok(http.get(api(base, "registered-models/search"), params={"filter": f"name = '{name}'"}))
    assert [m["name"] for m in found["registered_models"]] == [name]
    assert _latest_set(found["registered_models"][0], "latest_versions") == expected

    url = api(base, "registered-models/get-latest-versions")
    assert _latest_set(_ok(http.post(url, json={"name": name})), "model_versions") == expected
    assert _latest_set(_ok(http.get(url, params={"name": name})), "model_versions") == expected
    assert _latest_set(_ok(http.post(url, json={"name": name, "stages": []})), "model_versions") == expected
    both = {("Production", "3"), ("Staging", "4")}
    assert _latest_set(_ok(http.post(url, json={"name": name, "stages": ["Staging", "Production"]})),
                       "model_versions") == both
    assert _latest_set(_ok(http.get(url, params={"name": name, "stages": ["Staging", "Production"]})),
                       "model_versions") == both
    assert _latest_set(_ok(http.get(url, params={"name": name, "stages": "none"})), "model_versions") == {("None", "5")}
    assert _ok(http.post(url, json={"name": name, "stages": ["Archived"]}))["model_versions"][0]["version"] == "2"
    # each version carries its full shape
    mv = _ok(http.post(url, json={"name": name, "stages": ["Staging"]}))["model_versions"][0]
    assert {"name", "version", "creation_timestamp", "last_updated_timestamp", "current_stage", "source",
            "run_id", "status"} <= set(mv)
    assert mv["status"] == "READY" and mv["name"] == name
    assert_error(http.post(url, json={"name": unique("reg-none")}), 404, MISSING)
    assert_error(http.post(url, json={"name": name, "stages": ["Prod"]}), 400, INVALID)


def test_rest_error_shapes(http, tracking_uri):
    base = tracking_uri
    name, run_id = _rest_model(http, base, 1)
    missing = unique("reg-none")
    assert_error(http.get(api(base, "registered-models/get"), params={"name": missing}), 404, MISSING,
                 f"Registered Model with name={missing} not found")
    assert_error(http.get(api(base, "model-versions/get"), params={"name": name, "version": "99"}), 404, MISSING,
                 f"Model Version (name={name}, version=99) not found")
    assert_error(http.get(api(base, "model-versions/get"), params={"name": missing, "version": "1"}), 404, MISSING)
    assert_error(http.post(api(base, "registered-models/create"), json={"name": name}), 400, EXISTS,
                 f"Registered Model (name={name}) already exists.")
    assert_error(http.post(api(base, "registered-models/create"), json={"name": "a/b"}), 400, INVALID,
                 "Invalid model name 'a/b'. Names cannot contain '/' or ':'.")
    assert_error(http.post(api(base, "registered-models/create"), json={"name": "a:b"}), 400, INVALID)
    assert_error(http.post(api(base, "registered-models/create"), json={"name": ""}), 400, INVALID,
                 "Missing value for required parameter 'name'")
    assert_error(http.post(api(base, "registered-models/create"), json={}), 400, INVALID,
                 "Missing value for required parameter 'name'")
    assert_error(http.post(api(base, "registered-models/alias"), json={"name": name, "alias": "v1", "version": "1"}),
                 400, INVALID, "Version alias name 'v1' is reserved.")
    assert_error(http.post(api(base, "registered-models/alias"),
                           json={"name": name, "alias": "Latest", "version": "1"}), 400, INVALID)
    assert_error(http.post(api(base, "registered-models/alias"), json={"name": name, "alias": "a b", "version": "1"}),
                 400, INVALID)
    assert_error(http.post(api(base, "registered-models/alias"),
                           json={"name": name, "alias": "x" * 256, "version": "1"}), 400, INVALID)
    assert_error(http.post(api(base, "registered-models/alias"), json={"name": name, "alias": "ok", "version": "7"}),
                 404, MISSING)
    assert_error(http.get(api(base, "registered-models/alias"), params={"name": name, "alias": "nope"}), 400, INVALID,
                 "Registered model alias nope not found.")
    assert_error(http.get(api(base, "registered-models/alias"), params={"name": missing, "alias": "nope"}),
                 404, MISSING)
    assert_error(http.get(api(base, "model-versions/get"), params={"name": name}), 400, INVALID,
                 "Missing value for required parameter 'version'")
    assert_error(http.get(api(base, "registered-models/search"), params={"max_results": 1001}), 400, INVALID)
    assert_error(http.get(api(base, "model-versions/search"), params={"max_results": 200001}), 400, INVALID)
    assert_error(http.get(api(base, "registered-models/search"), params={"page_token": "garbage"}), 400, INVALID)
    assert_error(http.get(api(base, "model-versions/search"), params={"page_token": "garbage"}), 400, INVALID)
    assert_error(http.get(api(base, "registered-models/search"), params={"filter": "foo = 'x'"}), 400, INVALID)
    # an unknown model with a real run: the lookup decides (correction 9)
    assert_error(http.post(api(base, "model-versions/create"),
                           json={"name": missing, "source": f"runs:/{run_id}/model", "run_id": run_id}), 404, MISSING)

    # limits that are fine
    body = _ok(http.get(api(base, "registered-models/search"),
                        params={"max_results": 1000, "filter": f"name = '{name}'"}))
    assert [m["name"] for m in body["registered_models"]] == [name]
    body = _ok(http.get(api(base, "model-versions/search"), params={"filter": f"name = '{name}'"}))
    assert [m["version"] for m in body["model_versions"]] == ["1"]
    # the ajax-api copy serves the registry too
    body = _ok(http.get(f"{base}/ajax-api/2.0/mlflow/registered-models/get", params={"name": name}))
    assert body["registered_model"]["name"] == name


def test_rest_search_pages_with_tokens(http, tracking_uri):
    base = tracking_uri
    run_id = _rest_run(http, base)
    prefix = unique("reg-page")
    names = [f"{prefix}-{i}" for i in range(5)]
    for name in names:
        _ok(http.post(api(base, "registered-models/create"), json={"name": name}))
        _ok(http.post(api(base, "model-versions/create"),
                      json={"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id}))

    def pages(path, key, params):
        seen, token = [], None
        for _ in range(20):
            body = _ok(http.get(api(base, path), params={**params, **({"page_token": token} if token else {})}))
            seen.append([m["name"] for m in body.get(key, [])])
            token = body.get("next_page_token")
            if not token:
                return [p for p in seen if p]
        pytest.fail("no last page")

    flt = f"name LIKE '{prefix}-%'"
    assert pages("registered-models/search", "registered_models",
                 {"filter": flt, "max_results": 2, "order_by": "name DESC"}) == [
        names[4:2:-1], names[2:0:-1], names[:1]]
    assert pages("model-versions/search", "model_versions",
                 {"filter": flt, "max_results": 3, "order_by": ["name ASC", "version_number DESC"]}) == [
        names[:3], names[3:]]


def test_rest_source_validation(http, tracking_uri):
    """Sources the reference refuses too (spec §6): 400 and no version is created."""
    base = tracking_uri
    name, run_id = _rest_model(http, base, 0)
    for source in ("/etc/passwd", "file:///etc/passwd", "http://169.254.169.254/x", "mlflow-artifacts:/../../x",
                   "runs:/0123456789abcdef0123456789abcdef/model"):
        for extra in ({}, {"run_id": run_id}):
            resp = http.post(api(base, "model-versions/create"), json={"name": name, "source": source, **extra})
            assert_error(resp, 400, INVALID)
    assert _versions(http, base, name) == []
    mv = _ok(http.post(api(base, "model-versions/create"),
                       json={"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id}))["model_version"]
    assert mv["version"] == "1"


def test_rest_model_version_get_artifact(http, tracking_uri):
    import mlflow

    run_id, info, _, _ = _logged_model(unique("reg-art"))
    name = unique("reg-art")
    mlflow.register_model(f"runs:/{run_id}/model", name)
    url = f"{tracking_uri}/model-versions/get-artifact"
    resp = http.get(url, params={"name": name, "version": "1", "path": "MLmodel"}, timeout=30)
    assert resp.status_code == 200, resp.text[:500]
    assert "flavors:" in resp.text and "sklearn" in resp.text
    assert info.model_id in resp.text  # MLmodel records its model_id
    resp = http.get(url, params={"name": name, "version": "1", "path": "nope.txt"}, timeout=30)
    assert resp.status_code == 404


# ----------------------------------------------------------------- 6. Quiver-only behaviour


def _refuses_sources(http, base, name, sources, run_id):
    for source in sources:
        for extra in ({}, {"run_id": run_id}):
            resp = http.post(api(base, "model-versions/create"), json={"name": name, "source": source, **extra})
            assert_error(resp, 400, INVALID)
    assert _versions(http, base, name) == []


@pytest.mark.quiver_only
def test_source_security(http, tracking_uri, server_url):
    """Sources outside this namespace's own runs and artifact store are refused (the
    reference accepts `s3://other-bucket/...` and cannot know about namespaces)."""
    from mlflow.tracking import MlflowClient

    base = tracking_uri
    name, run_id = _rest_model(http, base, 0)
    foreign = MlflowClient(tracking_uri=f"{server_url}/ns/{unique('foreign')}")
    foreign_run = foreign.create_run(foreign.create_experiment(unique("foreign"))).info.run_id
    _refuses_sources(http, base, name, [
        "/etc/passwd", "file:///etc/passwd", "http://169.254.169.254/x", "s3://other-bucket/x",
        "mlflow-artifacts:/../../x", f"runs:/{foreign_run}/model",
    ], run_id)
    resp = http.post(api(base, "model-versions/create"),
                     json={"name": name, "source": f"runs:/{foreign_run}/model", "run_id": foreign_run})
    assert_error(resp, 400, INVALID)
    # the namespace's own run is fine
    mv = _ok(http.post(api(base, "model-versions/create"),
                       json={"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id}))["model_version"]
    assert mv["version"] == "1"


def _check_namespace_isolation(uri_a: str, uri_b: str):
    """Two tracking roots, each owning a registered model of the same name."""
    import mlflow
    from mlflow.tracking import MlflowClient

    a, b = MlflowClient(tracking_uri=uri_a), MlflowClient(tracking_uri=uri_b)
    shared, only_a = unique("reg-shared"), unique("reg-only-a")
    owned = {}
    for uri, client, label, depth in ((uri_a, a, "A", 1), (uri_b, b, "B", 8)):
        mlflow.set_tracking_uri(uri)
        run_id, info, model, X_val = _logged_model(unique(f"iso-{label}"), random_state=int(depth), max_depth=depth,
                                                   n_estimators=5)
        mv = mlflow.register_model(f"runs:/{run_id}/model", shared, tags={"owner": label})
        assert mv.version == "1"
        client.set_registered_model_tag(shared, "owner", label)
        client.set_registered_model_alias(shared, "champion", "1")
        owned[label] = (run_id, model, X_val)
    X_val = owned["A"][2]
    assert not np.array_equal(owned["A"][1].predict(X_val), owned["B"][1].predict(X_val))
    a.create_registered_model(only_a)

    for uri, client, label in ((uri_a, a, "A"), (uri_b, b, "B")):
        run_id, model, _ = owned[label]
        assert [m.name for m in client.search_registered_models(filter_string=f"name = '{shared}'")] == [shared]
        assert client.get_registered_model(shared).tags == {"owner": label}
        assert [(m.version, m.run_id) for m in client.search_model_versions(f"name = '{shared}'")] == [("1", run_id)]
        assert client.get_model_version(shared, "1").run_id == run_id
        assert client.get_model_version(shared, "1").tags == {"owner": label}
        assert client.get_model_version_by_alias(shared, "champion").run_id == run_id
        assert [v.run_id for v in client.get_latest_versions(shared)] == [run_id]
        mlflow.set_tracking_uri(uri)
        for model_uri in (f"models:/{shared}/1", f"models:/{shared}@champion", f"models:/{shared}/None"):
            loaded = mlflow.pyfunc.load_model(model_uri)
            assert np.array_equal(loaded.predict(X_val), model.predict(X_val)), (label, model_uri)

    # a model only A has is invisible from B
    assert b.search_registered_models(filter_string=f"name = '{only_a}'") == []
    assert only_a not in {m.name for m in b.search_registered_models(max_results=1000)}
    for call in (lambda: b.get_registered_model(only_a), lambda: b.get_model_version_by_alias(only_a, "x"),
                 lambda: b.delete_registered_model(only_a), lambda: b.set_registered_model_tag(only_a, "k", "v"),
                 lambda: b.get_latest_versions(only_a)):
        with raises_mlflow(MISSING):
            call()
    assert a.get_registered_model(only_a).tags == {}

    # deleting in A leaves B intact
    a.delete_model_version(shared, "1")
    a.delete_registered_model(shared)
    with raises_mlflow(MISSING):
        a.get_registered_model(shared)
    assert b.get_registered_model(shared).aliases == {"champion": "1"}
    assert b.get_model_version(shared, "1").run_id == owned["B"][0]
    mlflow.set_tracking_uri(uri_b)
    loaded = mlflow.pyfunc.load_model(f"models:/{shared}@champion")
    assert np.array_equal(loaded.predict(X_val), owned["B"][1].predict(X_val))


@pytest.mark.quiver_only
def test_namespace_isolation(server_url):
    tag = unique("x").split("-", 1)[1]
    _check_namespace_isolation(f"{server_url}/ns/reg-a-{tag}", f"{server_url}/ns/reg-b-{tag}")
