//! MLflow's validation rules and limits (`mlflow/utils/validation.py`), with
//! its error messages, so clients see what they would see from MLflow.
//!
//! Every failure is [`Error::InvalidParameter`] (`INVALID_PARAMETER_VALUE`).
//! Lengths are counted in characters (Unicode scalar values), as Python's
//! `len(str)` counts them, never in bytes.
//!
//! Python quirks kept on purpose, because MLflow has them:
//! - `\w` is Unicode-aware: any alphanumeric character counts, not only ASCII.
//! - A regex ending in `$` also matches before one trailing `\n`, so a name
//!   such as `"loss\n"` passes the character check (MLflow accepts it).

use crate::Error;
use crate::entities::Dataset;

/// Longest metric, param or run-tag key (`MAX_ENTITY_KEY_LENGTH`).
pub const MAX_KEY_LENGTH: usize = 250;
/// Param values longer than this are truncated (`MAX_PARAM_VAL_LENGTH`).
pub const MAX_PARAM_VALUE_LENGTH: usize = 6000;
/// Run-tag values longer than this are truncated (`MAX_TAG_VAL_LENGTH`).
pub const MAX_TAG_VALUE_LENGTH: usize = 8000;
/// Most metrics in one `LogBatch`.
pub const MAX_METRICS_PER_BATCH: usize = 1000;
/// Most params, and most tags, in one `LogBatch`.
pub const MAX_PARAMS_TAGS_PER_BATCH: usize = 100;
/// Most metrics, params and tags together in one `LogBatch`.
pub const MAX_ENTITIES_PER_BATCH: usize = 1000;
/// Largest `LogBatch` request body, in bytes.
pub const MAX_BATCH_LOG_REQUEST_SIZE: usize = 1_000_000;
/// Longest experiment name.
pub const MAX_EXPERIMENT_NAME_LENGTH: usize = 500;
/// Longest experiment-tag key.
pub const MAX_EXPERIMENT_TAG_KEY_LENGTH: usize = 250;
/// Longest experiment-tag value (not truncated: longer is refused).
pub const MAX_EXPERIMENT_TAG_VALUE_LENGTH: usize = 5000;
/// Longest registered-model or model-version tag key.
pub const MAX_MODEL_REGISTRY_TAG_KEY_LENGTH: usize = 250;
/// Longest registered-model or model-version tag value.
pub const MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH: usize = 100_000;
/// Longest dataset name.
pub const MAX_DATASET_NAME_SIZE: usize = 500;
/// Longest dataset digest.
pub const MAX_DATASET_DIGEST_SIZE: usize = 36;
/// Longest dataset schema (1 MB - 1).
pub const MAX_DATASET_SCHEMA_SIZE: usize = 1_048_575;
/// Longest dataset source (64 KB - 1).
pub const MAX_DATASET_SOURCE_SIZE: usize = 65_535;
/// Longest dataset profile (16 MB - 1).
pub const MAX_DATASET_PROFILE_SIZE: usize = 16_777_215;
/// Longest dataset-input tag key.
pub const MAX_INPUT_TAG_KEY_SIZE: usize = 255;
/// Longest dataset-input tag value.
pub const MAX_INPUT_TAG_VALUE_SIZE: usize = 500;
/// Longest registered-model alias.
pub const MAX_REGISTERED_MODEL_ALIAS_LENGTH: usize = 255;
/// Longest experiment artifact location (`MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH` default).
pub const MAX_ARTIFACT_LOCATION_LENGTH: usize = 2048;
/// Model-version tag holding a prompt's text; gets its own length message.
pub const PROMPT_TEXT_TAG_KEY: &str = "mlflow.prompt.text";

/// The hint MLflow's request parsing appends to its messages.
pub const API_DOCS_HINT: &str = "See the API docs for more information about request parameters.";

// ---------------------------------------------------------------------------
// Message builders (MLflow's `invalid_value`, `missing_value`, ...).

/// `invalid_value(path, value, message)` for a string value: the value is
/// rendered as Python's `json.dumps` renders it (ASCII-only, escaped).
pub fn invalid_value(path: &str, value: &str, message: Option<&str>) -> String {
    invalid_value_raw(path, &json_string(value), message)
}

