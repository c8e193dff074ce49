//! MLflow JSON <-> proto, in one place: request parameters into proto
//! requests, proto messages into MLflow's JSON (snake_case, int64 as numbers,
//! enums as names, unset fields omitted, NaN as "NaN").

use quiver_proto::common::v1::{KeyValue, ViewType};
use quiver_proto::tracking::v1 as pb;
use serde_json::{Map, Value, json};

use crate::error::GatewayError;
use crate::params::Params;

pub(crate) type Json = Map<String, Value>;

pub mod registry;

pub(crate) fn put_str(map: &mut Json, key: &str, value: &str) {
    if !value.is_empty() {
        map.insert(key.to_string(), Value::String(value.to_string()));
    }
}

pub(crate) fn put_list(map: &mut Json, key: &str, values: Vec<Value>) {
    if !values.is_empty() {
        map.insert(key.to_string(), Value::Array(values));
    }
}

/// A double as MLflow prints it: NaN as "NaN", infinities as strings.
pub fn double(value: f64) -> Value {
    if value.is_nan() {
        Value::String("NaN".to_string())
    } else if value == f64::INFINITY {
        Value::String("Infinity".to_string())
    } else if value == f64::NEG_INFINITY {
        Value::String("-Infinity".to_string())
    } else {
        json!(value)
    }
}

pub(crate) fn key_values(tags: &[KeyValue]) -> Vec<Value> {
    tags.iter()
        .map(|tag| json!({"key": tag.key, "value": tag.value}))
        .collect()
}

fn lifecycle(stage: i32) -> &'static str {
    match pb::LifecycleStage::try_from(stage) {
        Ok(pb::LifecycleStage::Deleted) => "deleted",
        _ => "active",
    }
}

fn run_status(status: i32) -> &'static str {
    match pb::RunStatus::try_from(status) {
        Ok(pb::RunStatus::Scheduled) => "SCHEDULED",
        Ok(pb::RunStatus::Finished) => "FINISHED",
        Ok(pb::RunStatus::Failed) => "FAILED",
        Ok(pb::RunStatus::Killed) => "KILLED",
        _ => "RUNNING",
    }
}

/// Parses an MLflow run status name.
pub fn run_status_by_name(name: &str) -> Option<i32> {
    let status = match name {
        "RUNNING" => pb::RunStatus::Running,
        "SCHEDULED" => pb::RunStatus::Scheduled,
        "FINISHED" => pb::RunStatus::Finished,
        "FAILED" => pb::RunStatus::Failed,
        "KILLED" => pb::RunStatus::Killed,
        _ => return None,
    };
    Some(status as i32)
}

/// Parses an MLflow view type name.
pub fn view_type_by_name(name: &str) -> Option<i32> {
    let view = match name {
        "ACTIVE_ONLY" => ViewType::ActiveOnly,
        "DELETED_ONLY" => ViewType::DeletedOnly,
        "ALL" => ViewType::All,
        _ => return None,
    };
    Some(view as i32)
}

/// Experiment JSON.
pub fn experiment(experiment: &pb::Experiment) -> Value {
    let mut map = Json::new();
    put_str(&mut map, "experiment_id", &experiment.experiment_id);
    put_str(&mut map, "name", &experiment.name);
    put_str(&mut map, "artifact_location", &experiment.artifact_location);
    map.insert(
        "lifecycle_stage".into(),
        json!(lifecycle(experiment.lifecycle_stage)),
    );
    map.insert(
        "last_update_time".into(),
        json!(experiment.last_update_time),
    );
    map.insert("creation_time".into(), json!(experiment.creation_time));
    put_list(&mut map, "tags", key_values(&experiment.tags));
    put_str(&mut map, "workspace", &experiment.namespace);
    Value::Object(map)
}

/// A metric as MLflow's JSON, serialized directly (no intermediate `Value`
/// tree): history reads return hundreds of thousands of these.
pub struct MetricJson<'a> {
    /// The metric.
    pub metric: &'a pb::Metric,
    /// Include `run_id` (bulk reads) or not (single-run history).
    pub with_run_id: bool,
}

impl serde::Serialize for MetricJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let m = self.metric;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("key", &m.key)?;
        if m.value.is_finite() {
            map.serialize_entry("value", &m.value)?;
        } else {
            map.serialize_entry("value", &double(m.value))?;
        }
        map.serialize_entry("timestamp", &m.timestamp)?;
        map.serialize_entry("step", &m.step)?;
        for (name, value) in [
            ("dataset_name", &m.dataset_name),
            ("dataset_digest", &m.dataset_digest),
            ("model_id", &m.model_id),
        ] {
            if !value.is_empty() {
                map.serialize_entry(name, value)?;
            }
        }
        if self.with_run_id && !m.run_id.is_empty() {
            map.serialize_entry("run_id", &m.run_id)?;
        }
        map.end()
    }
}

