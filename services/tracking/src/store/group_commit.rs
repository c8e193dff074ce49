//! Group commit on Postgres for the small writes clients send by the
//! thousand: `runs/create`, `log-metric` and metric-only log-batches of a few
//! points. They are taken off a queue by a few worker tasks and written
//! together: one experiment lookup, one run lookup, one INSERT per table and
//! one commit for everything queued, instead of a transaction each. Every
//! caller is answered only after the commit that holds its write, so a write
//! is acknowledged only once it is durable, exactly as before.
//!
//! A write that cannot go in (unknown run or experiment, not active, another
//! namespace) gets its own error and does not touch the others; if the shared
//! transaction itself fails, every write of it is retried alone, so one bad
//! write never fails another.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use quiver_common::db::{Database, StatisticsRefresher};
use quiver_common::{ApiError, Namespace};
use tokio::sync::{Mutex, mpsc, oneshot};

use quiver_proto::common::v1::KeyValue;
use quiver_proto::tracking::v1 as pb;

use super::sql::{
    append_metrics, check_active, check_experiment_active, create_run_alone, experiment_not_found,
    new_run_message, pg_array, pg_text, run_artifact_uri, run_not_found, unique_tags, write_batch,
};
use super::{Batch, MetricPoint, NewRun};
use quiver_common::sql::db_error;

/// Largest write that is coalesced (bigger batches gain nothing from it).
const MAX_POINTS_PER_WRITE: usize = 100;
/// Most writes committed together.
const MAX_WRITES_PER_COMMIT: usize = 256;
/// Transactions in flight at once (each worker commits one batch at a time
/// while the next worker gathers the following one).
const WORKERS: usize = 4;

/// One queued write and where its answer goes.
enum Job {
    Metrics {
        namespace: Namespace,
        run_id: String,
        points: Vec<MetricPoint>,
        done: oneshot::Sender<Result<(), ApiError>>,
    },
    CreateRun {
        namespace: Namespace,
        run: NewRun,
        done: oneshot::Sender<Result<pb::Run, ApiError>>,
    },
}

impl Job {
    fn points(&self) -> usize {
        match self {
            Job::Metrics { points, .. } => points.len(),
            Job::CreateRun { .. } => 1,
        }
    }
}

/// The queue of a store's small metric writes; its workers start with the
/// first write and stop when the last clone of the store is dropped.
#[derive(Debug, Clone, Default)]
pub(crate) struct GroupCommit {
    queue: Arc<OnceLock<mpsc::UnboundedSender<Job>>>,
}

impl GroupCommit {
    /// Whether `batch` is a small metric-only write (logged-model metrics,
    /// which also go to another table, take the ordinary path).
    pub(crate) fn takes(batch: &Batch) -> bool {
        batch.params.is_empty()
            && batch.tags.is_empty()
            && !batch.metrics.is_empty()
            && batch.metrics.len() <= MAX_POINTS_PER_WRITE
            && batch.metrics.iter().all(|m| m.model_id.is_none())
    }

    /// Queues the points and waits for the commit that holds them.
    pub(crate) async fn submit(
        &self,
        db: &Database,
        statistics: &StatisticsRefresher,
        namespace: &Namespace,
        run_id: &str,
        points: Vec<MetricPoint>,
    ) -> Result<(), ApiError> {
        let (done, answer) = oneshot::channel();
        self.enqueue(
            db,
            statistics,
            Job::Metrics {
                namespace: namespace.clone(),
                run_id: run_id.to_string(),
                points,
                done,
            },
        )?;
        answer
            .await
            .map_err(|_| ApiError::internal("the group-commit writer has stopped"))?
    }

    /// Queues a run creation and waits for the commit that holds it.
    pub(crate) async fn create_run(
        &self,
        db: &Database,
        statistics: &StatisticsRefresher,
        namespace: &Namespace,
        run: NewRun,
    ) -> Result<pb::Run, ApiError> {
        let (done, answer) = oneshot::channel();
        self.enqueue(
            db,
            statistics,
            Job::CreateRun {
                namespace: namespace.clone(),
                run,
                done,
            },
        )?;
        answer
            .await
            .map_err(|_| ApiError::internal("the group-commit writer has stopped"))?
    }

    fn enqueue(
        &self,
        db: &Database,
        statistics: &StatisticsRefresher,
        job: Job,
    ) -> Result<(), ApiError> {
        let queue = self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            let receiver = Arc::new(Mutex::new(receiver));
            for _ in 0..WORKERS {
                tokio::spawn(worker(receiver.clone(), db.clone(), statistics.clone()));
            }
            sender
        });
        queue
            .send(job)
            .map_err(|_| ApiError::internal("the group-commit writer has stopped"))
    }
}

async fn worker(
    queue: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>,
    db: Database,
    statistics: StatisticsRefresher,
) {
    loop {
        let mut writes = Vec::new();
        {
            let mut queue = queue.lock().await;
            match queue.recv().await {
                Some(write) => writes.push(write),
                None => return,
            }
            while writes.len() < MAX_WRITES_PER_COMMIT {
                match queue.try_recv() {
                    Ok(write) => writes.push(write),
                    Err(_) => break,
                }
            }
        }
        commit(&db, &statistics, writes).await;
    }
}

