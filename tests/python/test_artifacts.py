"""Artifacts through Quiver's proxy with the stock client: log_artifact(s), log_text,
log_dict, log_figure, list_artifacts, download_artifacts, sklearn log_model / load_model,
autolog, a 1 GB multipart round trip, and the same flows with the artifact root on S3."""

from __future__ import annotations

import hashlib
import os
import socket
import sys

import pytest
import requests

from conftest import REFERENCE_MODE, _quiver_bin, _Server, _wait_healthy
from helpers import unique


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(8 * 1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def _tree(root: str) -> dict[str, bytes]:
    files = {}
    for dirpath, _, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, root)] = f.read()
    return files


def _log_and_check_files(client, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mlflow

    mlflow.set_experiment(unique("artifacts"))
    src = tmp_path / "src"
    (src / "tree" / "sub").mkdir(parents=True)
    (src / "notes.txt").write_text("hello artifacts")
    (src / "tree" / "a.bin").write_bytes(os.urandom(300_000))
    (src / "tree" / "sub" / "b.txt").write_text("b")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(src / "notes.txt"))
        mlflow.log_artifact(str(src / "notes.txt"), artifact_path="sub/dir")
        mlflow.log_artifacts(str(src / "tree"), artifact_path="tree")
        mlflow.log_text("some text", "texts/t.txt")
        mlflow.log_dict({"a": 1, "b": [1, 2]}, "d.json")
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3], [3, 1, 2])
        mlflow.log_figure(fig, "plots/fig.png")
        plt.close(fig)
    run_id = run.info.run_id

    top = {f.path: (f.is_dir, f.file_size) for f in client.list_artifacts(run_id)}
    assert top["notes.txt"] == (False, len("hello artifacts"))
    for directory in ("sub", "tree", "texts", "plots"):
        assert top[directory][0] is True, top
    nested = {f.path: (f.is_dir, f.file_size) for f in client.list_artifacts(run_id, "tree")}
    assert nested == {"tree/a.bin": (False, 300_000), "tree/sub": (True, None)}, nested
    assert [f.path for f in client.list_artifacts(run_id, "sub/dir")] == ["sub/dir/notes.txt"]

    out = mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "out"))
    files = _tree(out)
    assert files["notes.txt"] == b"hello artifacts"
    assert files["sub/dir/notes.txt"] == b"hello artifacts"
    assert files["tree/a.bin"] == (src / "tree" / "a.bin").read_bytes()
    assert files["tree/sub/b.txt"] == b"b"
    assert files["texts/t.txt"] == b"some text"
    assert mlflow.artifacts.load_dict(f"runs:/{run_id}/d.json") == {"a": 1, "b": [1, 2]}
    assert files["plots/fig.png"].startswith(b"\x89PNG")
    return run_id


def test_log_list_download(tracking_uri, client, tmp_path):
    _log_and_check_files(client, tmp_path)


def _train():
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    X, y = make_classification(n_samples=200, n_features=6, random_state=0)
    model = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(X, y)
    return model, X


def test_sklearn_log_model_and_load(tracking_uri, client):
    import mlflow
    import numpy as np

    mlflow.set_experiment(unique("models"))
    model, X = _train()
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle")
    expected = model.predict(X)
    by_run = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert np.array_equal(by_run.predict(X), expected)
    by_id = mlflow.sklearn.load_model(f"models:/{info.model_id}")
    assert np.array_equal(by_id.predict(X), expected)
    logged = mlflow.get_logged_model(info.model_id)
    assert logged.status.to_proto() == 2 or str(logged.status).endswith("READY")


def test_autolog(tracking_uri, client):
    import mlflow
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    mlflow.set_experiment(unique("autolog"))
    X, y = make_classification(n_samples=100, n_features=4, random_state=1)
    mlflow.sklearn.autolog()
    try:
        with mlflow.start_run() as run:
            LogisticRegression(max_iter=200).fit(X, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    got = client.get_run(run.info.run_id)
    assert got.data.params["max_iter"] == "200"
    assert 0.0 <= got.data.metrics["training_accuracy_score"] <= 1.0
    assert got.inputs.dataset_inputs, "autolog logs the training dataset"
    contexts = {t.value for d in got.inputs.dataset_inputs for t in d.tags if t.key == "mlflow.data.context"}
    assert "train" in contexts or "training" in contexts, contexts
    models = client.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run.info.run_id}'",
    )
    assert len(models) == 1
    loaded = mlflow.pyfunc.load_model(f"models:/{models[0].model_id}")
    assert len(loaded.predict(X)) == len(X)