/// Metric JSON (with `run_id` when set).
pub fn metric(metric: &pb::Metric) -> Value {
    serde_json::to_value(MetricJson {
        metric,
        with_run_id: true,
    })
    .unwrap_or(Value::Null)
}

/// Writes metrics as MLflow's JSON objects, comma-separated, straight into a
/// byte buffer: the same output as [`MetricJson`], without a serializer call
/// per field. A history page repeats one key and one run id 25,000 times, so
/// their escaped forms are kept and reused.
#[derive(Default)]
pub struct MetricsWriter {
    key: (String, String),
    run_id: (String, String),
    written: usize,
}

impl MetricsWriter {
    /// Appends one metric (preceded by a comma unless it is the first).
    pub fn push(&mut self, out: &mut Vec<u8>, m: &pb::Metric, with_run_id: bool) {
        fn escaped<'c>(cache: &'c mut (String, String), raw: &str) -> &'c str {
            if cache.0 != raw || cache.1.is_empty() {
                cache.0 = raw.to_string();
                cache.1 = serde_json::to_string(raw).unwrap_or_else(|_| "\"\"".into());
            }
            &cache.1
        }
        fn string_field(out: &mut Vec<u8>, name: &str, value: &str) {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
            let _ = serde_json::to_writer(&mut *out, value);
        }
        if self.written > 0 {
            out.push(b',');
        }
        self.written += 1;
        out.extend_from_slice(b"{\"key\":");
        out.extend_from_slice(escaped(&mut self.key, &m.key).as_bytes());
        out.extend_from_slice(b",\"value\":");
        let value = m.value;
        let _ = if value.is_finite() {
            serde_json::to_writer(&mut *out, &value)
        } else {
            serde_json::to_writer(&mut *out, &double(value))
        };
        out.extend_from_slice(b",\"timestamp\":");
        let _ = serde_json::to_writer(&mut *out, &m.timestamp);
        out.extend_from_slice(b",\"step\":");
        let _ = serde_json::to_writer(&mut *out, &m.step);
        for (name, value) in [
            ("dataset_name", &m.dataset_name),
            ("dataset_digest", &m.dataset_digest),
            ("model_id", &m.model_id),
        ] {
            if !value.is_empty() {
                string_field(out, name, value);
            }
        }
        if with_run_id && !m.run_id.is_empty() {
            out.extend_from_slice(b",\"run_id\":");
            out.extend_from_slice(escaped(&mut self.run_id, &m.run_id).as_bytes());
        }
        out.push(b'}');
    }
}

/// Bytes of JSON one history point usually takes, for sizing buffers.
pub const METRIC_JSON_BYTES: usize = 96;

/// `{"metrics": [...], "next_page_token"?: ...}` for history reads, or `{}`
/// when there are no points.
pub fn metrics_page(metrics: &[pb::Metric], with_run_id: bool, token: &str) -> String {
    if metrics.is_empty() && token.is_empty() {
        return "{}".to_string();
    }
    let mut out = Vec::with_capacity(metrics.len() * METRIC_JSON_BYTES + token.len() + 64);
    out.extend_from_slice(b"{\"metrics\":[");
    let mut writer = MetricsWriter::default();
    for metric in metrics {
        writer.push(&mut out, metric, with_run_id);
    }
    out.push(b']');
    if !token.is_empty() {
        out.extend_from_slice(b",\"next_page_token\":");
        let _ = serde_json::to_writer(&mut out, token);
    }
    out.push(b'}');
    // Only JSON (UTF-8) was written.
    String::from_utf8(out).unwrap_or_else(|_| "{}".to_string())
}

/// RunInfo JSON (`run_uuid` duplicated as MLflow does).
pub fn run_info(info: &pb::RunInfo) -> Value {
    serde_json::to_value(RunInfoJson(info)).unwrap_or(Value::Null)
}

/// Run JSON.
pub fn run(run: &pb::Run) -> Value {
    serde_json::to_value(RunJson(run)).unwrap_or(Value::Null)
}

/// `{"runs": [...], "next_page_token"?: ...}` (or `{}`) for run searches,
/// serialized straight from the protos: a page holds up to 1000 runs.
pub fn runs_page(runs: &[pb::Run], token: &str) -> String {
    let runs: Vec<RunJson> = runs.iter().map(RunJson).collect();
    list_page("runs", &runs, token)
}

