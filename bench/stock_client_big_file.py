"""A large artifact up and down through Quiver with the stock mlflow client
(multipart upload on), checked by SHA-256. Prints one JSON line.

    python bench/stock_client_big_file.py http://127.0.0.1:5000 5368709120 /tmp/dir
"""

import hashlib
import json
import os
import sys
import time

os.environ["MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD"] = "true"
os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = "0"
os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "600"
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"

import mlflow  # noqa: E402

BLOCK = 64 * 1024 * 1024


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(BLOCK):
            digest.update(chunk)
    return digest.hexdigest()


def main():
    uri, size, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    os.makedirs(work, exist_ok=True)
    source = os.path.join(work, "big.bin")
    block = os.urandom(BLOCK)
    digest = hashlib.sha256()
    with open(source, "wb") as f:
        written = 0
        while written < size:
            piece = block[: min(BLOCK, size - written)]
            # Vary each block so a misplaced part cannot go unnoticed.
            piece = written.to_bytes(8, "little") + piece[8:]
            f.write(piece)
            digest.update(piece)
            written += len(piece)
    expected = digest.hexdigest()

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("bench-big-file")
    with mlflow.start_run() as run:
        t0 = time.monotonic()
        mlflow.log_artifact(source, artifact_path="big")
        upload_s = time.monotonic() - t0
    os.remove(source)
    t0 = time.monotonic()
    local = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id, artifact_path="big/big.bin", dst_path=os.path.join(work, "down")
    )
    download_s = time.monotonic() - t0
    ok = os.path.getsize(local) == size and sha256(local) == expected
    os.remove(local)
    print(json.dumps({"bytes": size, "upload_s": upload_s, "download_s": download_s, "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