/// The answer of one job of a shared commit.
enum Outcome {
    Metrics(Result<(), ApiError>),
    CreateRun(Result<Box<pb::Run>, ApiError>),
}

async fn commit(db: &Database, statistics: &StatisticsRefresher, jobs: Vec<Job>) {
    match commit_together(db, &jobs).await {
        Ok(outcomes) => {
            let written: usize = jobs
                .iter()
                .zip(&outcomes)
                .filter(|(_, outcome)| {
                    matches!(
                        outcome,
                        Outcome::Metrics(Ok(())) | Outcome::CreateRun(Ok(_))
                    )
                })
                .map(|(job, _)| job.points())
                .sum();
            statistics.note_writes(db, u64::try_from(written).unwrap_or(u64::MAX));
            for (job, outcome) in jobs.into_iter().zip(outcomes) {
                match (job, outcome) {
                    (Job::Metrics { done, .. }, Outcome::Metrics(result)) => {
                        let _ = done.send(result);
                    }
                    (Job::CreateRun { done, .. }, Outcome::CreateRun(result)) => {
                        let _ = done.send(result.map(|run| *run));
                    }
                    // commit_together answers each job in kind.
                    _ => {}
                }
            }
        }
        Err(error) => {
            tracing::debug!(%error, jobs = jobs.len(), "group commit failed; writing one by one");
            for job in jobs {
                match job {
                    Job::Metrics {
                        namespace,
                        run_id,
                        points,
                        done,
                    } => {
                        let batch = Batch {
                            metrics: points,
                            ..Batch::default()
                        };
                        let outcome = write_batch(db, &namespace, &run_id, &batch).await;
                        if outcome.is_ok() {
                            statistics.note_writes(db, batch.metrics.len() as u64);
                        }
                        let _ = done.send(outcome);
                    }
                    Job::CreateRun {
                        namespace,
                        run,
                        done,
                    } => {
                        let outcome = create_run_alone(db, &namespace, run).await;
                        if outcome.is_ok() {
                            statistics.note_writes(db, 1);
                        }
                        let _ = done.send(outcome);
                    }
                }
            }
        }
    }
}