/// `{"<field>": [...]?, "next_page_token"?: ...}`: a page of a list, each
/// part left out when empty (so an empty last page is `{}`), as MLflow does.
pub(crate) fn list_page<T: serde::Serialize>(field: &str, items: &[T], token: &str) -> String {
    use serde::ser::{SerializeMap, Serializer};
    let mut out = Vec::with_capacity(256 * items.len() + token.len() + 32);
    let mut serializer = serde_json::Serializer::new(&mut out);
    let written = serializer.serialize_map(None).and_then(|mut map| {
        if !items.is_empty() {
            map.serialize_entry(field, items)?;
        }
        if !token.is_empty() {
            map.serialize_entry("next_page_token", token)?;
        }
        map.end()
    });
    match written.map(|()| String::from_utf8(out)) {
        Ok(Ok(json)) => json,
        _ => "{}".to_string(),
    }
}

/// A run as MLflow's JSON, serialized directly (no intermediate `Value` tree).
pub struct RunJson<'a>(pub &'a pb::Run);

/// A run's info as MLflow's JSON.
pub struct RunInfoJson<'a>(pub &'a pb::RunInfo);

/// A list of `{"key", "value"}` objects.
pub(crate) struct KeyValuesJson<'a>(pub(crate) &'a [KeyValue]);

impl serde::Serialize for KeyValuesJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        struct One<'a>(&'a KeyValue);
        impl serde::Serialize for One<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(2))?;
                map.serialize_entry("key", &self.0.key)?;
                map.serialize_entry("value", &self.0.value)?;
                map.end()
            }
        }
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for kv in self.0 {
            seq.serialize_element(&One(kv))?;
        }
        seq.end()
    }
}

impl serde::Serialize for RunInfoJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let info = self.0;
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("run_id", &info.run_id)?;
        map.serialize_entry("run_uuid", &info.run_id)?;
        map.serialize_entry("run_name", &info.run_name)?;
        map.serialize_entry("experiment_id", &info.experiment_id)?;
        map.serialize_entry("user_id", &info.user_id)?;
        map.serialize_entry("status", run_status(info.status))?;
        map.serialize_entry("start_time", &info.start_time)?;
        if let Some(end_time) = info.end_time {
            map.serialize_entry("end_time", &end_time)?;
        }
        map.serialize_entry("artifact_uri", &info.artifact_uri)?;
        map.serialize_entry("lifecycle_stage", lifecycle(info.lifecycle_stage))?;
        map.end()
    }
}

impl serde::Serialize for RunJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct Data<'a>(Option<&'a pb::RunData>);
        impl serde::Serialize for Data<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(None)?;
                if let Some(data) = self.0 {
                    if !data.metrics.is_empty() {
                        let metrics: Vec<MetricJson<'_>> = data
                            .metrics
                            .iter()
                            .map(|metric| MetricJson {
                                metric,
                                with_run_id: true,
                            })
                            .collect();
                        map.serialize_entry("metrics", &metrics)?;
                    }
                    if !data.params.is_empty() {
                        map.serialize_entry("params", &KeyValuesJson(&data.params))?;
                    }
                    if !data.tags.is_empty() {
                        map.serialize_entry("tags", &KeyValuesJson(&data.tags))?;
                    }
                }
                map.end()
            }
        }
        struct Inputs<'a>(Option<&'a pb::RunInputs>);
        impl serde::Serialize for Inputs<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(None)?;
                if let Some(inputs) = self.0 {
                    if !inputs.dataset_inputs.is_empty() {
                        let datasets: Vec<Value> =
                            inputs.dataset_inputs.iter().map(dataset_input).collect();
                        map.serialize_entry("dataset_inputs", &datasets)?;
                    }
                    if !inputs.model_inputs.is_empty() {
                        let models: Vec<Value> = inputs
                            .model_inputs
                            .iter()
                            .map(|m| json!({"model_id": m.model_id}))
                            .collect();
                        map.serialize_entry("model_inputs", &models)?;
                    }
                }
                map.end()
            }
        }
        let run = self.0;
        let mut map = serializer.serialize_map(None)?;
        if let Some(info) = &run.info {
            map.serialize_entry("info", &RunInfoJson(info))?;
        }
        map.serialize_entry("data", &Data(run.data.as_ref()))?;
        map.serialize_entry("inputs", &Inputs(run.inputs.as_ref()))?;
        if let Some(outputs) = &run.outputs
            && !outputs.model_outputs.is_empty()
        {
            let models: Vec<Value> = outputs
                .model_outputs
                .iter()
                .map(|m| json!({"model_id": m.model_id, "step": m.step}))
                .collect();
            map.serialize_entry("outputs", &json!({ "model_outputs": models }))?;
        }
        map.end()
    }
}