/// `invalid_value` with a value that is already rendered (a number, say).
pub fn invalid_value_raw(path: &str, rendered: &str, message: Option<&str>) -> String {
    match message {
        Some(m) if !m.is_empty() => {
            format!("Invalid value {rendered} for parameter '{path}' supplied: {m}")
        }
        _ => format!("Invalid value {rendered} for parameter '{path}' supplied."),
    }
}

/// `missing_value(path)`.
pub fn missing_value(path: &str) -> String {
    format!("Missing value for required parameter '{path}'.")
}

/// `not_integer_value(path, value)`.
pub fn not_integer_value(path: &str, value: &str) -> String {
    format!("Parameter '{path}' must be an integer, got '{value}'.")
}

/// `exceeds_maximum_length(path, limit)`.
pub fn exceeds_maximum_length(path: &str, limit: usize) -> String {
    format!("'{path}' exceeds the maximum length of {limit} characters")
}

/// `append_to_json_path(current, value)`: `metrics[0]` + `name` is `metrics[0].name`.
pub fn append_to_json_path(current: &str, value: &str) -> String {
    if current.is_empty() {
        value.to_string()
    } else if value.starts_with('[') {
        format!("{current}{value}")
    } else {
        format!("{current}.{value}")
    }
}

/// `bad_character_message()` (the non-Windows text: colons are allowed).
pub fn bad_character_message() -> &'static str {
    "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), \
     spaces ( ), colon(:) and slashes (/)."
}

/// `bad_path_message(name)`.
pub fn bad_path_message(name: &str) -> String {
    format!(
        "Names may be treated as files in certain cases, and must not resolve to other names \
         when treated as such. This name would resolve to {}",
        python_repr(&posix_normpath(name))
    )
}

// ---------------------------------------------------------------------------
// Python emulation helpers.

/// Python's `json.dumps(s)` with its default `ensure_ascii=True`.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

/// Python's `repr(str)`: single quotes unless the text holds `'` and no `"`.
fn python_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `repr(float)`: shortest round-trip digits, `1.0`, `1e-05`, `1e+16`, `nan`, `inf`.
pub fn python_float_repr(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. `-1.25e-7`.
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci
        .split_once('e')
        .expect("LowerExp always has an exponent");
    let exp: i32 = exp.parse().expect("LowerExp exponent is an integer");
    let (sign, mantissa) = mantissa
        .strip_prefix('-')
        .map_or(("", mantissa), |m| ("-", m));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    let point = exp + 1; // digits before the decimal point
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{body}")
}

/// What a Python regex ending in `$` sees: the text less one trailing `\n`.
fn before_dollar(s: &str) -> &str {
    s.strip_suffix('\n').unwrap_or(s)
}

/// Python's `\w` on `str`: Unicode alphanumerics and `_`.
fn is_word_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Python's `posixpath.normpath`.
pub fn posix_normpath(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    // POSIX keeps exactly two leading slashes; three or more collapse to one.
    let initial_slashes = if path.starts_with("//") && !path.starts_with("///") {
        2
    } else if path.starts_with('/') {
        1
    } else {
        0
    };
    let mut comps: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        if comp.is_empty() || comp == "." {
            continue;
        }
        if comp != ".." || (initial_slashes == 0 && comps.is_empty()) || comps.last() == Some(&"..")
        {
            comps.push(comp);
        } else if !comps.is_empty() {
            comps.pop();
        }
    }
    let joined = format!("{}{}", "/".repeat(initial_slashes), comps.join("/"));
    if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

/// `path_not_unique(name)`: the name would resolve to some other file name.
pub fn path_not_unique(name: &str) -> bool {
    let norm = posix_normpath(name);
    norm != name || norm == "." || norm.starts_with("..") || norm.starts_with('/')
}

/// `validate_param_and_metric_name`: regex `^[/\w.\- :]*$`.
fn valid_entity_name(name: &str) -> bool {
    before_dollar(name)
        .chars()
        .all(|c| matches!(c, '/' | '.' | '-' | ' ' | ':') || is_word_char(c))
}

/// Python's `int(s)` for the ASCII forms: surrounding whitespace, a sign,
/// digits with single underscores between them. Out of `i64` range is refused.
fn python_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if body.is_empty() || body.starts_with('_') || body.ends_with('_') || body.contains("__") {
        return None;
    }
    let digits: String = body.chars().filter(|c| *c != '_').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let text = if neg { format!("-{digits}") } else { digits };
    text.parse().ok()
}

