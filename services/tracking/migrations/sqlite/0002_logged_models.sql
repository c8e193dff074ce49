-- MLflow 3 logged models, SQLite. Append-only: change the schema in a new file.
CREATE TABLE logged_models (
    namespace TEXT NOT NULL,
    model_id TEXT NOT NULL,
    experiment_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    artifact_location TEXT NOT NULL,
    creation_timestamp_ms BIGINT NOT NULL,
    last_updated_timestamp_ms BIGINT NOT NULL,
    -- MLflow enum name: LOGGED_MODEL_PENDING, LOGGED_MODEL_READY, LOGGED_MODEL_UPLOAD_FAILED.
    status TEXT NOT NULL,
    lifecycle_stage TEXT NOT NULL,
    model_type TEXT,
    source_run_id TEXT,
    status_message TEXT,
    PRIMARY KEY (namespace, model_id),
    FOREIGN KEY (namespace, experiment_id) REFERENCES experiments (namespace, experiment_id) ON DELETE CASCADE
);
-- Serves the default search order (creation DESC, model_id) per experiment.
CREATE INDEX logged_models_by_experiment ON logged_models (namespace, experiment_id, creation_timestamp_ms DESC, model_id);
-- Serves register_model's `source_run_id = '<run>' AND name = 'model'` lookup.
CREATE INDEX logged_models_by_source_run ON logged_models (namespace, source_run_id, name);

CREATE TABLE logged_model_params (
    namespace TEXT NOT NULL,
    model_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (namespace, model_id, key),
    FOREIGN KEY (namespace, model_id) REFERENCES logged_models (namespace, model_id) ON DELETE CASCADE
);

CREATE TABLE logged_model_tags (
    namespace TEXT NOT NULL,
    model_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (namespace, model_id, key),
    FOREIGN KEY (namespace, model_id) REFERENCES logged_models (namespace, model_id) ON DELETE CASCADE
);

-- Metric points logged with a model_id (log-metric / log-batch), one row per
-- (model, key, timestamp, step, run, dataset) as MLflow's logged_model_metrics.
-- Kept apart from `metrics`, whose key has no model_id: the stock client copies
-- run metrics onto a model by re-logging the identical point with model_id set.
-- No foreign key to logged_models: MLflow accepts a point before its model exists.
CREATE TABLE logged_model_metrics (
    namespace TEXT NOT NULL,
    model_id TEXT NOT NULL,
    key TEXT NOT NULL,
    timestamp BIGINT NOT NULL,
    step BIGINT NOT NULL,
    run_key BIGINT NOT NULL REFERENCES runs (run_key) ON DELETE CASCADE,
    value REAL NOT NULL,
    is_nan BIGINT NOT NULL,
    -- '' when the point has no dataset.
    dataset_name TEXT NOT NULL,
    dataset_digest TEXT NOT NULL,
    PRIMARY KEY (namespace, model_id, key, timestamp, step, run_key, dataset_name, dataset_digest)
);
-- Serves metric filters and orders across models.
CREATE INDEX logged_model_metrics_by_key ON logged_model_metrics (namespace, key, model_id);

-- Points logged with a model_id before this migration.
INSERT INTO logged_model_metrics (namespace, model_id, key, timestamp, step, run_key, value, is_nan, dataset_name, dataset_digest)
SELECT r.namespace, m.model_id, m.key, m.timestamp, m.step, m.run_key, m.value, m.is_nan,
       COALESCE(m.dataset_name, ''), COALESCE(m.dataset_digest, '')
FROM metrics m JOIN runs r ON r.run_key = m.run_key
WHERE m.model_id IS NOT NULL
ON CONFLICT DO NOTHING;