def _big_file(path, size: int):
    block = os.urandom(4 * 1024 * 1024)
    with open(path, "wb") as f:
        written = 0
        counter = 0
        while written < size:
            chunk = counter.to_bytes(8, "little") + block[8:]
            chunk = chunk[: size - written]
            f.write(chunk)
            written += len(chunk)
            counter += 1


def _round_trip_large(tmp_path, size: int, monkeypatch, min_multipart: int | None = None):
    import mlflow

    if min_multipart is not None:
        monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(min_multipart))
        monkeypatch.setenv("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * 1024 * 1024))
    mlflow.set_experiment(unique("large"))
    src = tmp_path / "big.bin"
    _big_file(src, size)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(src), artifact_path="data")
    out = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="data/big.bin", dst_path=str(tmp_path / "dl")
    )
    assert os.path.getsize(out) == size
    assert _sha256(out) == _sha256(src)
    os.remove(src)
    os.remove(out)


@pytest.mark.quiver_only
@pytest.mark.slow
def test_one_gigabyte_multipart_round_trip(server_url, tmp_path, monkeypatch):
    import mlflow

    # Once, at the plain root: >= 500 MiB, so the stock client uses multipart
    # upload (server-info says it may), 10 MiB parts through the proxy.
    mlflow.set_tracking_uri(server_url)
    _round_trip_large(tmp_path, 1024 * 1024 * 1024, monkeypatch)


@pytest.mark.quiver_only
def test_hostile_paths_over_rest(tracking_uri, http):
    base = f"{tracking_uri}/api/2.0/mlflow-artifacts/artifacts"
    for hostile in ["..%2f..%2fetc%2fpasswd", "%252e%252e%252f%252e%252e%252fetc%252fpasswd", "a%5c..%5cb", "%2fetc%2fpasswd"]:
        for method in ("GET", "PUT", "DELETE"):
            resp = http.request(method, f"{base}/{hostile}", data=b"x" if method == "PUT" else None)
            assert resp.status_code == 400, (method, hostile, resp.status_code, resp.text)
            assert resp.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        resp = http.get(base, params={"path": hostile.replace("%2f", "/")})
        assert resp.status_code == 400


@pytest.mark.quiver_only  # the reference's local artifact store answers 501 here
def test_multipart_download_through_presigned_ranges(tracking_uri, http, client, tmp_path, monkeypatch):
    """server-info advertises multipart downloads; `presigned/<path>` answers a URL
    on this server (same namespace) plus the size, and the stock client then
    downloads in parallel ranged GETs, byte-exact."""
    import mlflow

    info = http.get(f"{tracking_uri}/api/3.0/mlflow/server-info", timeout=10).json()
    assert info["multipart_downloads_enabled"] is True
    assert info["multipart_uploads_enabled"] is True
    data = os.urandom(3 * 1024 * 1024 + 7)
    source = tmp_path / "blob.bin"
    source.write_bytes(data)
    mlflow.set_experiment(unique("mpd"))
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(source))
    root = run.info.artifact_uri.removeprefix("mlflow-artifacts:/")
    presigned = http.get(
        f"{tracking_uri}/api/2.0/mlflow-artifacts/presigned/{root}/blob.bin", timeout=10
    )
    assert presigned.status_code == 200, presigned.text
    body = presigned.json()
    assert body["file_size"] == len(data)
    assert body["url"].startswith(tracking_uri), body["url"]
    ranged = http.get(body["url"], headers={"Range": "bytes=5-9"}, timeout=10)
    assert ranged.status_code == 206
    assert ranged.content == data[5:10]
    missing = http.get(f"{tracking_uri}/api/2.0/mlflow-artifacts/presigned/{root}/nope", timeout=10)
    assert missing.status_code == 404
    hostile = http.get(f"{tracking_uri}/api/2.0/mlflow-artifacts/presigned/..%2f..%2fetc%2fpasswd", timeout=10)
    assert hostile.status_code == 400
    # Small chunks force several parallel ranges through the client's multipart path.
    monkeypatch.setenv("MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE", str(1024 * 1024))
    local = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="blob.bin", dst_path=str(tmp_path / "down")
    )
    assert open(local, "rb").read() == data