/// Character length, as Python's `len(str)`.
fn char_len(s: &str) -> usize {
    s.chars().count()
}

/// `s` cut to at most `limit` characters, never inside a character.
fn truncate_chars(s: &str, limit: usize) -> String {
    match s.char_indices().nth(limit) {
        Some((byte, _)) => s[..byte].to_string(),
        None => s.to_string(),
    }
}

/// `_validate_length_limit` without truncation.
fn check_length(entity: &str, limit: usize, value: &str) -> Result<(), Error> {
    // Byte length bounds character length: skip counting for short values.
    if value.len() > limit && char_len(value) > limit {
        return Err(Error::invalid(exceeds_maximum_length(entity, limit)));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Metrics, params and tags.

/// Checks a metric, param or run-tag key; `what` is `metric`, `param` or `tag`.
///
/// The error names the parameter as MLflow's single-entity endpoints do:
/// `name` for a metric, `key` otherwise. Use [`validate_key_at`] to name a
/// position in a batch (`metrics[3].name`).
pub fn validate_key(what: &str, key: &str) -> Result<(), Error> {
    let path = if what == "metric" { "name" } else { "key" };
    validate_key_at(what, key, path)
}

/// [`validate_key`] with the request path of the key, e.g. `params[0].key`.
pub fn validate_key_at(what: &str, key: &str, path: &str) -> Result<(), Error> {
    if key.is_empty() {
        // MLflow's request checks refuse an empty key before the store sees it.
        let field = if path == "name" {
            "key".to_string()
        } else {
            path.replace(".name", ".key")
        };
        return Err(Error::invalid(format!(
            "{} {API_DOCS_HINT}",
            missing_value(&field)
        )));
    }
    validate_tag_name_at(key, path)?;
    let entity = match what {
        "metric" => "Metric name",
        "param" => "Param key",
        _ => path,
    };
    check_length(entity, MAX_KEY_LENGTH, key)
}

/// `_validate_tag_name`: the character and file-name rules shared by every key.
fn validate_tag_name_at(name: &str, path: &str) -> Result<(), Error> {
    if !valid_entity_name(name) {
        return Err(Error::invalid(invalid_value(
            path,
            name,
            Some(bad_character_message()),
        )));
    }
    if path_not_unique(name) {
        return Err(Error::invalid(invalid_value(
            path,
            name,
            Some(&bad_path_message(name)),
        )));
    }
    Ok(())
}

/// Checks a metric's timestamp (MLflow: a nonnegative 64-bit integer).
pub fn validate_metric_timestamp(key: &str, value: f64, timestamp: i64) -> Result<(), Error> {
    validate_metric_timestamp_at(key, value, timestamp, "timestamp")
}

/// [`validate_metric_timestamp`] with the request path, e.g. `metrics[0].timestamp`.
pub fn validate_metric_timestamp_at(
    key: &str,
    value: f64,
    timestamp: i64,
    path: &str,
) -> Result<(), Error> {
    if timestamp < 0 {
        let msg = format!(
            "metric '{key}' (value={}). Timestamp must be a nonnegative long (64-bit integer) ",
            python_float_repr(value)
        );
        return Err(Error::invalid(invalid_value_raw(
            path,
            &timestamp.to_string(),
            Some(&msg),
        )));
    }
    Ok(())
}

/// `_validate_batch_log_limits`: per-kind and total counts of one `LogBatch`.
pub fn validate_batch_limits(metrics: usize, params: usize, tags: usize) -> Result<(), Error> {
    batch_limit("metrics", MAX_METRICS_PER_BATCH, metrics)?;
    batch_limit("params", MAX_PARAMS_TAGS_PER_BATCH, params)?;
    batch_limit("tags", MAX_PARAMS_TAGS_PER_BATCH, tags)?;
    batch_limit(
        "metrics, params, and tags",
        MAX_ENTITIES_PER_BATCH,
        metrics + params + tags,
    )
}

fn batch_limit(entity: &str, limit: usize, length: usize) -> Result<(), Error> {
    if length > limit {
        return Err(Error::invalid(format!(
            "A batch logging request can contain at most {limit} {entity}. Got {length} {entity}. \
             Please split up {entity} across multiple requests and try again."
        )));
    }
    Ok(())
}

/// `_validate_batch_log_api_req`: size of a `LogBatch` request body in bytes.
pub fn validate_batch_request_size(bytes: usize) -> Result<(), Error> {
    if bytes > MAX_BATCH_LOG_REQUEST_SIZE {
        return Err(Error::invalid(format!(
            "Batched logging API requests must be at most {MAX_BATCH_LOG_REQUEST_SIZE} bytes, \
             got a request of size {bytes}."
        )));
    }
    Ok(())
}

/// A param value cut to [`MAX_PARAM_VALUE_LENGTH`] characters, as MLflow
/// truncates (`MLFLOW_TRUNCATE_LONG_VALUES`, on by default).
pub fn truncate_param_value(value: &str) -> String {
    truncate_chars(value, MAX_PARAM_VALUE_LENGTH)
}

/// A run-tag value cut to [`MAX_TAG_VALUE_LENGTH`] characters.
pub fn truncate_tag_value(value: &str) -> String {
    truncate_chars(value, MAX_TAG_VALUE_LENGTH)
}

// ---------------------------------------------------------------------------
// Runs and experiments.

/// `_validate_run_id`: `^[a-zA-Z0-9][\w\-]{0,255}$`.
pub fn validate_run_id(run_id: &str) -> Result<(), Error> {
    if !matches_id(run_id, 255) {
        return Err(Error::invalid(invalid_value("run_id", run_id, None)));
    }
    Ok(())
}

/// `_validate_experiment_id`: `^[a-zA-Z0-9][\w\-]{0,63}$`.
pub fn validate_experiment_id(experiment_id: &str) -> Result<(), Error> {
    if !matches_id(experiment_id, 63) {
        return Err(Error::invalid(format!(
            "Invalid experiment ID: '{experiment_id}'"
        )));
    }
    Ok(())
}

/// `^[a-zA-Z0-9][\w\-]{0,max_rest}$`.
fn matches_id(id: &str, max_rest: usize) -> bool {
    let mut chars = before_dollar(id).chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    let mut n = 0;
    for c in chars {
        if !(is_word_char(c) || c == '-') {
            return false;
        }
        n += 1;
    }
    n <= max_rest
}

/// An experiment ID as the SQL store reads it: a (Python) integer.
pub fn parse_experiment_id(s: &str) -> Result<i64, Error> {
    python_int(s).ok_or_else(|| {
        Error::invalid(format!(
            "Invalid experiment ID '{s}'. Experiment ID must be a valid integer."
        ))
    })
}

/// `_validate_experiment_name`: not empty, at most 500 characters.
pub fn validate_experiment_name(name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::invalid(format!("Invalid experiment name: '{name}'")));
    }
    check_length("name", MAX_EXPERIMENT_NAME_LENGTH, name)
}