/// One transaction for all `jobs`: the outcome of each (its own error when
/// its run or experiment cannot take it), or the transaction's error. Runs are created before points are added (no point of this
/// batch can be for a run of this batch: a run's id is known only once its
/// creation answered).
async fn commit_together(db: &Database, jobs: &[Job]) -> Result<Vec<Outcome>, ApiError> {
    let mut tx = db.writer.begin().await.map_err(db_error)?;
    let mut outcomes: Vec<Option<Outcome>> = jobs.iter().map(|_| None).collect();

    // --- run creations
    let creations: Vec<(usize, &Namespace, &NewRun)> = jobs
        .iter()
        .enumerate()
        .filter_map(|(i, job)| match job {
            Job::CreateRun { namespace, run, .. } => Some((i, namespace, run)),
            Job::Metrics { .. } => None,
        })
        .collect();
    // (job, namespace, run, artifact_uri) of the creations that can go in.
    let mut new_runs: Vec<(usize, &Namespace, &NewRun, String)> = Vec::new();
    if !creations.is_empty() {
        let ids = pg_array(
            creations
                .iter()
                .map(|(_, _, run)| run.experiment_id.to_string()),
        );
        let experiments: HashMap<(String, i64), (String, String)> = sqlx::query_as::<
            _,
            (String, i64, String, String),
        >(
            "SELECT namespace, experiment_id, lifecycle_stage, artifact_location FROM experiments \
                 WHERE experiment_id = ANY(CAST($1 AS BIGINT[]))",
        )
        .bind(ids)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|(namespace, id, stage, location)| ((namespace, id), (stage, location)))
        .collect();
        for (i, namespace, run) in &creations {
            let key = (namespace.to_string(), run.experiment_id);
            match experiments.get(&key) {
                Some((stage, location)) => {
                    match check_experiment_active(run.experiment_id, stage) {
                        Ok(()) => new_runs.push((
                            *i,
                            namespace,
                            run,
                            run_artifact_uri(location, &run.run_id),
                        )),
                        Err(error) => outcomes[*i] = Some(Outcome::CreateRun(Err(error))),
                    }
                }
                None => {
                    outcomes[*i] = Some(Outcome::CreateRun(Err(experiment_not_found(
                        run.experiment_id,
                    ))));
                }
            }
        }
    }
    let mut created: Vec<(usize, String, Vec<KeyValue>)> = Vec::new();
    if !new_runs.is_empty() {
        let column = |f: &dyn Fn(&Namespace, &NewRun, &str) -> String| {
            pg_array(
                new_runs
                    .iter()
                    .map(|(_, namespace, run, uri)| f(namespace, run, uri)),
            )
        };
        let keys: HashMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
            "INSERT INTO runs (run_uuid, namespace, experiment_id, name, user_id, status, start_time, \
               lifecycle_stage, artifact_uri) \
             SELECT u.id, u.ns, u.exp, u.name, u.usr, 'RUNNING', u.start, 'active', u.uri \
             FROM UNNEST(CAST($1 AS TEXT[]), CAST($2 AS TEXT[]), CAST($3 AS BIGINT[]), CAST($4 AS TEXT[]), \
               CAST($5 AS TEXT[]), CAST($6 AS BIGINT[]), CAST($7 AS TEXT[])) AS u(id, ns, exp, name, usr, start, uri) \
             RETURNING run_uuid, run_key",
        )
        .bind(column(&|_, run, _| pg_text(&run.run_id)))
        .bind(column(&|namespace, _, _| pg_text(namespace.as_str())))
        .bind(column(&|_, run, _| run.experiment_id.to_string()))
        .bind(column(&|_, run, _| pg_text(&run.name)))
        .bind(column(&|_, run, _| pg_text(&run.user_id)))
        .bind(column(&|_, run, _| run.start_time.to_string()))
        .bind(column(&|_, _, uri| pg_text(uri)))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?
        .into_iter()
        .collect();
        let mut tag_rows: Vec<(i64, &str, &str)> = Vec::new();
        for (i, _, run, uri) in &new_runs {
            let run_key = *keys
                .get(&run.run_id)
                .ok_or_else(|| ApiError::internal("a created run returned no key"))?;
            let tags = unique_tags(&run.tags);
            tag_rows.extend(tags.iter().map(|(key, value)| (run_key, *key, *value)));
            let tags = tags
                .into_iter()
                .map(|(key, value)| KeyValue {
                    key: key.to_string(),
                    value: value.to_string(),
                })
                .collect();
            created.push((*i, uri.clone(), tags));
        }
        if !tag_rows.is_empty() {
            // The name is already set; the mlflow.runName tag only mirrors it.
            sqlx::query(
                "INSERT INTO tags (run_key, key, value) \
                 SELECT * FROM UNNEST(CAST($1 AS BIGINT[]), CAST($2 AS TEXT[]), CAST($3 AS TEXT[])) \
                 ON CONFLICT (run_key, key) DO UPDATE SET value = excluded.value",
            )
            .bind(pg_array(tag_rows.iter().map(|(k, _, _)| k.to_string())))
            .bind(pg_array(tag_rows.iter().map(|(_, key, _)| pg_text(key))))
            .bind(pg_array(tag_rows.iter().map(|(_, _, value)| pg_text(value))))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
    }

    // --- metric points
    let metric_jobs: Vec<(usize, &Namespace, &str)> = jobs
        .iter()
        .enumerate()
        .filter_map(|(i, job)| match job {
            Job::Metrics {
                namespace, run_id, ..
            } => Some((i, namespace, run_id.as_str())),
            Job::CreateRun { .. } => None,
        })
        .collect();
    if !metric_jobs.is_empty() {
        let ids = pg_array(metric_jobs.iter().map(|(_, _, run_id)| pg_text(run_id)));
        let runs: HashMap<String, (String, i64, String)> =
            sqlx::query_as::<_, (String, String, i64, String)>(
                "SELECT run_uuid, namespace, run_key, lifecycle_stage FROM runs \
                 WHERE run_uuid = ANY(CAST($1 AS TEXT[]))",
            )
            .bind(ids)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_error)?
            .into_iter()
            .map(|(run_id, namespace, run_key, stage)| (run_id, (namespace, run_key, stage)))
            .collect();
        let mut points: Vec<(i64, &MetricPoint)> = Vec::new();
        for (i, namespace, run_id) in &metric_jobs {
            let outcome = match runs.get(*run_id) {
                Some((owner, run_key, stage)) if owner == namespace.as_str() => {
                    check_active(run_id, stage).map(|()| *run_key)
                }
                _ => Err(run_not_found(run_id)),
            };
            match outcome {
                Ok(run_key) => {
                    if let Job::Metrics { points: mine, .. } = &jobs[*i] {
                        points.extend(mine.iter().map(|point| (run_key, point)));
                    }
                    outcomes[*i] = Some(Outcome::Metrics(Ok(())));
                }
                Err(error) => outcomes[*i] = Some(Outcome::Metrics(Err(error))),
            }
        }
        if !points.is_empty() {
            append_metrics(&mut tx, db.dialect, &points, true).await?;
        }
    }
    tx.commit().await.map_err(db_error)?;

    for (i, uri, tags) in created {
        if let Job::CreateRun { run, .. } = &jobs[i] {
            outcomes[i] = Some(Outcome::CreateRun(Ok(Box::new(new_run_message(
                run.clone(),
                uri,
                tags,
            )))));
        }
    }
    // Committed: from here on nothing may fail the batch (it would be
    // written a second time one by one).
    Ok(outcomes
        .into_iter()
        .zip(jobs)
        .map(|(outcome, job)| {
            outcome.unwrap_or_else(|| {
                let error = ApiError::internal("a queued write got no answer");
                match job {
                    Job::Metrics { .. } => Outcome::Metrics(Err(error)),
                    Job::CreateRun { .. } => Outcome::CreateRun(Err(error)),
                }
            })
        })
        .collect())
}