fn dataset_input(input: &pb::DatasetInput) -> Value {
    let dataset = input.dataset.clone().unwrap_or_default();
    let mut ds = Json::new();
    ds.insert("name".into(), json!(dataset.name));
    ds.insert("digest".into(), json!(dataset.digest));
    ds.insert("source_type".into(), json!(dataset.source_type));
    ds.insert("source".into(), json!(dataset.source));
    put_str(&mut ds, "schema", &dataset.schema);
    put_str(&mut ds, "profile", &dataset.profile);
    let mut map = Json::new();
    put_list(&mut map, "tags", key_values(&input.tags));
    map.insert("dataset".into(), Value::Object(ds));
    Value::Object(map)
}

/// `{"next_page_token": ...}` merged into a response when non-empty.
pub fn with_token(mut value: Value, token: &str) -> Value {
    if let Value::Object(map) = &mut value {
        put_str(map, "next_page_token", token);
    }
    value
}

// ---- requests -------------------------------------------------------------

pub(crate) fn key_value_list(
    params: &Params,
    name: &str,
    value_required: bool,
) -> Result<Vec<KeyValue>, GatewayError> {
    params
        .objects(name)?
        .iter()
        .map(|entry| {
            let value = if value_required {
                entry.required_present_str("value")?
            } else {
                entry.str_or_empty("value")?
            };
            Ok(KeyValue {
                key: entry.required_str("key")?,
                value,
            })
        })
        .collect()
}

/// A metric from a log-metric body or a log-batch entry.
pub fn metric_request(p: &Params) -> Result<pb::Metric, GatewayError> {
    Ok(pb::Metric {
        key: p.required_str("key")?,
        value: p.required_f64("value")?,
        timestamp: p.opt_i64("timestamp")?.ok_or_else(|| {
            GatewayError::invalid(
                "Missing value for required parameter 'timestamp'. See the API docs for more information about request parameters.",
            )
        })?,
        step: p.opt_i64("step")?.unwrap_or(0),
        model_id: p.str_or_empty("model_id")?,
        dataset_name: p.str_or_empty("dataset_name")?,
        dataset_digest: p.str_or_empty("dataset_digest")?,
        run_id: String::new(),
    })
}

/// CreateExperiment.
pub fn create_experiment(p: &Params) -> Result<pb::CreateExperimentRequest, GatewayError> {
    Ok(pb::CreateExperimentRequest {
        name: p.required_str("name")?,
        artifact_location: p.str_or_empty("artifact_location")?,
        tags: key_value_list(p, "tags", false)?,
    })
}

/// SearchExperiments (`max_results` is required in practice: absent is 0, a 400).
pub fn search_experiments(p: &Params) -> Result<pb::SearchExperimentsRequest, GatewayError> {
    Ok(pb::SearchExperimentsRequest {
        max_results: p.opt_i64("max_results")?.unwrap_or(0),
        page_token: p.str_or_empty("page_token")?,
        filter: p.str_or_empty("filter")?,
        order_by: p.str_list("order_by")?,
        view_type: p
            .opt_enum("view_type", view_type_by_name)?
            .unwrap_or(ViewType::ActiveOnly as i32),
    })
}

/// CreateRun.
pub fn create_run(p: &Params) -> Result<pb::CreateRunRequest, GatewayError> {
    Ok(pb::CreateRunRequest {
        experiment_id: p.required_str("experiment_id")?,
        user_id: p.str_or_empty("user_id")?,
        run_name: p.str_or_empty("run_name")?,
        start_time: p.opt_i64("start_time")?.unwrap_or(0),
        tags: key_value_list(p, "tags", false)?,
    })
}

/// UpdateRun.
pub fn update_run(p: &Params) -> Result<pb::UpdateRunRequest, GatewayError> {
    Ok(pb::UpdateRunRequest {
        run_id: p.run_id()?,
        status: p.opt_enum("status", run_status_by_name)?.unwrap_or(0),
        end_time: p.opt_i64("end_time")?,
        run_name: p.opt_str("run_name")?,
    })
}

/// SearchRuns (`max_results` defaults to 1000).
pub fn search_runs(p: &Params) -> Result<pb::SearchRunsRequest, GatewayError> {
    let max_results = p.opt_i64("max_results")?.unwrap_or(1000);
    Ok(pb::SearchRunsRequest {
        experiment_ids: p.str_list("experiment_ids")?,
        filter: p.str_or_empty("filter")?,
        run_view_type: p
            .opt_enum("run_view_type", view_type_by_name)?
            .unwrap_or(ViewType::ActiveOnly as i32),
        max_results: i32::try_from(max_results.clamp(i64::from(i32::MIN), i64::from(i32::MAX)))
            .unwrap_or(0),
        order_by: p.str_list("order_by")?,
        page_token: p.str_or_empty("page_token")?,
    })
}