/// `_validate_experiment_tag`: key rules, key ≤ 250, value ≤ 5000 (refused, not cut).
pub fn validate_experiment_tag(key: &str, value: &str) -> Result<(), Error> {
    if key.is_empty() {
        return Err(Error::invalid(format!(
            "{} {API_DOCS_HINT}",
            missing_value("key")
        )));
    }
    validate_tag_name_at(key, "key")?;
    check_length("key", MAX_EXPERIMENT_TAG_KEY_LENGTH, key)?;
    check_length("value", MAX_EXPERIMENT_TAG_VALUE_LENGTH, value)
}

/// An experiment's requested `artifact_location`, checked as MLflow's
/// `CreateExperiment` handler and store check it: no URL fragment or
/// `;params`, no `..` in the (URL-decoded) query, not a `runs:` URI, and at
/// most 2048 characters.
pub fn validate_artifact_location(location: &str) -> Result<(), Error> {
    let parts = UrlParts::parse(location);
    if !parts.fragment.is_empty() || !parts.params.is_empty() {
        return Err(Error::invalid(
            "'artifact_location' URL can't include fragments or params.",
        ));
    }
    if url_decode_fully(parts.query).contains("..") {
        return Err(Error::invalid("Invalid query string"));
    }
    if location.starts_with("runs:") {
        return Err(Error::invalid(format!(
            "Artifact location cannot be a runs:/ URI. Given: '{location}'"
        )));
    }
    if char_len(location) > MAX_ARTIFACT_LOCATION_LENGTH {
        return Err(Error::invalid(format!(
            "Invalid artifact path length. The length of the artifact path cannot be greater than \
             {MAX_ARTIFACT_LOCATION_LENGTH} characters. To configure this limit, please set the \
             MLFLOW_ARTIFACT_LOCATION_MAX_LENGTH environment variable."
        )));
    }
    Ok(())
}

