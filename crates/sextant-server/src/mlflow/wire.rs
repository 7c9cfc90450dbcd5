//! MLflow's wire conventions, both ways.
//!
//! In: a request message arrives as query parameters (GET; repeated keys are
//! repeated fields) or as a JSON body (every other verb). [`Fields`] holds
//! either as one JSON object and reads typed fields as protobuf's `ParseDict`
//! does: numbers may be strings and doubles may be `"NaN"`, but a string
//! field takes only a string (MLflow refuses `{"name": 123}` rather than
//! creating "123"), with MLflow's error messages and, inside repeated
//! messages, its field paths (`metrics[0].timestamp`).
//!
//! Out: proto-JSON. int64 as JSON numbers, doubles that are not finite as
//! strings, unset fields and empty repeated fields omitted.

use axum::extract::{FromRequest, Request};
use axum::http::{Method, header};
use bytes::Bytes;
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};
use sextant_core::entities::{Metric, Tag};

use crate::error::{ApiError, ErrorCode};

/// The largest JSON request body accepted (MLflow's log-batch limit is 1 MB
/// of JSON; experiment and dataset fields may be larger).
const MAX_JSON_BODY: usize = 16 * 1024 * 1024;

/// A request message as a JSON object, from the query string or the body.
#[derive(Debug, Default)]
pub struct Fields {
    map: Map<String, Value>,
    /// Where this message sits in the request (`""`, `metrics[0].`), so a
    /// message about one of its fields names it as MLflow does.
    at: String,
    /// Read from a query string, where every value is text: a single value
    /// of a repeated field is one item, and booleans are `true`/`false` in
    /// any case (MLflow's `_get_request_message` reads them so).
    query: bool,
}

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let query = req.uri().query().unwrap_or("").to_string();
        if req.method() == Method::GET && !query.is_empty() {
            return Ok(Fields::from_query(&query));
        }
        let JsonBody(body) = JsonBody::from_request(req, state).await?;
        if body.is_empty() {
            return Ok(Fields::from_query(&query));
        }
        Fields::from_json(&body)
    }
}

impl Fields {
    /// The fields of a JSON object (a body, or one message inside it).
    pub fn new(map: Map<String, Value>) -> Fields {
        Fields {
            map,
            ..Fields::default()
        }
    }

    /// The fields of a query string.
    pub fn from_query(query: &str) -> Fields {
        Fields {
            map: parse_query(query),
            at: String::new(),
            query: true,
        }
    }

    /// A message inside this one, at `at` (`metrics[0].`).
    fn nested(&self, map: Map<String, Value>, at: String) -> Fields {
        Fields {
            map,
            at,
            query: false,
        }
    }

    /// The raw value of a field, for handlers that read a shape of their own.
    pub fn raw(&self, name: &str) -> Option<&Value> {
        self.get(name)
    }

    /// The name of field `name` as MLflow's messages write it (`tags[0].key`).
    pub fn path(&self, name: &str) -> String {
        format!("{}{name}", self.at)
    }

    /// MLflow's message for field `name` holding `v`, of the wrong type.
    pub fn invalid(&self, name: &str, v: &Value) -> ApiError {
        invalid_value(&self.path(name), v)
    }

    /// MLflow's message for required field `name`, missing or empty.
    pub fn missing(&self, name: &str) -> ApiError {
        ApiError::missing(&self.path(name))
    }

    /// The fields of a JSON object body.
    pub fn from_json(body: &[u8]) -> Result<Fields, ApiError> {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Fields::new(map)),
            Ok(_) => Err(ApiError::new(
                ErrorCode::BadRequest,
                "request body must be a JSON object",
            )),
            Err(e) => Err(ApiError::new(
                ErrorCode::BadRequest,
                format!("request body is not valid JSON: {e}"),
            )),
        }
    }
}

/// A request body that is JSON (or empty), not parsed yet: for handlers
/// that deserialize it into their own types. Empty when the body is blank.
pub struct JsonBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let json_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.trim()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
        let body = axum::body::to_bytes(req.into_body(), MAX_JSON_BODY)
            .await
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::RequestLimitExceeded,
                    format!("request body is larger than {MAX_JSON_BODY} bytes"),
                )
            })?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(Bytes::new()));
        }
        if json_type == Some(false) {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                "Bad Request. Content-Type must be one of ['application/json'].",
            ));
        }
        Ok(JsonBody(body))
    }
}

/// Query parameters as a JSON object; a repeated key becomes an array.
fn parse_query(query: &str) -> Map<String, Value> {
    let mut map = Map::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode_component(k);
        let v = Value::String(decode_component(v));
        match map.get_mut(&k) {
            Some(Value::Array(items)) => items.push(v),
            Some(first) => {
                let first = first.take();
                map.insert(k, Value::Array(vec![first, v]));
            }
            None => {
                map.insert(k, v);
            }
        }
    }
    map
}

