-- Searches over versions of many models by number (`version_number > N`,
-- ordered by version) read only the matching versions instead of every version
-- of the namespace. Append-only: change the schema in a new file.
CREATE INDEX model_versions_by_number ON model_versions (namespace, version);