/// The pieces of Python's `urllib.parse.urlparse` these checks need.
struct UrlParts<'a> {
    params: &'a str,
    query: &'a str,
    fragment: &'a str,
}

impl<'a> UrlParts<'a> {
    fn parse(url: &'a str) -> Self {
        // Scheme: an ASCII letter, then letters, digits, `+`, `-`, `.`, then `:`.
        let mut scheme = "";
        let mut rest = url;
        if let Some(i) = url.find(':') {
            let cand = &url[..i];
            if cand.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
                && cand
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            {
                scheme = cand;
                rest = &url[i + 1..];
            }
        }
        if let Some(after) = rest.strip_prefix("//") {
            let end = after.find(['/', '?', '#']).unwrap_or(after.len());
            rest = &after[end..];
        }
        let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        const USES_PARAMS: [&str; 15] = [
            "", "ftp", "hdl", "prospero", "http", "imap", "https", "shttp", "rtsp", "rtspu", "sip",
            "sips", "mms", "sftp", "tel",
        ];
        let mut params = "";
        if USES_PARAMS.contains(&scheme.to_ascii_lowercase().as_str()) && path.contains(';') {
            let start = path.rfind('/').unwrap_or(0);
            if let Some(i) = path[start..].find(';') {
                params = &path[start + i + 1..];
            }
        }
        UrlParts {
            params,
            query,
            fragment,
        }
    }
}

/// Percent-decodes until the text stops changing (MLflow's `_decode`).
fn url_decode_fully(s: &str) -> String {
    let mut cur = s.to_string();
    for _ in 0..10 {
        let next = url_decode(&cur);
        if next == cur {
            break;
        }
        cur = next;
    }
    cur
}

fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------
// Datasets.

/// `_validate_dataset`: size limits of a logged dataset's fields.
pub fn validate_dataset(dataset: &Dataset) -> Result<(), Error> {
    check_length("name", MAX_DATASET_NAME_SIZE, &dataset.name)?;
    check_length("digest", MAX_DATASET_DIGEST_SIZE, &dataset.digest)?;
    check_length("source", MAX_DATASET_SOURCE_SIZE, &dataset.source)?;
    if let Some(schema) = &dataset.schema {
        check_length("schema", MAX_DATASET_SCHEMA_SIZE, schema)?;
    }
    if let Some(profile) = &dataset.profile {
        check_length("profile", MAX_DATASET_PROFILE_SIZE, profile)?;
    }
    Ok(())
}

/// `_validate_input_tag`: key ≤ 255, value ≤ 500.
pub fn validate_input_tag(key: &str, value: &str) -> Result<(), Error> {
    check_length("key", MAX_INPUT_TAG_KEY_SIZE, key)?;
    check_length("value", MAX_INPUT_TAG_VALUE_SIZE, value)
}

// ---------------------------------------------------------------------------
// Model registry.

/// `_validate_model_name`: not blank, no `/` or `:`, not a path that normalizes away.
pub fn validate_model_name(name: &str) -> Result<(), Error> {
    validate_model_name_at(name, "name")
}

/// `_validate_model_renaming`: [`validate_model_name`] for `new_name`.
pub fn validate_model_new_name(name: &str) -> Result<(), Error> {
    validate_model_name_at(name, "new_name")
}

fn validate_model_name_at(name: &str, missing_path: &str) -> Result<(), Error> {
    if name.trim().is_empty() {
        return Err(Error::invalid(missing_value(missing_path)));
    }
    if name.contains(['/', ':']) {
        return Err(Error::invalid(format!(
            "Invalid model name '{name}'. Names cannot contain '/' or ':'."
        )));
    }
    if path_not_unique(name) {
        return Err(Error::invalid(invalid_value(
            "name",
            name,
            Some(&bad_path_message(name)),
        )));
    }
    Ok(())
}

