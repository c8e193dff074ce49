-- Removing a run (`quiver gc`, and the foreign-key cascade from runs) finds its
-- logged-model metric points by run_key; without this index that is a scan of
-- the whole table per run. Append-only: change the schema in a new file.
CREATE INDEX logged_model_metrics_by_run ON logged_model_metrics (run_key);