# --- the same flows with Quiver's artifact root on S3 (moto) ------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server_url(tmp_path_factory):
    if REFERENCE_MODE:
        pytest.skip("Quiver-only: artifact root on S3")
    endpoint = os.environ.get("QUIVER_TEST_S3_ENDPOINT")
    if not endpoint:
        pytest.fail("QUIVER_TEST_S3_ENDPOINT is not set (make test runs scripts/with-s3.sh)")
    bucket = unique("bucket")
    assert requests.put(f"{endpoint}/{bucket}", timeout=30).status_code == 200
    workdir = tmp_path_factory.mktemp("s3server")
    port = _free_port()
    env = dict(os.environ)
    env.update(
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        QUIVER__ARTIFACTS__OPTIONS__AWS_ENDPOINT=endpoint,
        QUIVER__ARTIFACTS__OPTIONS__AWS_ALLOW_HTTP="true",
        QUIVER__ARTIFACTS__OPTIONS__AWS_REGION="us-east-1",
        QUIVER__ARTIFACTS__DIRECT_DOWNLOADS="true",
    )
    argv = [
        _quiver_bin(), "run", "--services", "all",
        "--data-dir", str(workdir / "data"),
        "--http-addr", f"127.0.0.1:{port}",
        "--grpc-addr", f"127.0.0.1:{_free_port()}",
        "--artifacts-root", f"s3://{bucket}/quiver",
    ]
    server = _Server(argv, workdir / "server.log", cwd=workdir, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(server, url, 60)
        yield url, endpoint, bucket
    finally:
        server.stop()
        if os.environ.get("QUIVER_TEST_SHOW_LOG"):
            print(server.log_text(), file=sys.stderr)


def test_s3_root_files_models_and_multipart(s3_server_url, tmp_path, monkeypatch):
    import mlflow
    import numpy as np
    from mlflow import MlflowClient

    url, endpoint, bucket = s3_server_url
    mlflow.set_tracking_uri(url)
    client = MlflowClient(tracking_uri=url)
    run_id = _log_and_check_files(client, tmp_path)
    # With artifacts.direct_downloads, multipart downloads read straight from the
    # bucket through a presigned URL (the files above were downloaded that way).
    root = client.get_run(run_id).info.artifact_uri.removeprefix("mlflow-artifacts:/")
    listed = requests.get(f"{url}/api/2.0/mlflow-artifacts/artifacts", params={"path": root}, timeout=30).json()
    first = next(f["path"] for f in listed["files"] if not f["is_dir"])
    presigned = requests.get(f"{url}/api/2.0/mlflow-artifacts/presigned/{root}/{first}", timeout=30).json()
    assert presigned["url"].startswith(f"{endpoint}/{bucket}/quiver/default/"), presigned
    assert "X-Amz-Signature=" in presigned["url"]
    direct = requests.get(presigned["url"], timeout=30)
    assert direct.status_code == 200 and len(direct.content) == presigned["file_size"]
    # The objects really are in the bucket, under the namespace prefix.
    listing = requests.get(f"{endpoint}/{bucket}", params={"list-type": "2", "prefix": "quiver/default/"}, timeout=30)
    assert run_id in listing.text
    model, X = _train()
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle")
    assert np.array_equal(mlflow.sklearn.load_model(f"models:/{info.model_id}").predict(X), model.predict(X))
    # Multipart on S3: lower the client's threshold so a 64 MiB file goes in parts.
    _round_trip_large(tmp_path, 64 * 1024 * 1024, monkeypatch, min_multipart=16 * 1024 * 1024)


@pytest.mark.quiver_only
@pytest.mark.slow
def test_s3_root_one_gigabyte_multipart_round_trip(s3_server_url, tmp_path, monkeypatch):
    """The 1 GiB flow with the artifact root on S3 (moto): multipart upload through
    the proxy into the bucket, multipart download straight from the bucket through
    presigned ranged GETs (artifacts.direct_downloads), SHA-256 checked."""
    import mlflow

    url, _, _ = s3_server_url
    mlflow.set_tracking_uri(url)
    _round_trip_large(tmp_path, 1024 * 1024 * 1024, monkeypatch)