/// LogBatch.
pub fn log_batch(p: &mut Params) -> Result<pb::LogBatchRequest, GatewayError> {
    Ok(pb::LogBatchRequest {
        run_id: p.run_id()?,
        metrics: p
            .take_objects("metrics")?
            .iter()
            .map(metric_request)
            .collect::<Result<_, _>>()?,
        params: key_value_list(p, "params", false)?,
        tags: key_value_list(p, "tags", false)?,
    })
}

/// LogBatch from its body. The shape the clients send (snake_case names,
/// numbers as JSON numbers, strings non-empty where required) is read
/// straight into the request; anything else (camelCase, numbers as strings,
/// unknown fields, a mistake to report) takes [`log_batch`]'s way, which
/// reads every form MLflow reads and words every error as MLflow does. The
/// straight read accepts only bodies that way reads alike (a unit test holds
/// the two side by side); a 1000-point batch costs a fraction of building a
/// JSON tree of 1000 objects first.
pub fn log_batch_body(bytes: &[u8]) -> Result<pb::LogBatchRequest, GatewayError> {
    if let Some(request) = plain_log_batch(bytes) {
        return Ok(request);
    }
    log_batch(&mut Params::from_json_bytes(bytes)?)
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainBatch {
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    run_uuid: Option<String>,
    #[serde(default)]
    metrics: Option<Vec<PlainMetric>>,
    #[serde(default)]
    params: Option<Vec<PlainKeyValue>>,
    #[serde(default)]
    tags: Option<Vec<PlainKeyValue>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainMetric {
    key: String,
    value: f64,
    timestamp: i64,
    #[serde(default)]
    step: Option<i64>,
    #[serde(default)]
    model_id: Option<String>,
    #[serde(default)]
    dataset_name: Option<String>,
    #[serde(default)]
    dataset_digest: Option<String>,
    /// Sent by clients that serialize whole `Metric` messages; not read.
    #[serde(default)]
    #[allow(dead_code)]
    run_id: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainKeyValue {
    key: String,
    #[serde(default)]
    value: Option<String>,
}

/// The plainly shaped log-batch, or `None` for [`log_batch`] to read.
fn plain_log_batch(bytes: &[u8]) -> Option<pb::LogBatchRequest> {
    let batch: PlainBatch = serde_json::from_slice(bytes).ok()?;
    let present = |text: Option<String>| text.filter(|t| !t.is_empty());
    let run_id = present(batch.run_id).or_else(|| present(batch.run_uuid))?;
    let key_values = |list: Option<Vec<PlainKeyValue>>| -> Option<Vec<KeyValue>> {
        list.unwrap_or_default()
            .into_iter()
            .map(|kv| {
                (!kv.key.is_empty()).then(|| KeyValue {
                    key: kv.key,
                    value: kv.value.unwrap_or_default(),
                })
            })
            .collect()
    };
    let metrics = batch
        .metrics
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            (!m.key.is_empty()).then(|| pb::Metric {
                key: m.key,
                value: m.value,
                timestamp: m.timestamp,
                step: m.step.unwrap_or(0),
                model_id: m.model_id.unwrap_or_default(),
                dataset_name: m.dataset_name.unwrap_or_default(),
                dataset_digest: m.dataset_digest.unwrap_or_default(),
                run_id: String::new(),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(pb::LogBatchRequest {
        run_id,
        metrics,
        params: key_values(batch.params)?,
        tags: key_values(batch.tags)?,
    })
}

/// LogInputs.
pub fn log_inputs(p: &Params) -> Result<pb::LogInputsRequest, GatewayError> {
    let datasets = p
        .objects("datasets")?
        .iter()
        .map(|entry| {
            let dataset = entry
                .object("dataset")?
                .map(|d| -> Result<pb::Dataset, GatewayError> {
                    Ok(pb::Dataset {
                        name: d.str_or_empty("name")?,
                        digest: d.str_or_empty("digest")?,
                        source_type: d.str_or_empty("source_type")?,
                        source: d.str_or_empty("source")?,
                        schema: d.str_or_empty("schema")?,
                        profile: d.str_or_empty("profile")?,
                    })
                })
                .transpose()?;
            Ok(pb::DatasetInput {
                tags: key_value_list(entry, "tags", false)?,
                dataset,
            })
        })
        .collect::<Result<_, GatewayError>>()?;
    let models = p
        .objects("models")?
        .iter()
        .map(|m| {
            Ok(pb::ModelInput {
                model_id: m.str_or_empty("model_id")?,
            })
        })
        .collect::<Result<_, GatewayError>>()?;
    Ok(pb::LogInputsRequest {
        run_id: p.run_id()?,
        datasets,
        models,
    })
}

/// LogOutputs.
pub fn log_outputs(p: &Params) -> Result<pb::LogOutputsRequest, GatewayError> {
    let models = p
        .objects("models")?
        .iter()
        .map(|m| {
            Ok(pb::ModelOutput {
                model_id: m.str_or_empty("model_id")?,
                step: m.opt_i64("step")?.unwrap_or(0),
            })
        })
        .collect::<Result<_, GatewayError>>()?;
    Ok(pb::LogOutputsRequest {
        run_id: p.run_id()?,
        models,
    })
}

/// GetMetricHistory (`max_results` absent = all points; ≤ 0 is a 400).
pub fn get_metric_history(p: &Params) -> Result<pb::GetMetricHistoryRequest, GatewayError> {
    let max_results = p.opt_i32("max_results")?;
    if let Some(value) = max_results.filter(|v| *v <= 0) {
        return Err(GatewayError::invalid(format!(
            "Invalid value {value} for parameter 'max_results' supplied. It must be a positive integer"
        )));
    }
    Ok(pb::GetMetricHistoryRequest {
        run_id: p.run_id()?,
        metric_key: p.required_str("metric_key")?,
        page_token: p.str_or_empty("page_token")?,
        max_results: max_results.unwrap_or(0),
    })
}

/// GetMetricHistoryBulkInterval.
pub fn get_metric_history_bulk_interval(
    p: &Params,
) -> Result<pb::GetMetricHistoryBulkIntervalRequest, GatewayError> {
    Ok(pb::GetMetricHistoryBulkIntervalRequest {
        run_ids: p.str_list("run_ids")?,
        metric_key: p.required_str("metric_key")?,
        start_step: p.opt_i64("start_step")?,
        end_step: p.opt_i64("end_step")?,
        max_results: p.opt_i32("max_results")?.unwrap_or(0),
    })
}

// ---- logged models (MLflow 3) ----------------------------------------------

/// MLflow's name of a logged model status.
pub fn logged_model_status(status: i32) -> &'static str {
    match pb::LoggedModelStatus::try_from(status) {
        Ok(pb::LoggedModelStatus::Pending) => "LOGGED_MODEL_PENDING",
        Ok(pb::LoggedModelStatus::Ready) => "LOGGED_MODEL_READY",
        Ok(pb::LoggedModelStatus::UploadFailed) => "LOGGED_MODEL_UPLOAD_FAILED",
        _ => "LOGGED_MODEL_STATUS_UNSPECIFIED",
    }
}

/// Parses MLflow's name of a logged model status.
pub fn logged_model_status_by_name(name: &str) -> Option<i32> {
    let status = match name {
        "LOGGED_MODEL_STATUS_UNSPECIFIED" => pb::LoggedModelStatus::Unspecified,
        "LOGGED_MODEL_PENDING" => pb::LoggedModelStatus::Pending,
        "LOGGED_MODEL_READY" => pb::LoggedModelStatus::Ready,
        "LOGGED_MODEL_UPLOAD_FAILED" => pb::LoggedModelStatus::UploadFailed,
        _ => return None,
    };
    Some(status as i32)
}

/// LoggedModel JSON: `{info, data}` (unset fields omitted, int64 as numbers).
pub fn logged_model(model: &pb::LoggedModel) -> Value {
    let info = model.info.clone().unwrap_or_default();
    let data = model.data.clone().unwrap_or_default();
    let mut map = Json::new();
    put_str(&mut map, "model_id", &info.model_id);
    put_str(&mut map, "experiment_id", &info.experiment_id);
    put_str(&mut map, "name", &info.name);
    map.insert(
        "creation_timestamp_ms".into(),
        json!(info.creation_timestamp_ms),
    );
    map.insert(
        "last_updated_timestamp_ms".into(),
        json!(info.last_updated_timestamp_ms),
    );
    put_str(&mut map, "artifact_uri", &info.artifact_uri);
    map.insert("status".into(), json!(logged_model_status(info.status)));
    if let Some(creator_id) = info.creator_id {
        map.insert("creator_id".into(), json!(creator_id));
    }
    put_str(&mut map, "model_type", &info.model_type);
    put_str(&mut map, "source_run_id", &info.source_run_id);
    put_str(&mut map, "status_message", &info.status_message);
    put_list(&mut map, "tags", key_values(&info.tags));
    let registrations = info
        .registrations
        .iter()
        .map(|r| json!({"name": r.name, "version": r.version}))
        .collect();
    put_list(&mut map, "registrations", registrations);
    let mut data_map = Json::new();
    put_list(&mut data_map, "params", key_values(&data.params));
    put_list(
        &mut data_map,
        "metrics",
        data.metrics.iter().map(metric).collect(),
    );
    json!({"info": Value::Object(map), "data": Value::Object(data_map)})
}

/// CreateLoggedModel.
pub fn create_logged_model(p: &Params) -> Result<pb::CreateLoggedModelRequest, GatewayError> {
    Ok(pb::CreateLoggedModelRequest {
        experiment_id: p.required_str("experiment_id")?,
        name: p.str_or_empty("name")?,
        model_type: p.str_or_empty("model_type")?,
        source_run_id: p.str_or_empty("source_run_id")?,
        params: key_value_list(p, "params", false)?,
        tags: key_value_list(p, "tags", false)?,
    })
}

/// FinalizeLoggedModel (`status` by name; the model id comes from the path).
pub fn finalize_logged_model(
    p: &Params,
    model_id: String,
) -> Result<pb::FinalizeLoggedModelRequest, GatewayError> {
    let status = p
        .opt_enum("status", logged_model_status_by_name)?
        .filter(|status| pb::LoggedModelStatus::try_from(*status).is_ok())
        .ok_or_else(|| {
            GatewayError::invalid(
                "Missing value for required parameter 'status'. See the API docs for more information about request parameters.",
            )
        })?;
    Ok(pb::FinalizeLoggedModelRequest { model_id, status })
}

/// SetLoggedModelTags.
pub fn set_logged_model_tags(
    p: &Params,
    model_id: String,
) -> Result<pb::SetLoggedModelTagsRequest, GatewayError> {
    Ok(pb::SetLoggedModelTagsRequest {
        model_id,
        tags: key_value_list(p, "tags", false)?,
    })
}

/// LogLoggedModelParams.
pub fn log_logged_model_params(
    p: &Params,
    model_id: String,
) -> Result<pb::LogLoggedModelParamsRequest, GatewayError> {
    Ok(pb::LogLoggedModelParamsRequest {
        model_id,
        params: key_value_list(p, "params", false)?,
    })
}

/// SearchLoggedModels (`order_by` is a list of objects).
pub fn search_logged_models(p: &Params) -> Result<pb::SearchLoggedModelsRequest, GatewayError> {
    let datasets = p
        .objects("datasets")?
        .iter()
        .map(|d| {
            Ok(pb::LoggedModelDatasetFilter {
                dataset_name: d.str_or_empty("dataset_name")?,
                dataset_digest: d.str_or_empty("dataset_digest")?,
            })
        })
        .collect::<Result<_, GatewayError>>()?;
    let order_by = p
        .objects("order_by")?
        .iter()
        .map(|o| {
            Ok(pb::LoggedModelOrderBy {
                field_name: o.required_str("field_name")?,
                ascending: o.opt_bool("ascending")?,
                dataset_name: o.str_or_empty("dataset_name")?,
                dataset_digest: o.str_or_empty("dataset_digest")?,
            })
        })
        .collect::<Result<_, GatewayError>>()?;
    Ok(pb::SearchLoggedModelsRequest {
        experiment_ids: p.str_list("experiment_ids")?,
        filter: p.str_or_empty("filter")?,
        datasets,
        max_results: p.opt_i32("max_results")?.unwrap_or(0),
        order_by,
        page_token: p.str_or_empty("page_token")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The straight log-batch read takes the shapes clients send, and reads
    /// every body it takes exactly as the general way does; the rest it
    /// leaves to the general way (errors included).
    #[test]
    fn plain_log_batch_reads_as_the_general_way() {
        let taken = [
            r#"{"run_id": "r1", "metrics": [{"key": "m", "value": 0.5, "timestamp": 17, "step": 3}], "params": [], "tags": []}"#,
            r#"{"run_uuid": "r1", "metrics": [{"key": "m", "value": 2, "timestamp": 17}]}"#,
            r#"{"run_id": "", "run_uuid": "r2", "metrics": [{"key": "m", "value": -1e-300, "timestamp": 0, "step": null}]}"#,
            r#"{"run_id": "r1", "metrics": [{"key": "m", "value": 1, "timestamp": 9223372036854775807, "step": -9223372036854775808, "model_id": "m-1", "dataset_name": "", "dataset_digest": "d", "run_id": "ignored"}]}"#,
            r#"{"run_id": "r1", "params": [{"key": "p", "value": "v"}, {"key": "q"}], "tags": [{"key": "t", "value": null}], "metrics": null}"#,
            r#"{"run_id": "r1"}"#,
        ];
        for body in taken {
            let plain =
                plain_log_batch(body.as_bytes()).unwrap_or_else(|| panic!("not taken: {body}"));
            let general =
                log_batch(&mut Params::from_json_bytes(body.as_bytes()).unwrap()).unwrap();
            assert_eq!(plain, general, "{body}");
            assert_eq!(log_batch_body(body.as_bytes()).unwrap(), general);
        }
        let left = [
            // Forms only the general way reads.
            r#"{"runId": "r1", "metrics": []}"#,
            r#"{"run_id": "r1", "metrics": [{"key": "m", "value": "NaN", "timestamp": 1}]}"#,
            r#"{"run_id": "r1", "metrics": [{"key": "m", "value": 1, "timestamp": "5"}]}"#,
            r#"{"run_id": "r1", "metrics": [{"key": "m", "value": 1, "timestamp": 1, "extra": {}}]}"#,
            r#"{"run_id": "r1", "metrics": [{"key": "m", "value": 1, "timestamp": 1, "datasetName": "d"}]}"#,
            r#"{"run_id": "r1", "metrics": [{"key": "m", "key": "n", "value": 1, "timestamp": 1}]}"#,
            r#""{\"run_id\": \"r1\"}""#,
            // Mistakes, which the general way words as MLflow does.
            r#"{"metrics": []}"#,
            r#"{"run_id": "r1", "metrics": [{"key": "", "value": 1, "timestamp": 1}]}"#,
            r#"{"run_id": "r1", "metrics": [{"key": "m", "value": 1}]}"#,
            r#"{"run_id": "r1", "metrics": [{"key": "m", "value": 1, "timestamp": 1.5}]}"#,
            r#"{"run_id": "r1", "params": [{"key": "", "value": "v"}]}"#,
            r#"{"run_id": 5}"#,
            "",
        ];
        for body in left {
            assert!(plain_log_batch(body.as_bytes()).is_none(), "taken: {body}");
            let general =
                Params::from_json_bytes(body.as_bytes()).and_then(|mut p| log_batch(&mut p));
            match (log_batch_body(body.as_bytes()), general) {
                // Debug form: NaN equals NaN there.
                (Ok(a), Ok(b)) => assert_eq!(format!("{a:?}"), format!("{b:?}"), "{body}"),
                (Err(a), Err(b)) => assert_eq!(a.0.message, b.0.message, "{body}"),
                (a, b) => panic!("{body}: {a:?} vs {b:?}"),
            }
        }
    }

    /// The hand-written history writer emits exactly what the serde form does.
    #[test]
    fn metrics_writer_matches_metric_json() {
        let point = |key: &str, value: f64, run_id: &str, model_id: &str| pb::Metric {
            key: key.into(),
            value,
            timestamp: 1_700_000_000_123,
            step: -3,
            model_id: model_id.into(),
            dataset_name: if model_id.is_empty() { "" } else { "d\"s" }.into(),
            dataset_digest: String::new(),
            run_id: run_id.into(),
        };
        let metrics = vec![
            point("loss", 0.1, "r1", ""),
            point("loss", f64::NAN, "r1", "m-\\1"),
            point("loss", f64::INFINITY, "r2", ""),
            point("acc/\"top\"\u{1}é", f64::NEG_INFINITY, "r2", ""),
            point("acc", -0.0, "", ""),
            point("acc", 1e21, "r3", ""),
            point("acc", 5.0, "r3", ""),
        ];
        for with_run_id in [false, true] {
            let expected = serde_json::json!({
                "metrics": metrics
                    .iter()
                    .map(|metric| serde_json::to_value(MetricJson { metric, with_run_id }).unwrap())
                    .collect::<Vec<_>>(),
                "next_page_token": "tok\"en",
            });
            let written = metrics_page(&metrics, with_run_id, "tok\"en");
            let parsed: Value = serde_json::from_str(&written).unwrap();
            assert_eq!(parsed, expected);
            // Byte for byte what serde writes for the same values.
            let serde_text = format!(
                "{{\"metrics\":[{}],\"next_page_token\":\"tok\\\"en\"}}",
                metrics
                    .iter()
                    .map(|metric| serde_json::to_string(&MetricJson {
                        metric,
                        with_run_id
                    })
                    .unwrap())
                    .collect::<Vec<_>>()
                    .join(",")
            );
            assert_eq!(written, serde_text);
        }
        assert_eq!(metrics_page(&[], false, ""), "{}");
        assert_eq!(
            metrics_page(&[], false, "t"),
            "{\"metrics\":[],\"next_page_token\":\"t\"}"
        );
    }
}
