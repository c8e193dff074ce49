-- Cards: each registered model and each model version keeps its complete API
-- message (prost-encoded quiver.registry.v1.RegisteredModel / ModelVersion,
-- with tags, aliases and, for a model, its latest version per stage),
-- rewritten by the store in the same transaction as every write that changes
-- it. Searches then read one column per result instead of joining tags,
-- aliases and per-stage latest versions on every call. NULL: not written yet
-- (rows from before this migration until `quiver migrate` fills them); the
-- store then assembles the message from the tables.
ALTER TABLE registered_models ADD COLUMN card BYTEA;
ALTER TABLE model_versions ADD COLUMN card BYTEA;
