//! Request parameters as MLflow's server reads them: the query string for GET,
//! a JSON body otherwise. Typed getters give MLflow's 400 messages for
//! missing or mistyped fields; int64 accepts numbers and strings; doubles
//! accept "NaN"/"Infinity"; snake_case and lowerCamel names are both read.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::{Method, Request, header};
use serde_json::{Map, Value};

use crate::error::GatewayError;

/// Largest JSON nesting accepted (resource-exhaustion guard).
const MAX_JSON_DEPTH: usize = 32;

/// The parameters of one request.
#[derive(Debug, Clone)]
pub enum Params {
    /// GET: each key with its values in order.
    Query(HashMap<String, Vec<String>>),
    /// Anything else: the JSON object body.
    Json(Map<String, Value>),
}

/// Request body limit, stored in the router's extensions.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

fn python_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

fn wrong_type(name: &str, value: &Value) -> GatewayError {
    let shown = match value {
        Value::String(s) => format!("\"{}\"", s.chars().take(100).collect::<String>()),
        other => other.to_string().chars().take(100).collect(),
    };
    GatewayError::invalid(format!(
        "Invalid value {shown} for parameter '{name}' supplied: Hint: Value was of type '{}'. See the API docs for more information about request parameters.",
        python_type(value)
    ))
}

fn missing(name: &str) -> GatewayError {
    GatewayError::invalid(format!(
        "Missing value for required parameter '{name}'. See the API docs for more information about request parameters."
    ))
}