fn decode_component(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Python's name for a JSON value's type, as MLflow's messages show it.
fn py_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// MLflow's message for a field of the wrong type.
pub fn invalid_value(field: &str, v: &Value) -> ApiError {
    ApiError::invalid(format!(
        "Invalid value {v} for parameter '{field}' supplied:  Hint: Value was of type '{}'. \
         See the API docs for more information about request parameters.",
        py_type(v)
    ))
}

impl Fields {
    fn get(&self, name: &str) -> Option<&Value> {
        match self.map.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    /// Whether the field is present (even if empty).
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// An optional string field: a JSON string and nothing else, as
    /// protobuf's parser reads a `string` field.
    pub fn opt_str(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.invalid(name, v)),
        }
    }

    /// An optional enum field, by name or by number (proto-JSON allows
    /// both), as text for the enum's own `parse`.
    pub fn opt_enum(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Some(n.to_string())),
            Some(v) => Err(self.invalid(name, v)),
        }
    }

    /// A required string field; empty counts as missing, as in MLflow.
    pub fn req_str(&self, name: &str) -> Result<String, ApiError> {
        match self.opt_str(name)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(self.missing(name)),
        }
    }

    /// The first present of several spellings (`run_id`, then `run_uuid`).
    pub fn req_str_any(&self, names: &[&str]) -> Result<String, ApiError> {
        for name in names {
            if let Some(s) = self.opt_str(name)?
                && !s.is_empty()
            {
                return Ok(s);
            }
        }
        Err(self.missing(names[0]))
    }

    /// An optional int64 field; integral numbers and numeric strings are accepted.
    pub fn opt_i64(&self, name: &str) -> Result<Option<i64>, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let parsed = match v {
            Value::Number(n) => n.as_i64().or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                    .map(|f| f as i64)
            }),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        parsed.map(Some).ok_or_else(|| self.invalid(name, v))
    }

    /// A required int64 field.
    pub fn req_i64(&self, name: &str) -> Result<i64, ApiError> {
        self.opt_i64(name)?.ok_or_else(|| self.missing(name))
    }

    /// An optional double; `"NaN"`, `"Infinity"` and `"-Infinity"` are accepted.
    pub fn opt_f64(&self, name: &str) -> Result<Option<f64>, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let parsed = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => parse_double(s),
            _ => None,
        };
        parsed.map(Some).ok_or_else(|| self.invalid(name, v))
    }

    /// An optional boolean: a JSON boolean in a body; `true`/`false` in any
    /// case in a query string, with MLflow's message for anything else.
    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        match v {
            Value::Bool(b) => Ok(Some(*b)),
            Value::String(s) if self.query => match s.to_ascii_lowercase().as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                _ => Err(ApiError::invalid(format!(
                    "Invalid boolean value: {s}, must be 'true' or 'false'."
                ))),
            },
            _ => Err(self.invalid(name, v)),
        }
    }

    /// A repeated string field: a JSON array of strings (in a query string
    /// a single value is one item).
    pub fn str_list(&self, name: &str) -> Result<Vec<String>, ApiError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) if self.query => Ok(vec![s.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(self.invalid(name, v)),
                })
                .collect(),
            Some(v) => Err(self.invalid(name, v)),
        }
    }

    /// A repeated message field, each item as its own [`Fields`] at
    /// `name[i].`.
    pub fn messages(&self, name: &str) -> Result<Vec<Fields>, ApiError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::Object(m) => {
                        Ok(self.nested(m.clone(), format!("{}[{i}].", self.path(name))))
                    }
                    _ => Err(self.invalid(name, v)),
                })
                .collect(),
            Some(v) => Err(self.invalid(name, v)),
        }
    }

    /// An optional message field, at `name.`.
    pub fn message(&self, name: &str) -> Result<Option<Fields>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(
                self.nested(m.clone(), format!("{}.", self.path(name))),
            )),
            Some(v) => Err(self.invalid(name, v)),
        }
    }

    /// A repeated `{key, value}` field (tags, params); `key` is required.
    pub fn tags(&self, name: &str) -> Result<Vec<Tag>, ApiError> {
        self.messages(name)?
            .iter()
            .map(|t| {
                Ok(Tag::new(
                    t.req_str("key")?,
                    t.opt_str("value")?.unwrap_or_default(),
                ))
            })
            .collect()
    }

    /// A metric message (`LogMetric`'s body or an item of `LogBatch.metrics`):
    /// `key`, `value` and `timestamp` required, checked in MLflow's order.
    pub fn metric(&self) -> Result<Metric, ApiError> {
        let key = self.req_str("key")?;
        let value = self
            .opt_f64("value")?
            .ok_or_else(|| self.missing("value"))?;
        let timestamp = self.req_i64("timestamp")?;
        let step = self.opt_i64("step")?.unwrap_or(0);
        let mut metric = Metric::new(key, value, timestamp, step);
        metric.model_id = self.opt_str("model_id")?.filter(|s| !s.is_empty());
        metric.dataset_name = self.opt_str("dataset_name")?.filter(|s| !s.is_empty());
        metric.dataset_digest = self.opt_str("dataset_digest")?.filter(|s| !s.is_empty());
        Ok(metric)
    }
}

