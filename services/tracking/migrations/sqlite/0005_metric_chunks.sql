-- Metric history in chunks: each write stores the points it brings for one
-- (run, key, logged model, dataset) as ONE row, sorted and packed (26 bytes a
-- point: step int8, timestamp int8, value float8, is_nan int2, big-endian).
-- A point logged twice is stored twice and collapsed when read (the first
-- logged wins, by `chunk`). Rows of the old `metrics` table are moved here
-- when migrations run (`store::sql::convert_legacy_history`); the table stays,
-- empty. Append-only: change the schema in a new file.
CREATE TABLE metric_chunks (
    chunk INTEGER PRIMARY KEY,
    run_key INTEGER NOT NULL,
    key TEXT NOT NULL,
    first_step INTEGER NOT NULL,
    last_step INTEGER NOT NULL,
    points INTEGER NOT NULL,
    model_id TEXT,
    dataset_name TEXT,
    dataset_digest TEXT,
    data BLOB NOT NULL
);
CREATE INDEX metric_chunks_by_step ON metric_chunks (run_key, key, first_step, chunk);