/// `_validate_model_version`: a model version number (a Python integer).
pub fn parse_model_version(version: &str) -> Result<i64, Error> {
    python_int(version).ok_or_else(|| Error::invalid(not_integer_value("version", version)))
}

/// `_validate_model_alias_name` then `_validate_model_alias_name_reserved`.
pub fn validate_model_alias(alias: &str) -> Result<(), Error> {
    validate_model_alias_name(alias)?;
    validate_model_alias_not_reserved(alias)
}

/// `_validate_model_alias_name`: not empty, `^[\w\-]*$`, at most 255 characters.
pub fn validate_model_alias_name(alias: &str) -> Result<(), Error> {
    if alias.is_empty() {
        return Err(Error::invalid(
            "Registered model alias name cannot be empty.",
        ));
    }
    if !before_dollar(alias)
        .chars()
        .all(|c| is_word_char(c) || c == '-')
    {
        return Err(Error::invalid(format!(
            "Invalid alias name: '{alias}'. Names may only contain alphanumerics, \
             underscores (_), and dashes (-)."
        )));
    }
    check_length(
        "Registered model alias name",
        MAX_REGISTERED_MODEL_ALIAS_LENGTH,
        alias,
    )
}

/// `_validate_model_alias_name_reserved`: not `latest`, not `v<digits>`.
pub fn validate_model_alias_not_reserved(alias: &str) -> Result<(), Error> {
    if alias.to_lowercase() == "latest" {
        return Err(Error::invalid(
            "'latest' alias name (case insensitive) is reserved.",
        ));
    }
    let body = before_dollar(alias);
    if let Some(digits) = body.strip_prefix(['v', 'V'])
        && !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
    {
        return Err(Error::invalid(format!(
            "Version alias name '{alias}' is reserved."
        )));
    }
    Ok(())
}

/// `_validate_registered_model_tag`: key rules, key ≤ 250, value ≤ 100000.
pub fn validate_registered_model_tag(key: &str, value: &str) -> Result<(), Error> {
    registry_tag_key(key)?;
    check_length("value", MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH, value)
}

/// `_validate_model_version_tag`: as a registered-model tag, with a message
/// of its own for an overlong prompt text.
pub fn validate_model_version_tag(key: &str, value: &str) -> Result<(), Error> {
    registry_tag_key(key)?;
    if key == PROMPT_TEXT_TAG_KEY && char_len(value) > MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH {
        return Err(Error::invalid(format!(
            "Prompt text exceeds max length of {MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH} characters."
        )));
    }
    check_length("value", MAX_MODEL_REGISTRY_TAG_VALUE_LENGTH, value)
}

fn registry_tag_key(key: &str) -> Result<(), Error> {
    if key.is_empty() {
        return Err(Error::invalid(format!(
            "{} {API_DOCS_HINT}",
            missing_value("key")
        )));
    }
    validate_tag_name_at(key, "key")?;
    check_length("key", MAX_MODEL_REGISTRY_TAG_KEY_LENGTH, key)
}

/// `_validate_tag_name` for a registry tag key being deleted.
pub fn validate_registry_tag_name(key: &str) -> Result<(), Error> {
    validate_tag_name_at(key, "key")
}

// ---------------------------------------------------------------------------
// Model version sources (MLflow's CVE-2023-1177 / 2356 / 2780 defences).

/// The tag that marks a registered model or version as a prompt.
pub const IS_PROMPT_TAG_KEY: &str = "mlflow.prompt.is_prompt";

/// Python's `unquote_plus`, repeated until the text stops changing, so that
/// `%252e%252e` and `%2e%2e` are both seen as `..`.
pub fn unquote_plus_fully(s: &str) -> String {
    let mut cur = s.to_string();
    // Each round removes at least one `%xx` or `+`, so the input length bounds it.
    loop {
        let next = url_decode(&cur.replace('+', " "));
        if next == cur {
            return cur;
        }
        cur = next;
    }
}

/// The scheme, authority and path of a URI, as `urllib.parse.urlparse`
/// splits them (query and fragment dropped; scheme lowercased).
pub fn split_uri(uri: &str) -> (String, &str, &str) {
    let mut scheme = String::new();
    let mut rest = uri;
    if let Some(i) = uri.find(':') {
        let cand = &uri[..i];
        if cand.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
            && cand
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            scheme = cand.to_ascii_lowercase();
            rest = &uri[i + 1..];
        }
    }
    let mut authority = "";
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        authority = &after[..end];
        rest = &after[end..];
    }
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    (scheme, authority, &rest[..end])
}

