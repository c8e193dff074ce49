//! `quiver gc` and `artifacts.allowed_locations` through the real binary:
//! data made over REST, `quiver gc` run against the same data directory, the
//! artifact files checked on disk.

use std::path::Path;
use std::process::{Command, Output};

use quiver_e2e::{QuiverProcess, quiver_bin};
use serde_json::{Value, json};

struct Rest {
    client: reqwest::Client,
    base: String,
}

impl Rest {
    fn new(server: &QuiverProcess) -> Rest {
        Rest {
            client: reqwest::Client::new(),
            base: server.url(),
        }
    }

    fn api(&self, namespace: &str, path: &str) -> String {
        if namespace == "default" {
            format!("{}/api/2.0/{path}", self.base)
        } else {
            format!("{}/ns/{namespace}/api/2.0/{path}", self.base)
        }
    }

    async fn post(&self, namespace: &str, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(self.api(namespace, &format!("mlflow/{path}")))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn ok(&self, namespace: &str, path: &str, body: Value) -> Value {
        let (status, reply) = self.post(namespace, path, body).await;
        assert_eq!(status, 200, "{path}: {reply}");
        reply
    }

    async fn get(&self, namespace: &str, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(self.api(namespace, &format!("mlflow/{path}")))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn status(&self, namespace: &str, path: &str) -> u16 {
        self.get(namespace, path).await.0
    }

    async fn experiment(&self, namespace: &str, name: &str) -> String {
        let reply = self
            .ok(namespace, "experiments/create", json!({"name": name}))
            .await;
        reply["experiment_id"].as_str().unwrap().to_string()
    }

    /// Creates a run; returns (run id, artifact URI).
    async fn run(&self, namespace: &str, experiment_id: &str) -> (String, String) {
        let reply = self
            .ok(
                namespace,
                "runs/create",
                json!({"experiment_id": experiment_id}),
            )
            .await;
        let info = &reply["run"]["info"];
        (
            info["run_id"].as_str().unwrap().to_string(),
            info["artifact_uri"].as_str().unwrap().to_string(),
        )
    }

    /// Uploads one file through the artifact proxy under a proxied URI;
    /// returns its path below the namespace.
    async fn upload(&self, namespace: &str, uri: &str, file: &str) -> String {
        let path = format!("{}/{file}", uri.strip_prefix("mlflow-artifacts:/").unwrap());
        let response = self
            .client
            .put(self.api(namespace, &format!("mlflow-artifacts/artifacts/{path}")))
            .body("data")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "upload {path}");
        path
    }

    async fn run_status(&self, namespace: &str, run_id: &str) -> u16 {
        self.status(namespace, &format!("runs/get?run_id={run_id}"))
            .await
    }

    async fn experiment_status(&self, namespace: &str, experiment_id: &str) -> u16 {
        self.status(
            namespace,
            &format!("experiments/get?experiment_id={experiment_id}"),
        )
        .await
    }
}

fn gc(data_dir: &Path, config: &Path, args: &[&str]) -> Output {
    Command::new(quiver_bin())
        .arg("gc")
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn gc_ok(data_dir: &Path, config: &Path, args: &[&str]) -> String {
    let output = gc(data_dir, config, args);
    assert!(
        output.status.success(),
        "quiver gc {args:?} failed: {}\n{}",
        stdout(&output),
        String::from_utf8_lossy(&output.stderr)
    );
    stdout(&output)
}

fn gc_refused(data_dir: &Path, config: &Path, args: &[&str], reason: &str) {
    let output = gc(data_dir, config, args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "quiver gc {args:?} should fail");
    assert!(stderr.contains(reason), "quiver gc {args:?}: {stderr}");
}

#[tokio::test]
async fn gc_removes_old_deleted_runs_and_experiments_with_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("quiver.toml");
    std::fs::write(
        &config,
        "[artifacts]\nallowed_locations = [\"s3://elsewhere/ml\"]\n",
    )
    .unwrap();
    let server = QuiverProcess::start(
        &["--services", "all", "--config", config.to_str().unwrap()],
        &data,
        true,
    );
    let rest = Rest::new(&server);
    let files = data.join("artifacts");

    // default: experiment 1 goes entirely; in 2 one run goes and one stays;
    // 3 keeps its files elsewhere; 10 must survive the purge of "1".
    let doomed = rest.experiment("default", "gc-doomed").await;
    let keep = rest.experiment("default", "gc-keep").await;
    let elsewhere = rest
        .ok(
            "default",
            "experiments/create",
            json!({"name": "gc-s3", "artifact_location": "s3://elsewhere/ml/x"}),
        )
        .await["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    for filler in 4..10 {
        rest.experiment("default", &format!("gc-fill-{filler}"))
            .await;
    }
    let ten = rest.experiment("default", "gc-ten").await;
    assert_eq!(
        (doomed.as_str(), keep.as_str(), ten.as_str()),
        ("1", "2", "10")
    );

    let mut gone_files = Vec::new();
    let mut kept_files = Vec::new();
    let mut gone_runs = Vec::new();
    for _ in 0..2 {
        let (run, uri) = rest.run("default", &doomed).await;
        let file = rest.upload("default", &uri, "model/f.bin").await;
        gone_files.push(format!("default/{file}"));
        gone_runs.push(run);
    }
    let model = rest
        .ok(
            "default",
            "logged-models",
            json!({"experiment_id": doomed, "name": "model"}),
        )
        .await;
    let model_id = model["model"]["info"]["model_id"]
        .as_str()
        .unwrap()
        .to_string();
    let model_uri = model["model"]["info"]["artifact_uri"].as_str().unwrap();
    let file = rest.upload("default", model_uri, "MLmodel").await;
    gone_files.push(format!("default/{file}"));
    rest.ok(
        "default",
        "experiments/delete",
        json!({"experiment_id": doomed}),
    )
    .await;

    let (deleted_in_keep, uri) = rest.run("default", &keep).await;
    gone_files.push(format!(
        "default/{}",
        rest.upload("default", &uri, "f.txt").await
    ));
    let (live_in_keep, uri) = rest.run("default", &keep).await;
    kept_files.push(format!(
        "default/{}",
        rest.upload("default", &uri, "f.txt").await
    ));
    let (live_in_ten, uri) = rest.run("default", &ten).await;
    kept_files.push(format!(
        "default/{}",
        rest.upload("default", &uri, "f.txt").await
    ));
    let (deleted_in_default, uri) = rest.run("default", "0").await;
    gone_files.push(format!(
        "default/{}",
        rest.upload("default", &uri, "f.txt").await
    ));
    let (deleted_elsewhere, uri) = rest.run("default", &elsewhere).await;
    assert!(uri.starts_with("s3://elsewhere/ml/x/"), "{uri}");
    for run in [&deleted_in_keep, &deleted_in_default, &deleted_elsewhere] {
        rest.ok("default", "runs/delete", json!({"run_id": run}))
            .await;
        gone_runs.push(run.to_string());
    }

    // team-b reuses experiment id 1: a gc of `default` must not touch it.
    let team_b = rest.experiment("team-b", "gc-doomed").await;
    assert_eq!(team_b, "1");
    let (team_b_run, uri) = rest.run("team-b", &team_b).await;
    let team_b_file = format!("team-b/{}", rest.upload("team-b", &uri, "f.txt").await);
    rest.ok(
        "team-b",
        "experiments/delete",
        json!({"experiment_id": team_b}),
    )
    .await;
    // team-c deletes its default experiment: only its runs may go.
    let (team_c_run, uri) = rest.run("team-c", "0").await;
    let team_c_file = format!("team-c/{}", rest.upload("team-c", &uri, "f.txt").await);
    rest.ok(
        "team-c",
        "experiments/delete",
        json!({"experiment_id": "0"}),
    )
    .await;

    let all_files: Vec<&String> = gone_files
        .iter()
        .chain(&kept_files)
        .chain([&team_b_file, &team_c_file])
        .collect();
    let assert_untouched = |when: &str| {
        for file in &all_files {
            assert!(files.join(file).is_file(), "{when}: {file} is missing");
        }
    };
    assert_untouched("after setup");

    // Everything was deleted just now: a day's threshold removes nothing.
    let out = gc_ok(&data, &config, &["--older-than", "1d"]);
    assert!(
        out.contains("removed 0 runs, 0 experiments, 0 logged models, 0 artifact objects"),
        "{out}"
    );
    assert_untouched("after --older-than 1d");
    assert_eq!(rest.run_status("default", &deleted_in_keep).await, 200);

    // A dry run reports and removes nothing.
    let out = gc_ok(
        &data,
        &config,
        &["--older-than", "0s", "--namespace", "default", "--dry-run"],
    );
    assert!(
        out.contains("would remove 5 runs, 1 experiments, 1 logged models, 5 artifact objects"),
        "{out}"
    );
    assert_untouched("after --dry-run");
    assert_eq!(rest.experiment_status("default", &doomed).await, 200);

    // Explicit ids that are not deleted (or are ambiguous) refuse everything.
    let both = format!("{deleted_in_keep},{live_in_keep}");
    gc_refused(
        &data,
        &config,
        &["--older-than", "0s", "--run-ids", &both],
        "is not deleted",
    );
    gc_refused(
        &data,
        &config,
        &[
            "--older-than",
            "0s",
            "--namespace",
            "default",
            "--experiment-ids",
            &keep,
        ],
        "is not deleted",
    );
    gc_refused(
        &data,
        &config,
        &[
            "--older-than",
            "0s",
            "--namespace",
            "default",
            "--experiment-ids",
            "0",
        ],
        "default experiment",
    );
    gc_refused(
        &data,
        &config,
        &["--older-than", "0s", "--experiment-ids", &doomed],
        "--namespace",
    );
    gc_refused(
        &data,
        &config,
        &["--older-than", "soon"],
        "invalid --older-than",
    );
    assert_untouched("after refused runs");
    assert_eq!(rest.run_status("default", &deleted_in_keep).await, 200);

    let out = gc_ok(
        &data,
        &config,
        &["--older-than", "0s", "--namespace", "default"],
    );
    assert!(
        out.contains(
            "removed 5 runs, 1 experiments, 1 logged models, 5 artifact objects \
             (1 artifact locations skipped, 0 kept for registered model versions, 0 errors)"
        ),
        "{out}"
    );
    assert!(
        out.contains(&format!("skipped: default: run {deleted_elsewhere}")),
        "{out}"
    );
    for run in &gone_runs {
        assert_eq!(rest.run_status("default", run).await, 404, "run {run}");
    }
    assert_eq!(rest.experiment_status("default", &doomed).await, 404);
    let model_path = format!("logged-models/{model_id}");
    assert_eq!(rest.status("default", &model_path).await, 404);
    for file in &gone_files {
        assert!(!files.join(file).exists(), "{file} survived");
    }
    assert!(
        !files.join("default/1").exists(),
        "experiment 1's directory is gone"
    );
    for file in kept_files.iter().chain([&team_b_file, &team_c_file]) {
        assert!(files.join(file).is_file(), "{file} was removed");
    }
    for run in [&live_in_keep, &live_in_ten] {
        assert_eq!(rest.run_status("default", run).await, 200);
    }
    assert_eq!(rest.experiment_status("default", "0").await, 200);
    assert_eq!(rest.experiment_status("default", &keep).await, 200);
    assert_eq!(rest.run_status("team-b", &team_b_run).await, 200);
    assert_eq!(rest.experiment_status("team-b", &team_b).await, 200);

    // Every namespace: team-b's experiment goes, team-c's default experiment stays.
    let out = gc_ok(&data, &config, &["--older-than", "0s"]);
    assert!(
        out.contains("removed 2 runs, 1 experiments, 0 logged models, 2 artifact objects"),
        "{out}"
    );
    assert!(
        out.contains("team-c: the default experiment 0 is deleted but is never removed"),
        "{out}"
    );
    assert_eq!(rest.experiment_status("team-b", &team_b).await, 404);
    assert_eq!(rest.run_status("team-b", &team_b_run).await, 404);
    assert!(!files.join("team-b/1").exists());
    assert_eq!(rest.run_status("team-c", &team_c_run).await, 404);
    assert!(!files.join(&team_c_file).exists());
    assert_eq!(rest.experiment_status("team-c", "0").await, 200);
    // team-c still works.
    rest.experiment("team-c", "after-gc").await;
    for file in &kept_files {
        assert!(files.join(file).is_file(), "{file} was removed");
    }

    // Idempotent.
    let out = gc_ok(&data, &config, &["--older-than", "0s"]);
    assert!(out.contains("removed 0 runs, 0 experiments"), "{out}");
}

/// `artifacts.allowed_locations` through the real binary: a client-chosen
/// location is refused by default and accepted under an allowed prefix.
#[tokio::test]
async fn allowed_artifact_locations_through_rest() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = QuiverProcess::start(&["--services", "all"], &data, true);
    let rest = Rest::new(&server);
    let (status, body) = rest
        .post(
            "default",
            "experiments/create",
            json!({"name": "custom", "artifact_location": "s3://bucket/team/x"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("artifacts.allowed_locations"), "{message}");
    let by_name = "experiments/get-by-name?experiment_name=custom";
    assert_eq!(
        rest.status("default", by_name).await,
        404,
        "no experiment is created"
    );
    drop(server);

    let config = dir.path().join("quiver.toml");
    std::fs::write(
        &config,
        "[artifacts]\nallowed_locations = [\"s3://bucket/team\"]\n",
    )
    .unwrap();
    let server = QuiverProcess::start(
        &["--services", "all", "--config", config.to_str().unwrap()],
        &data,
        true,
    );
    let rest = Rest::new(&server);
    for location in [
        "s3://bucket/team-evil/x",
        "s3://bucket/team/../other",
        "s3://bucket/team/%2e%2e/other",
        "file:///etc",
        "/etc",
        "mlflow-artifacts:/5",
    ] {
        let (status, body) = rest
            .post(
                "default",
                "experiments/create",
                json!({"name": "custom", "artifact_location": location}),
            )
            .await;
        assert_eq!(status, 400, "{location}: {body}");
        assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
    }
    assert_eq!(rest.status("default", by_name).await, 404);
    let id = rest
        .ok(
            "default",
            "experiments/create",
            json!({"name": "custom", "artifact_location": "S3://bucket/team/x/"}),
        )
        .await["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, experiment) = rest
        .get("default", &format!("experiments/get?experiment_id={id}"))
        .await;
    assert_eq!(
        experiment["experiment"]["artifact_location"],
        "s3://bucket/team/x"
    );
    let (_, uri) = rest.run("default", &id).await;
    assert!(
        uri.starts_with("s3://bucket/team/x/") && uri.ends_with("/artifacts"),
        "{uri}"
    );
    // Without a location the server's own proxied URI is used, as before.
    let plain = rest.experiment("default", "plain").await;
    let (_, experiment) = rest
        .get("default", &format!("experiments/get?experiment_id={plain}"))
        .await;
    assert_eq!(
        experiment["experiment"]["artifact_location"],
        format!("mlflow-artifacts:/{plain}")
    );
}

/// A deleted run whose model is registered keeps its rows and files until
/// the version is deleted: gc never breaks `models:/name/1`.
#[tokio::test]
async fn gc_keeps_what_a_registered_model_version_is_served_from() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("quiver.toml");
    std::fs::write(&config, "").unwrap();
    let server = QuiverProcess::start(&["--services", "all"], &data, true);
    let rest = Rest::new(&server);
    let files = data.join("artifacts");
    let experiment = rest.experiment("default", "gc-registered").await;
    let (run_id, uri) = rest.run("default", &experiment).await;
    let model_file = rest.upload("default", &uri, "model/MLmodel").await;
    rest.ok(
        "default",
        "registered-models/create",
        json!({"name": "churn"}),
    )
    .await;
    rest.ok(
        "default",
        "model-versions/create",
        json!({"name": "churn", "source": format!("runs:/{run_id}/model"), "run_id": run_id}),
    )
    .await;
    rest.ok("default", "runs/delete", json!({"run_id": run_id}))
        .await;

    let out = gc_ok(&data, &config, &["--older-than", "0s"]);
    assert!(out.contains("registered model version churn/1"), "{out}");
    assert!(files.join("default").join(&model_file).exists(), "{out}");
    assert_eq!(rest.run_status("default", &run_id).await, 200);

    let response = reqwest::Client::new()
        .delete(rest.api("default", "mlflow/model-versions/delete"))
        .json(&json!({"name": "churn", "version": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let out = gc_ok(&data, &config, &["--older-than", "0s"]);
    assert!(!files.join("default").join(&model_file).exists(), "{out}");
    assert_eq!(rest.run_status("default", &run_id).await, 404);
}
