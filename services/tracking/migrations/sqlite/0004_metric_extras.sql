-- History pages read their points from the primary key alone (a covering
-- index); the few points that carry a logged model or a dataset are found
-- through this partial index instead of reading every point's table row.
-- Its predicate is `rows::HISTORY_EXTRAS` word for word (the planner matches
-- it). Append-only: change the schema in a new file.
CREATE INDEX metrics_with_extras ON metrics (run_key, key, step, timestamp, value, is_nan)
    WHERE (model_id IS NOT NULL OR dataset_name IS NOT NULL OR dataset_digest IS NOT NULL);