/// `is_local_uri`: a bare path or a `file:` URI on this host. A `file:` URI
/// naming another host is refused with MLflow's message.
pub fn is_local_uri(uri: &str) -> Result<bool, Error> {
    let (scheme, authority, _) = split_uri(uri);
    let host = authority.rsplit('@').next().unwrap_or("");
    let host = host.split(':').next().unwrap_or("").to_ascii_lowercase();
    let remote_host = !host.is_empty()
        && host != "."
        && !host.starts_with("localhost")
        && !host.starts_with("127.0.0.1");
    if scheme.is_empty() {
        return Ok(true);
    }
    if scheme == "file" {
        if remote_host {
            return Err(Error::invalid(format!(
                "{uri} is not a valid remote uri. For remote access on windows, please consider \
                 using a different scheme such as SMB (e.g. smb://<hostname>/<path>)."
            )));
        }
        return Ok(true);
    }
    Ok(false)
}

/// `_validate_non_local_source_contains_relative_paths`: after full
/// percent-decoding, the source's path has no `..` segment, no NUL, no
/// backslash, and is already absolute and normalized.
pub fn validate_source_has_no_relative_paths(source: &str) -> Result<(), Error> {
    let invalid = || {
        Error::invalid(format!(
            "Invalid model version source: '{source}'. If supplying a source as an http, https, \
             local file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must be \
             provided without relative path references present. Please provide an absolute path."
        ))
    };
    let decoded = unquote_plus_fully(source);
    if decoded.contains(['\0', '\\']) || decoded.split('/').any(|p| p == "..") {
        return Err(invalid());
    }
    let (_, _, path) = split_uri(&decoded);
    let mut collapsed = String::with_capacity(path.len());
    for c in path.trim_end_matches('/').chars() {
        if !(c == '/' && collapsed.ends_with('/')) {
            collapsed.push(c);
        }
    }
    // `pathlib.Path(p).resolve()` differs from `p` for relative paths (they
    // gain the working directory) and for `.` segments.
    if !collapsed.starts_with('/') || posix_normpath(&collapsed) != collapsed {
        return Err(invalid());
    }
    Ok(())
}

/// The schemes whose URIs name a host to connect to (MLflow 3.17's
/// `HOST_ADDRESSED_ARTIFACT_SCHEMES`, less `mlflow-artifacts`, which Sextant
/// reads as its own store whatever host it names).
const HOST_ADDRESSED_SCHEMES: [&str; 9] = [
    "ftp", "sftp", "hdfs", "viewfs", "http", "https", "r2", "b2", "abfss",
];

/// `_validate_artifact_uri_scheme` for a model version's source: a URI that
/// would make a reader connect to the host it names is refused, with
/// MLflow's message. `http(s)` URIs of the proxied-artifacts route are this
/// server's store, not another host, and are left to the containment check.
pub fn validate_source_scheme(source: &str) -> Result<(), Error> {
    let (scheme, _, path) = split_uri(source);
    if !HOST_ADDRESSED_SCHEMES.contains(&scheme.as_str()) {
        return Ok(());
    }
    if (scheme == "http" || scheme == "https")
        && path.contains("/api/2.0/mlflow-artifacts/artifacts")
    {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "'source' cannot use the '{scheme}' scheme: the '{scheme}' scheme addresses a host \
         other than the tracking server's configured artifact storage, so the server would \
         connect to the host named in the URI."
    )))
}

/// A prompt version's source must be a placeholder such as `dummy-source`
/// (MLflow's client sends exactly that): never a path or URI, so nothing
/// can later resolve it to files.
pub fn validate_prompt_source(source: &str) -> Result<(), Error> {
    let decoded = unquote_plus_fully(source);
    if decoded.is_empty()
        || decoded.starts_with('.')
        || decoded.contains(['/', '\\', ':', '\0', '~'])
    {
        return Err(Error::invalid(format!(
            "Invalid model version source: '{source}'. A prompt version's source must be a \
             placeholder name, not a path or URI."
        )));
    }
    Ok(())
}