fn camel_case(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.contains('_') {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

fn depth(value: &Value) -> usize {
    // Iterative so hostile nesting cannot overflow the stack.
    let mut max = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((value, level)) = stack.pop() {
        max = max.max(level);
        if level > MAX_JSON_DEPTH {
            break;
        }
        match value {
            Value::Array(items) => stack.extend(items.iter().map(|v| (v, level + 1))),
            Value::Object(map) => stack.extend(map.values().map(|v| (v, level + 1))),
            _ => {}
        }
    }
    max
}

impl Params {
    /// Parses a JSON body: empty or unparseable is `{}`; a JSON string holding
    /// JSON is decoded again (old clients double-encode).
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Params, GatewayError> {
        let mut value: Value = serde_json::from_slice(bytes).unwrap_or(Value::Object(Map::new()));
        if let Value::String(inner) = &value {
            value = serde_json::from_str(inner).unwrap_or(Value::Object(Map::new()));
        }
        if depth(&value) > MAX_JSON_DEPTH {
            return Err(GatewayError::invalid("Request JSON is nested too deeply."));
        }
        match value {
            Value::Object(map) => Ok(Params::Json(map)),
            _ => Ok(Params::Json(Map::new())),
        }
    }

    /// Parses a query string.
    pub fn from_query(query: &str) -> Params {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            map.entry(key.into_owned())
                .or_default()
                .push(value.into_owned());
        }
        Params::Query(map)
    }

    /// Wraps a JSON object (entries of repeated message fields).
    fn from_object(map: Map<String, Value>) -> Params {
        Params::Json(map)
    }

    fn json_value(&self, name: &str) -> Result<Option<&Value>, GatewayError> {
        let Params::Json(map) = self else {
            return Ok(None);
        };
        let snake = map.get(name).filter(|v| !v.is_null());
        let camel_name = camel_case(name);
        let camel = if camel_name == name {
            None
        } else {
            map.get(camel_name.as_ref()).filter(|v| !v.is_null())
        };
        match (snake, camel) {
            (Some(_), Some(_)) => Err(GatewayError::invalid(format!(
                "Field '{name}' was given twice, as '{name}' and '{camel_name}'."
            ))),
            (value, None) | (None, value) => Ok(value),
        }
    }

    fn query_values(&self, name: &str) -> Option<&Vec<String>> {
        match self {
            Params::Query(map) => map.get(name).or_else(|| map.get(camel_case(name).as_ref())),
            Params::Json(_) => None,
        }
    }

    /// An optional string field; empty counts as absent.
    pub fn opt_str(&self, name: &str) -> Result<Option<String>, GatewayError> {
        if let Some(values) = self.query_values(name) {
            return Ok(values.last().filter(|v| !v.is_empty()).cloned());
        }
        match self.json_value(name)? {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(wrong_type(name, other)),
        }
    }

    /// A string field that may be empty but must have the right type.
    pub fn str_or_empty(&self, name: &str) -> Result<String, GatewayError> {
        Ok(self.opt_str(name)?.unwrap_or_default())
    }

    /// A required, non-empty string field.
    pub fn required_str(&self, name: &str) -> Result<String, GatewayError> {
        self.opt_str(name)?.ok_or_else(|| missing(name))
    }

    /// A string field present in the request, even if empty (tag values).
    pub fn required_present_str(&self, name: &str) -> Result<String, GatewayError> {
        if let Some(values) = self.query_values(name) {
            return values.last().cloned().ok_or_else(|| missing(name));
        }
        match self.json_value(name)? {
            None => Err(missing(name)),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(wrong_type(name, other)),
        }
    }

    /// A string field that may be absent (`None`) or present and empty.
    pub fn opt_present_str(&self, name: &str) -> Result<Option<String>, GatewayError> {
        if let Some(values) = self.query_values(name) {
            return Ok(values.last().cloned());
        }
        match self.json_value(name)? {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(wrong_type(name, other)),
        }
    }

    /// The run id, from `run_id` or the deprecated `run_uuid` (`run_id` wins).
    pub fn run_id(&self) -> Result<String, GatewayError> {
        match self.opt_str("run_id")? {
            Some(id) => Ok(id),
            None => self.opt_str("run_uuid")?.ok_or_else(|| missing("run_id")),
        }
    }

    /// An optional int64 (JSON number or numeric string).
    pub fn opt_i64(&self, name: &str) -> Result<Option<i64>, GatewayError> {
        if let Some(values) = self.query_values(name) {
            let Some(text) = values.last().filter(|v| !v.is_empty()) else {
                return Ok(None);
            };
            return text
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| wrong_type(name, &Value::String(text.clone())));
        }
        match self.json_value(name)? {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(value) => Ok(Some(value)),
                None => Err(wrong_type(name, &Value::Number(n.clone()))),
            },
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => s
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| wrong_type(name, &Value::String(s.clone()))),
            Some(other) => Err(wrong_type(name, other)),
        }
    }

    /// An optional int32.
    pub fn opt_i32(&self, name: &str) -> Result<Option<i32>, GatewayError> {
        match self.opt_i64(name)? {
            None => Ok(None),
            Some(value) => i32::try_from(value)
                .map(Some)
                .map_err(|_| wrong_type(name, &Value::from(value))),
        }
    }

    /// A required double: a JSON number, or "NaN", "Infinity", "-Infinity" or a numeric string.
    pub fn required_f64(&self, name: &str) -> Result<f64, GatewayError> {
        let parse = |text: &str, original: &Value| -> Result<f64, GatewayError> {
            match text.trim() {
                "NaN" | "nan" => Ok(f64::NAN),
                "Infinity" | "inf" | "+Infinity" => Ok(f64::INFINITY),
                "-Infinity" | "-inf" => Ok(f64::NEG_INFINITY),
                other => other.parse::<f64>().map_err(|_| wrong_type(name, original)),
            }
        };
        if let Some(values) = self.query_values(name) {
            let text = values.last().ok_or_else(|| missing(name))?;
            return parse(text, &Value::String(text.clone()));
        }
        match self.json_value(name)? {
            None => Err(missing(name)),
            Some(Value::Number(n)) => n
                .as_f64()
                .ok_or_else(|| wrong_type(name, &Value::Number(n.clone()))),
            Some(value @ Value::String(s)) => parse(s, value),
            Some(other) => Err(wrong_type(name, other)),
        }
    }

    /// A list of strings (repeated query keys, or a JSON array; a single value
    /// is a one-element list).
    pub fn str_list(&self, name: &str) -> Result<Vec<String>, GatewayError> {
        if let Some(values) = self.query_values(name) {
            return Ok(values.clone());
        }
        match self.json_value(name)? {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(wrong_type(name, other)),
                })
                .collect(),
            Some(other) => Err(wrong_type(name, other)),
        }
    }

    /// A repeated message field: each entry must be a JSON object.
    pub fn objects(&self, name: &str) -> Result<Vec<Params>, GatewayError> {
        match self.json_value(name)? {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::Object(map) => Ok(Params::from_object(map.clone())),
                    other => Err(wrong_type(name, other)),
                })
                .collect(),
            Some(other) => Err(wrong_type(name, other)),
        }
    }

    /// [`Params::objects`], moving the entries out of the body instead of
    /// copying them (a 1000-point log-batch holds 1000 of them).
    pub fn take_objects(&mut self, name: &str) -> Result<Vec<Params>, GatewayError> {
        // Type and "given twice" checks first, as `objects` makes them.
        if self.json_value(name)?.is_none() {
            return Ok(Vec::new());
        }
        let Params::Json(map) = self else {
            return Ok(Vec::new());
        };
        let value = match map.remove(name) {
            Some(value) if !value.is_null() => value,
            _ => map.remove(camel_case(name).as_ref()).unwrap_or(Value::Null),
        };
        match value {
            Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::Object(map) => Ok(Params::from_object(map)),
                    other => Err(wrong_type(name, &other)),
                })
                .collect(),
            other => Err(wrong_type(name, &other)),
        }
    }

    /// A nested message field.
    pub fn object(&self, name: &str) -> Result<Option<Params>, GatewayError> {
        match self.json_value(name)? {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Params::from_object(map.clone()))),
            Some(other) => Err(wrong_type(name, other)),
        }
    }

    /// An enum given by name (or number); unknown names are ignored like MLflow does.
    pub fn opt_enum(
        &self,
        name: &str,
        by_name: impl Fn(&str) -> Option<i32>,
    ) -> Result<Option<i32>, GatewayError> {
        if let Some(values) = self.query_values(name) {
            return Ok(values
                .last()
                .and_then(|text| by_name(text).or_else(|| text.parse::<i32>().ok())));
        }
        match self.json_value(name)? {
            None => Ok(None),
            Some(Value::String(text)) => Ok(by_name(text).or_else(|| text.parse::<i32>().ok())),
            Some(Value::Number(n)) => Ok(n.as_i64().and_then(|v| i32::try_from(v).ok())),
            Some(other) => Err(wrong_type(name, other)),
        }
    }

    /// An optional boolean (`true`/`false` only).
    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, GatewayError> {
        if let Some(values) = self.query_values(name) {
            return match values.last().map(String::as_str) {
                None | Some("") => Ok(None),
                Some("true" | "True") => Ok(Some(true)),
                Some("false" | "False") => Ok(Some(false)),
                Some(_) => Err(GatewayError::invalid("Invalid boolean value")),
            };
        }
        match self.json_value(name)? {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(wrong_type(name, other)),
        }
    }
}