fn parse_double(s: &str) -> Option<f64> {
    match s.trim() {
        "NaN" | "nan" => Some(f64::NAN),
        "Infinity" | "inf" | "Inf" => Some(f64::INFINITY),
        "-Infinity" | "-inf" | "-Inf" => Some(f64::NEG_INFINITY),
        other => other.parse::<f64>().ok().filter(|f| f.is_finite()),
    }
}

/// A double read as protobuf's JSON parser reads it: a number, or a string
/// holding one (`"1.5"`, `"NaN"`, `"Infinity"`).
#[derive(Debug, Clone, Copy)]
pub struct LenientF64(pub f64);

impl<'de> serde::Deserialize<'de> for LenientF64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = LenientF64;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E>(self, v: f64) -> Result<LenientF64, E> {
                Ok(LenientF64(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<LenientF64, E> {
                Ok(LenientF64(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<LenientF64, E> {
                Ok(LenientF64(v as f64))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<LenientF64, E> {
                parse_double(v)
                    .map(LenientF64)
                    .ok_or_else(|| E::custom("not a number"))
            }
        }
        d.deserialize_any(V)
    }
}

/// An int64 read as protobuf's JSON parser reads it: an integral number, or
/// a string holding one.
#[derive(Debug, Clone, Copy)]
pub struct LenientI64(pub i64);

impl<'de> serde::Deserialize<'de> for LenientI64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = LenientI64;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E>(self, v: i64) -> Result<LenientI64, E> {
                Ok(LenientI64(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<LenientI64, E> {
                i64::try_from(v)
                    .map(LenientI64)
                    .map_err(|_| E::custom("out of range"))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<LenientI64, E> {
                if v.fract() == 0.0 && v.abs() < 9.2e18 {
                    Ok(LenientI64(v as i64))
                } else {
                    Err(E::custom("not an integer"))
                }
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<LenientI64, E> {
                v.trim()
                    .parse()
                    .map(LenientI64)
                    .map_err(|_| E::custom("not an integer"))
            }
        }
        d.deserialize_any(V)
    }
}

/// A JSON object built field by field, omitting what proto-JSON omits.
#[derive(Debug, Default)]
pub struct Obj(Map<String, Value>);

impl Obj {
    pub fn new() -> Self {
        Obj(Map::new())
    }
    /// Sets a field.
    pub fn set(mut self, key: &str, v: impl Into<Value>) -> Self {
        self.0.insert(key.to_string(), v.into());
        self
    }
    /// Sets a field when the value is present.
    pub fn opt(self, key: &str, v: Option<impl Into<Value>>) -> Self {
        match v {
            Some(v) => self.set(key, v),
            None => self,
        }
    }
    /// Sets a repeated field unless it is empty.
    pub fn list(self, key: &str, items: Vec<Value>) -> Self {
        if items.is_empty() {
            self
        } else {
            self.set(key, Value::Array(items))
        }
    }
    /// Sets a message field unless it is empty.
    pub fn nonempty(self, key: &str, v: Obj) -> Self {
        if v.0.is_empty() {
            self
        } else {
            self.set(key, v)
        }
    }
}

impl From<Obj> for Value {
    fn from(o: Obj) -> Value {
        Value::Object(o.0)
    }
}

/// A handler's answer: a JSON object.
pub type Reply = Result<axum::Json<Value>, ApiError>;

/// Wraps an object as a reply.
pub fn reply(o: Obj) -> Reply {
    Ok(axum::Json(o.into()))
}

/// The empty reply `{}`.
pub fn empty() -> Reply {
    reply(Obj::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_become_fields_with_repeated_keys() {
        let f = Fields::from_query("run_ids=a&run_ids=b&metric_key=my+key%2Fx&max_results=10");
        assert_eq!(f.str_list("run_ids").unwrap(), vec!["a", "b"]);
        assert_eq!(f.req_str("metric_key").unwrap(), "my key/x");
        assert_eq!(f.opt_i64("max_results").unwrap(), Some(10));
        assert_eq!(f.str_list("absent").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn lenient_numbers_and_mlflow_messages() {
        let f = Fields::new(
            serde_json::json!({"a": "NaN", "b": "1.5", "c": "abc", "d": 3.0, "e": "", "t": true})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert!(f.opt_f64("a").unwrap().unwrap().is_nan());
        assert_eq!(f.opt_f64("b").unwrap(), Some(1.5));
        let err = f.opt_f64("c").unwrap_err();
        assert!(
            err.message
                .contains("Invalid value \"abc\" for parameter 'c'"),
            "{}",
            err.message
        );
        assert_eq!(f.opt_i64("d").unwrap(), Some(3));
        assert!(
            f.req_str("e")
                .unwrap_err()
                .message
                .contains("Missing value for required parameter 'e'")
        );
        assert_eq!(f.opt_bool("t").unwrap(), Some(true));
    }
}