fn is_json_content_type(value: Option<&header::HeaderValue>) -> Result<(), GatewayError> {
    let Some(value) = value else {
        return Err(GatewayError::invalid(
            "Bad Request. Content-Type header is missing.",
        ));
    };
    let media_type = value
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media_type == "application/json" {
        Ok(())
    } else {
        Err(GatewayError::invalid(
            "Bad Request. Content-Type must be one of ['application/json'].",
        ))
    }
}

/// The raw body of a JSON request (a POST, PUT or PATCH must say
/// `application/json`), within the router's [`BodyLimit`].
#[derive(Debug, Clone)]
pub struct JsonBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = GatewayError;

    async fn from_request(request: Request<Body>, _state: &S) -> Result<JsonBody, GatewayError> {
        if matches!(
            *request.method(),
            Method::POST | Method::PUT | Method::PATCH
        ) {
            is_json_content_type(request.headers().get(header::CONTENT_TYPE))?;
        }
        let limit = request
            .extensions()
            .get::<BodyLimit>()
            .map_or(16 * 1024 * 1024, |limit| limit.0);
        let bytes = axum::body::to_bytes(request.into_body(), limit)
            .await
            .map_err(|_| {
                GatewayError::invalid(format!("Request body is larger than {limit} bytes."))
            })?;
        Ok(JsonBody(bytes))
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = GatewayError;

    async fn from_request(request: Request<Body>, state: &S) -> Result<Params, GatewayError> {
        if request.method() == Method::GET {
            return Ok(Params::from_query(request.uri().query().unwrap_or("")));
        }
        let JsonBody(bytes) = JsonBody::from_request(request, state).await?;
        Params::from_json_bytes(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Params {
        Params::from_json_bytes(text.as_bytes()).unwrap()
    }

    #[test]
    fn int64_accepts_numbers_and_strings() {
        let p = json(r#"{"a": 5, "b": "7", "c": 1.5, "d": "x"}"#);
        assert_eq!(p.opt_i64("a").unwrap(), Some(5));
        assert_eq!(p.opt_i64("b").unwrap(), Some(7));
        assert!(p.opt_i64("c").is_err());
        assert!(p.opt_i64("d").is_err());
        assert_eq!(p.opt_i64("missing").unwrap(), None);
    }

    #[test]
    fn doubles_accept_non_finite_strings() {
        let p = json(r#"{"a": "NaN", "b": "-Infinity", "c": 2, "d": [1]}"#);
        assert!(p.required_f64("a").unwrap().is_nan());
        assert_eq!(p.required_f64("b").unwrap(), f64::NEG_INFINITY);
        assert_eq!(p.required_f64("c").unwrap(), 2.0);
        assert!(p.required_f64("d").is_err());
    }

    #[test]
    fn wrong_types_get_mlflow_messages() {
        let p = json(r#"{"name": 123}"#);
        let error = p.required_str("name").unwrap_err();
        assert_eq!(
            error.0.message,
            "Invalid value 123 for parameter 'name' supplied: Hint: Value was of type 'int'. See the API docs for more information about request parameters."
        );
        let error = json("{}").required_str("name").unwrap_err();
        assert!(
            error
                .0
                .message
                .starts_with("Missing value for required parameter 'name'")
        );
    }

    #[test]
    fn taken_objects_answer_as_copied_ones() {
        let body = r#"{"metrics": [{"key": "a", "value": 1}, {"key": "b", "value": 2}], "datasetInputs": [{"k": 1}]}"#;
        let mut p = json(body);
        let copied: Vec<String> = p
            .objects("metrics")
            .unwrap()
            .iter()
            .map(|m| m.required_str("key").unwrap())
            .collect();
        let taken: Vec<String> = p
            .take_objects("metrics")
            .unwrap()
            .iter()
            .map(|m| m.required_str("key").unwrap())
            .collect();
        assert_eq!(copied, vec!["a", "b"]);
        assert_eq!(taken, copied);
        assert!(p.take_objects("metrics").unwrap().is_empty());
        assert_eq!(p.take_objects("dataset_inputs").unwrap().len(), 1);
        for bad in [r#"{"metrics": 3}"#, r#"{"metrics": [3]}"#] {
            let expected = json(bad).objects("metrics").unwrap_err().0.message;
            let got = json(bad).take_objects("metrics").unwrap_err().0.message;
            assert_eq!(got, expected);
        }
        let twice = r#"{"model_id": [], "modelId": []}"#;
        assert!(json(twice).take_objects("model_id").is_err());
    }

    #[test]
    fn camel_case_is_accepted_but_not_twice() {
        assert_eq!(
            json(r#"{"experimentId": "3"}"#)
                .required_str("experiment_id")
                .unwrap(),
            "3"
        );
        assert!(
            json(r#"{"experimentId": "3", "experiment_id": "3"}"#)
                .required_str("experiment_id")
                .is_err()
        );
    }

    #[test]
    fn garbage_and_double_encoded_bodies() {
        assert!(json("{not json").opt_str("name").unwrap().is_none());
        assert_eq!(
            json(r#""{\"name\": \"x\"}""#).required_str("name").unwrap(),
            "x"
        );
    }

    #[test]
    fn deep_json_is_rejected() {
        let deep = "[".repeat(100) + &"]".repeat(100);
        let body = format!(r#"{{"a": {deep}}}"#);
        assert!(Params::from_json_bytes(body.as_bytes()).is_err());
    }

    #[test]
    fn query_lists_and_run_id_fallback() {
        let p = Params::from_query("run_ids=a&run_ids=b&run_uuid=u");
        assert_eq!(p.str_list("run_ids").unwrap(), vec!["a", "b"]);
        assert_eq!(p.run_id().unwrap(), "u");
        let p = Params::from_query("run_uuid=u&run_id=r");
        assert_eq!(p.run_id().unwrap(), "r");
    }

    #[test]
    fn non_object_batch_entries_are_400() {
        let p = json(r#"{"params": ["x"]}"#);
        assert!(p.objects("params").is_err());
    }
}
