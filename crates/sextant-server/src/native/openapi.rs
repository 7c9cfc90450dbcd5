//! The OpenAPI 3.1 document of the native API, written by hand. A unit test
//! keeps it and the route table in step.

mod audit;
mod session;
mod tokens;

use axum::Json;
use serde_json::{Value, json};

/// A gateway report's latency histogram: one count per bucket, plus +Inf.
const LATENCY_COUNTS: usize = sextant_serving::stats::LATENCY_BUCKETS.len() + 1;

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<Value> {
    Json(spec())
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn ok(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": schema_ref(schema) } }
    })
}

fn error(description: &str) -> Value {
    ok(description, "Error")
}

fn path_param(name: &str, description: &str, ty: &str) -> Value {
    json!({
        "name": name, "in": "path", "required": true,
        "description": description, "schema": { "type": ty }
    })
}

fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

fn required_query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": true, "description": description, "schema": schema })
}

fn json_body(schema: &str) -> Value {
    json!({
        "required": true,
        "content": { "application/json": { "schema": schema_ref(schema) } }
    })
}

fn nullable(ty: &str) -> Value {
    json!({ "type": [ty, "null"] })
}

fn epoch_ms(description: &str) -> Value {
    json!({ "type": "integer", "description": format!("{description}, milliseconds since the Unix epoch") })
}

fn rfc3339(description: &str) -> Value {
    json!({ "type": "string", "format": "date-time", "description": format!("{description}, RFC 3339 in UTC") })
}

fn string_map(description: &str, values: &str) -> Value {
    json!({ "type": "object", "description": description, "additionalProperties": { "type": values } })
}

/// The whole document: the operations as written below, the API tokens'
/// and the audit log's, plus the refusals every operation of a kind shares (see
/// [`add_shared_refusals`]).
pub fn spec() -> Value {
    let mut doc = operations();
    tokens::add(&mut doc);
    session::add(&mut doc);
    audit::add(&mut doc);
    add_shared_refusals(&mut doc);
    doc
}

/// Statuses that come from the shared layers rather than the handler, added to
/// every operation they apply to so each operation lists all it can answer:
/// - 400 wherever there is a path parameter, a query parameter or a body to get
///   wrong (a malformed value is refused before the handler looks it up);
/// - 401, 403 and 429 on every operation of a server started with `--auth`
///   (`auth/`): no or bad credentials, a capability or token scope lacking,
///   too many failed logins;
/// - 403 and 415 on every state-changing operation (POST, PUT, PATCH, DELETE), from the request guard
///   (`security.rs`): a cross-site `Origin`, or a missing or wrong `Content-Type`.
///
/// A POST that takes no input still needs `Content-Type: application/json` (the
/// guard refuses it otherwise, so that a cross-site form cannot trigger it): it
/// is documented with a body of `{}`, which the handler ignores.
fn add_shared_refusals(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for ops in paths.values_mut() {
        let Some(ops) = ops.as_object_mut() else {
            continue;
        };
        for (method, op) in ops.iter_mut() {
            if method == "post" && op.get("requestBody").is_none() {
                op["requestBody"] = json!({
                    "required": true,
                    "description": "`{}`: the call takes no input, but must say it sends JSON",
                    "content": { "application/json": { "schema": { "type": "object", "maxProperties": 0 } } }
                });
            }
            let takes_input = op.get("requestBody").is_some()
                || op["parameters"].as_array().is_some_and(|p| !p.is_empty());
            let changes_state = matches!(method.as_str(), "post" | "put" | "patch" | "delete");
            let responses = op["responses"]
                .as_object_mut()
                .expect("every operation has responses");
            if takes_input {
                responses
                    .entry("400")
                    .or_insert_with(|| error("A malformed path parameter, query or body"));
            }
            responses.entry("401").or_insert_with(|| {
                error("With `--auth`: no credentials, or wrong ones (`UNAUTHENTICATED`)")
            });
            responses.entry("429").or_insert_with(|| {
                error("With `--auth`: too many failed logins from this source or for this user; retry after `Retry-After` seconds (`RESOURCE_EXHAUSTED`)")
            });
            let forbidden = if changes_state {
                "With `--auth`: the caller lacks the capability, or its token's scope excludes the operation; \
                 or a cross-site `Origin` that is not in `--allowed-origins` (`PERMISSION_DENIED`)"
            } else {
                "With `--auth`: the caller lacks the capability, or its token's scope excludes the operation (`PERMISSION_DENIED`)"
            };
            responses.entry("403").or_insert_with(|| error(forbidden));
            if changes_state {
                responses.entry("415").or_insert_with(|| {
                    error("A missing or unaccepted `Content-Type` (`UNSUPPORTED_MEDIA_TYPE`)")
                });
            }
        }
    }
}

/// The operations and schemas as written by hand.
fn operations() -> Value {
    let name = path_param("name", "Registered model name", "string");
    let version = json!({
        "name": "version", "in": "path", "required": true,
        "description": "Version number", "schema": { "type": "integer", "minimum": 1 }
    });
    let alias = json!({
        "name": "alias", "in": "path", "required": true,
        "description": "Alias name: letters, digits, `_` and `-`, at most 255",
        "schema": { "type": "string", "pattern": "^[A-Za-z0-9_-]{1,255}$" }
    });
    let pipeline = path_param("name", "Pipeline name", "string");
    let run_id = path_param("id", "Pipeline run id", "string");
    let step = path_param("step", "Step name", "string");
    let task_id = path_param("id", "Queue task id", "integer");
    let endpoint = path_param("name", "Endpoint name", "string");
    let monitor = path_param("name", "Monitor name", "string");
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Sextant native API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "What the MLflow-compatible API lacks: approvals, the events feed and pipelines. \
                Errors are JSON objects with `error_code` and `message`; a 4xx is a client mistake. \
                On a server started with `--auth` every call authenticates, with HTTP Basic or an API token."
        },
        // Either scheme when authentication is on; none when it is off.
        "security": [{}, { "basic": [] }, { "bearer": [] }],
        "paths": {
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document",
                    "responses": { "200": { "description": "The OpenAPI document", "content": { "application/json": { "schema": { "type": "object" } } } } }
                }
            },
            "/api/v1/models": {
                "get": {
                    "operationId": "listModels",
                    "summary": "List registered models by name",
                    "parameters": [
                        query_param("filter", "MLflow search filter over registered models, such as `name LIKE 'fraud%'`", json!({"type": "string"})),
                        query_param("max_results", "Page size (1 to 1000, default 100)", json!({"type": "integer", "minimum": 1, "maximum": 1000})),
                        query_param("page_token", "`next_page_token` of the previous page", json!({"type": "string"}))
                    ],
                    "responses": { "200": ok("A page of models", "ModelPage"), "400": error("Bad filter, page size or token") }
                }
            },
            "/api/v1/models/{name}": {
                "get": {
                    "operationId": "getModel",
                    "summary": "A registered model with all its versions, newest first",
                    "parameters": [name],
                    "responses": { "200": ok("The model", "ModelDetail"), "404": error("No such model") }
                }
            },
            "/api/v1/models/{name}/versions/{version}": {
                "get": {
                    "operationId": "getModelVersion",
                    "summary": "One model version",
                    "parameters": [name, version],
                    "responses": { "200": ok("The version", "ModelVersion"), "400": error("Bad version number"), "404": error("No such version") }
                }
            },
            "/api/v1/models/{name}/versions/{version}/lineage": {
                "get": {
                    "operationId": "getModelVersionLineage",
                    "summary": "Where a version came from and where it serves: its run, the pipeline run and step behind it, the event that started that pipeline, the monitor run behind the event, and the endpoints serving it now",
                    "description": "With authentication on, READ on the model is needed, and each link (run and step, pipeline run, event, monitor run, endpoint) is given only to a caller who may read what it leads to; the others come back null or are left out of the endpoints.",
                    "parameters": [name, version],
                    "responses": { "200": ok("The lineage", "Lineage"), "400": error("Bad version number"), "404": error("No such version") }
                }
            },
            "/api/v1/models/{name}/versions/{version}/approval": {
                "post": {
                    "operationId": "setApproval",
                    "summary": "Record an approval decision on a version",
                    "description": "With `--auth` the caller decides and needs MANAGE on the model; under four-eyes (the model's `require_distinct_approver`, on by default) nobody approves a version they created, admins included.",
                    "parameters": [
                        name, version,
                        { "name": "X-Sextant-Actor", "in": "header", "required": false,
                          "description": "Without `--auth`: who decides, when the body has no `actor` (default `anonymous`); ignored with `--auth`",
                          "schema": { "type": "string" } }
                    ],
                    "requestBody": json_body("ApprovalRequest"),
                    "responses": { "200": ok("The version with its new approval", "ModelVersion"), "400": error("Bad status or body"), "403": error("With `--auth`: the caller lacks MANAGE on the model or its token's scope excludes the operation; the caller created the version and the model requires a distinct approver (four-eyes); the caller is a pipeline step; or a cross-site `Origin` that is not in `--allowed-origins` (`PERMISSION_DENIED`)"), "404": error("No such version"), "409": error("The version is already approved or rejected and `force` is not set (`RESOURCE_CONFLICT`)") }
                }
            },
            "/api/v1/models/{name}/approval-settings": {
                "patch": {
                    "operationId": "setModelApprovalSettings",
                    "summary": "Change a model's approval settings: those the body names change, the others keep their value",
                    "parameters": [name],
                    "requestBody": json_body("ApprovalSettingsRequest"),
                    "responses": { "200": ok("Every setting, as it now is", "ApprovalSettings"), "404": error("No such model") }
                }
            },
            "/api/v1/models/{name}/aliases/{alias}": {
                "put": {
                    "operationId": "setAlias",
                    "summary": "Point an alias at a version",
                    "parameters": [name, alias],
                    "requestBody": json_body("AliasRequest"),
                    "responses": { "200": ok("The alias", "Alias"), "400": error("Reserved alias or bad body"), "404": error("No such model or version") }
                },
                "delete": {
                    "operationId": "deleteAlias",
                    "summary": "Remove an alias",
                    "parameters": [name, alias],
                    "responses": { "204": { "description": "Removed, or was not set (as MLflow answers)" }, "400": error("Bad model or alias name"), "404": error("No such model") }
                }
            },
            "/api/v1/runs/keys": {
                "get": {
                    "operationId": "listRunKeys",
                    "summary": "The distinct metric, param or tag keys of an experiment's runs, sorted, optionally only those containing a text (case-insensitive): a column chooser's search over thousands of keys",
                    "parameters": [
                        required_query_param("experiment_id", "The experiment", json!({"type": "string", "pattern": "^[0-9]+$"})),
                        required_query_param("kind", "Which keys", json!({"enum": ["metrics", "params", "tags"]})),
                        query_param("contains", "Only keys containing this text, ignoring case", json!({"type": "string"})),
                        query_param("max_results", "Most keys listed (1 to 100000, default 1000)", json!({"type": "integer", "minimum": 1, "maximum": 100000}))
                    ],
                    "responses": { "200": ok("The keys", "RunKeys"), "400": error("Bad experiment id, kind or max_results"), "404": error("No such experiment") }
                }
            },
            "/api/v1/filters/check": {
                "get": {
                    "operationId": "checkFilter",
                    "summary": "Whether a search filter parses for an entity; if not, the message its search would answer and where in the filter the error is (characters from 0), for a filter box to mark",
                    "parameters": [
                        required_query_param("kind", "The entity searched", json!({"enum": ["runs", "experiments", "registered_models", "model_versions", "logged_models"]})),
                        required_query_param("filter", "The filter, in MLflow's search grammar", json!({"type": "string"}))
                    ],
                    "responses": { "200": ok("The verdict", "FilterCheck"), "400": error("Bad kind") }
                }
            },
            "/api/v1/runs/metric-summaries": {
                "get": {
                    "operationId": "getMetricSummaries",
                    "summary": "For each run named and each key (every key of the run when none is named), the latest value with its step and time and the smallest and largest value ever logged (NaN skipped; NaN when every value is NaN): what a runs table shows for its page",
                    "parameters": [
                        {
                            "name": "run_id", "in": "query", "required": true, "style": "form", "explode": true,
                            "description": "A run, repeated for each (1 to 100 distinct runs); with authentication, each must be readable",
                            "schema": { "type": "array", "items": { "type": "string" }, "minItems": 1, "maxItems": 100 }
                        },
                        {
                            "name": "key", "in": "query", "required": false, "style": "form", "explode": true,
                            "description": "A metric key, repeated for each (at most 100); none means every key",
                            "schema": { "type": "array", "items": { "type": "string" }, "maxItems": 100 }
                        }
                    ],
                    "responses": { "200": ok("One entry a run and key, by run id and key; a key a run never logged has none", "MetricSummaries"), "400": error("No run_id, more than 100 runs or keys, or an unknown parameter"), "404": error("No such run") }
                }
            },
            "/api/v1/events": {
                "get": {
                    "operationId": "listEvents",
                    "summary": "Lifecycle events after a cursor, oldest first; long-polls with `wait`",
                    "parameters": [
                        query_param("after", "Return events with a greater id: an id, or `latest` for only new ones (default 0)", json!({"type": "string"})),
                        query_param("kinds", "Comma-separated kinds; `model_version.*` matches a prefix (default all)", json!({"type": "string"})),
                        query_param("limit", "Page size (1 to 1000, default 100)", json!({"type": "integer", "minimum": 1, "maximum": 1000})),
                        query_param("wait", "Seconds to wait for an event when there is none yet (0 to 60, default 0)", json!({"type": "integer", "minimum": 0, "maximum": 60}))
                    ],
                    "responses": { "200": ok("A page of events", "EventPage"), "400": error("Bad cursor, kinds, limit or wait") }
                }
            },
            "/api/v1/pipelines": {
                "get": {
                    "operationId": "listPipelines",
                    "summary": "Stored pipelines by name",
                    "parameters": [
                        query_param("max_results", "Page size (1 to 1000, default 100)", json!({"type": "integer", "minimum": 1, "maximum": 1000})),
                        query_param("offset", "`next_offset` of the previous page", json!({"type": "integer", "minimum": 0}))
                    ],
                    "responses": { "200": ok("A page of pipelines", "PipelinePage"), "400": error("Bad page size") }
                }
            },
            "/api/v1/pipelines/{name}": {
                "put": {
                    "operationId": "applyPipeline",
                    "summary": "Validate a pipeline file and store it under its name",
                    "parameters": [pipeline],
                    "requestBody": { "required": true, "content": { "application/yaml": { "schema": { "type": "string" } } } },
                    "responses": { "200": ok("What storing it did", "ApplyResult"), "400": error("The file is invalid: one `file:line:col: message` per line") }
                },
                "get": {
                    "operationId": "getPipeline",
                    "summary": "A stored pipeline with its YAML",
                    "parameters": [pipeline],
                    "responses": { "200": ok("The pipeline", "Pipeline"), "404": error("No such pipeline") }
                }
            },
            "/api/v1/pipelines/{name}/runs": {
                "post": {
                    "operationId": "startPipelineRun",
                    "summary": "Start a run; parameters are checked against the pipeline's declared types",
                    "parameters": [pipeline],
                    "requestBody": json_body("RunRequest"),
                    "responses": { "201": ok("The new run", "PipelineRun"), "400": error("Unknown, missing or mistyped parameter"), "404": error("No such pipeline") }
                }
            },
            "/api/v1/pipeline-runs": {
                "get": {
                    "operationId": "listPipelineRuns",
                    "summary": "Pipeline runs, newest first",
                    "parameters": [
                        query_param("pipeline", "Only runs of this pipeline", json!({"type": "string"})),
                        query_param("status", "Only runs in this status (any case)", json!({"enum": ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"]})),
                        query_param("max_results", "Page size (1 to 1000, default 100)", json!({"type": "integer", "minimum": 1, "maximum": 1000})),
                        query_param("offset", "`next_offset` of the previous page", json!({"type": "integer", "minimum": 0}))
                    ],
                    "responses": { "200": ok("A page of runs", "PipelineRunPage"), "400": error("Bad status or page size") }
                }
            },
            "/api/v1/pipeline-runs/{id}": {
                "get": {
                    "operationId": "getPipelineRun",
                    "summary": "A pipeline run and each of its steps",
                    "parameters": [run_id],
                    "responses": { "200": ok("The run", "PipelineRunDetail"), "404": error("No such run") }
                }
            },
            "/api/v1/pipeline-runs/{id}/cancel": {
                "post": {
                    "operationId": "cancelPipelineRun",
                    "summary": "Cancel a run: queued steps never start, running ones are killed",
                    "parameters": [run_id],
                    "responses": { "200": ok("The cancelled run", "PipelineRun"), "400": error("The run already ended"), "404": error("No such run") }
                }
            },
            "/api/v1/pipeline-runs/{id}/steps/{step}/cache": {
                "get": {
                    "operationId": "explainStepCache",
                    "summary": "Why a step was or was not reused from the cache: its key, the reason, and which parts of the key changed since the execution before",
                    "parameters": [run_id, step],
                    "responses": { "200": ok("The explanation", "CacheExplanation"), "404": error("No such run or step") }
                }
            },
            "/api/v1/pipeline-runs/{id}/retry": {
                "post": {
                    "operationId": "retryPipelineRun",
                    "summary": "Resume a FAILED or CANCELLED run in place: succeeded steps keep their results, failed and cancelled ones run again, the same run goes on",
                    "parameters": [run_id],
                    "responses": {
                        "200": ok("The resumed run, RUNNING again", "PipelineRun"),
                        "404": error("No such run"),
                        "409": error("The run is live or succeeded, every step already succeeded, or a step is still being stopped (`RESOURCE_CONFLICT`)")
                    }
                }
            },
            "/api/v1/pipeline-runs/{id}/logs": {
                "get": {
                    "operationId": "getPipelineStepLog",
                    "summary": "A step's captured stdout or stderr from an offset; poll with `next_offset` until `finished` to follow a live step",
                    "parameters": [
                        run_id,
                        { "name": "step", "in": "query", "required": true, "description": "The step", "schema": { "type": "string", "minLength": 1 } },
                        query_param("stream", "`stdout` (default) or `stderr`", json!({"enum": ["stdout", "stderr"]})),
                        query_param("offset", "Byte offset to read from (default 0)", json!({"type": "integer", "minimum": 0})),
                        query_param("attempt", "Attempt of the step's current task (default the latest)", json!({"type": "integer", "minimum": 1})),
                        query_param("max_bytes", "At most this many bytes (1 to 1048576, default 1048576)", json!({"type": "integer", "minimum": 1, "maximum": 1_048_576}))
                    ],
                    "responses": { "200": ok("A piece of the log", "StepLog"), "400": error("Missing step, bad stream, attempt or size"), "404": error("No such run or step") }
                }
            },
            "/api/v1/endpoints": {
                "get": {
                    "operationId": "listEndpoints",
                    "summary": "Every serving endpoint with its deployed models, rollout, traffic history and live counters",
                    "responses": { "200": ok("The endpoints", "EndpointList") }
                }
            },
            "/api/v1/endpoints/{name}": {
                "put": {
                    "operationId": "applyEndpoint",
                    "summary": "Create an endpoint or update its definition; a variant whose model changed is rolled out by the definition's policy (all_at_once, canary, linear, blue_green) with automatic rollback on alarms",
                    "parameters": [endpoint],
                    "requestBody": json_body("EndpointSpec"),
                    "responses": {
                        "200": ok("Updated", "Endpoint"), "201": ok("Created", "Endpoint"),
                        "400": error("A bad definition, an unknown model, or a model that does not load"),
                        "409": error("A rollout is in progress (`RESOURCE_CONFLICT`)")
                    }
                },
                "get": {
                    "operationId": "getEndpoint",
                    "summary": "An endpoint",
                    "parameters": [endpoint],
                    "responses": { "200": ok("The endpoint", "Endpoint"), "404": error("No such endpoint") }
                },
                "delete": {
                    "operationId": "deleteEndpoint",
                    "summary": "Stop serving an endpoint and forget it",
                    "parameters": [endpoint],
                    "responses": { "200": ok("Deleted", "Empty"), "404": error("No such endpoint") }
                }
            },
            "/api/v1/endpoints/{name}/promote": {
                "post": {
                    "operationId": "promoteEndpointRollout",
                    "summary": "Give the rollout's new model all of its variant's traffic now",
                    "parameters": [endpoint],
                    "responses": { "200": ok("Promoted", "Endpoint"), "404": error("No such endpoint"), "409": error("No rollout in progress") }
                }
            },
            "/api/v1/endpoints/{name}/rollback": {
                "post": {
                    "operationId": "rollBackEndpointRollout",
                    "summary": "Return the rollout's traffic to the stable model now",
                    "parameters": [endpoint],
                    "responses": { "200": ok("Rolled back", "Endpoint"), "404": error("No such endpoint"), "409": error("No rollout in progress") }
                }
            },
            "/api/v1/endpoints/{name}/traffic": {
                "get": {
                    "operationId": "getEndpointTraffic",
                    "summary": "Each variant's request rate, error rate, rejected rate and latency over the last hour, between consecutive samples of every gateway's counters (taken every 10 s by this server, kept in its memory: a restart starts afresh)",
                    "parameters": [endpoint],
                    "responses": { "200": ok("The traffic per variant", "EndpointTraffic"), "404": error("No such endpoint") }
                }
            },
            "/api/v1/endpoints/{name}/gateway-stats": {
                "post": {
                    "operationId": "reportGatewayStats",
                    "summary": "A separate gateway's cumulative counters per variant (what `sextant gateway` sends every poll), so rollout alarms judge its traffic too",
                    "parameters": [endpoint],
                    "requestBody": json_body("GatewayStats"),
                    "responses": { "204": { "description": "Recorded" }, "400": error("A malformed report"), "404": error("No such endpoint") }
                }
            },
            "/api/v1/endpoints/{name}/ground-truth": {
                "post": {
                    "operationId": "uploadGroundTruth",
                    "summary": "Labels for captured predictions, joined on the caller's inference id (`X-Inference-Id` at invocation) by model-quality monitors; stored as SageMaker ground-truth records",
                    "parameters": [endpoint],
                    "requestBody": json_body("GroundTruth"),
                    "responses": { "200": ok("Stored", "GroundTruthStored"), "400": error("A record without inference_id or label"), "404": error("No such endpoint") }
                }
            },
            "/api/v1/monitors": {
                "get": {
                    "operationId": "listMonitors",
                    "summary": "Every monitor with its latest run",
                    "responses": { "200": ok("The monitors", "MonitorList") }
                }
            },
            "/api/v1/monitors/{name}": {
                "put": {
                    "operationId": "applyMonitor",
                    "summary": "Create or replace a monitor: an endpoint's capture or a data set, a baseline (statistics.json + constraints.json), a cron schedule, a window, and its checks (data quality, drift, model quality)",
                    "parameters": [monitor],
                    "requestBody": json_body("MonitorSpec"),
                    "responses": { "200": ok("Replaced", "Monitor"), "201": ok("Created", "Monitor"), "400": error("A bad definition or an unknown endpoint") }
                },
                "get": {
                    "operationId": "getMonitor",
                    "summary": "A monitor and its latest run",
                    "parameters": [monitor],
                    "responses": { "200": ok("The monitor", "Monitor"), "404": error("No such monitor") }
                },
                "delete": {
                    "operationId": "deleteMonitor",
                    "summary": "Forget a monitor and its runs (their files stay in the artifact store)",
                    "parameters": [monitor],
                    "responses": { "200": ok("Deleted", "Empty"), "404": error("No such monitor") }
                }
            },
            "/api/v1/monitors/{name}/runs": {
                "post": {
                    "operationId": "runMonitor",
                    "summary": "Check a window now (default: the monitor's window up to now) and answer with the ended run; a violation appends `monitor.violation`",
                    "parameters": [monitor],
                    "requestBody": json_body("MonitorRunRequest"),
                    "responses": { "201": ok("The ended run (Completed, CompletedWithViolations or Failed)", "MonitorRun"), "400": error("A bad window"), "404": error("No such monitor"), "409": error("A run of this monitor is in progress") }
                },
                "get": {
                    "operationId": "listMonitorRuns",
                    "summary": "A monitor's runs, newest first",
                    "parameters": [monitor, query_param("max_results", "At most this many (1 to 10000, default 100)", json!({"type": "integer", "minimum": 1, "maximum": 10_000}))],
                    "responses": { "200": ok("The runs", "MonitorRunList"), "400": error("Bad page size"), "404": error("No such monitor") }
                }
            },
            "/api/v1/monitor-runs/{id}": {
                "get": {
                    "operationId": "getMonitorRun",
                    "summary": "A monitor run with its summary: rows, violations, drift per feature, model quality, file paths",
                    "parameters": [path_param("id", "Monitor run id", "string")],
                    "responses": { "200": ok("The run", "MonitorRun"), "404": error("No such run") }
                }
            },
            "/api/v1/monitor-runs/{id}/files/{file}": {
                "get": {
                    "operationId": "getMonitorRunFile",
                    "summary": "One file of a run: report.html, statistics.json, constraint_violations.json, drift.json, model_quality.json or window.csv",
                    "parameters": [path_param("id", "Monitor run id", "string"), {
                        "name": "file", "in": "path", "required": true, "description": "File name",
                        "schema": { "enum": ["report.html", "statistics.json", "constraint_violations.json", "drift.json", "model_quality.json", "window.csv"] }
                    }],
                    "responses": { "200": { "description": "The file" }, "400": error("Unknown file name"), "404": error("No such run, or the run wrote no such file") }
                }
            },
            "/api/v1/tasks/claim": {
                "post": {
                    "operationId": "claimTask",
                    "summary": "For `sextant worker`: wait up to `wait_ms` (30 s at most) for a queued step and claim it under a lease; the server runs control steps itself and decides the cache first",
                    "requestBody": json_body("ClaimRequest"),
                    "responses": { "200": ok("`{\"task\": <work order>}`, or `{\"task\": null}` when none came", "ClaimResult"), "400": error("Bad worker name or lease"), "503": error("The orchestrator is not running") }
                }
            },
            "/api/v1/tasks/{id}/heartbeat": {
                "post": {
                    "operationId": "renewTaskLease",
                    "summary": "Renew a claimed task's lease under its fencing token",
                    "parameters": [task_id],
                    "requestBody": json_body("HeartbeatRequest"),
                    "responses": { "200": ok("Renewed", "Empty"), "404": error("No such task"), "409": error("The task is no longer held under this token (re-claimed or cancelled): stop the step") }
                }
            },
            "/api/v1/tasks/{id}/outcome": {
                "post": {
                    "operationId": "reportTaskOutcome",
                    "summary": "Record a claimed task's result (outputs already published by digest) or failure under its fencing token",
                    "parameters": [task_id],
                    "requestBody": json_body("OutcomeRequest"),
                    "responses": { "200": ok("Recorded", "Empty"), "404": error("No such task"), "409": error("The task is no longer held under this token: the outcome is dropped") }
                }
            }
        },
        "components": {
          "securitySchemes": {
            "basic": { "type": "http", "scheme": "basic", "description": "A user's name and password (MLFLOW_TRACKING_USERNAME/PASSWORD)" },
            "bearer": { "type": "http", "scheme": "bearer", "description": "An API token from `sextant tokens create` or POST /api/v1/tokens (MLFLOW_TRACKING_TOKEN)" }
          },
          "schemas": {
            "Empty": { "type": "object" },
            "EndpointSpec": {
                "type": "object", "additionalProperties": false, "required": ["variants"],
                "properties": {
                    "variants": { "type": "array", "items": { "type": "object", "required": ["model"], "properties": {
                        "name": { "type": "string", "default": "primary" },
                        "model": { "type": "string", "description": "models:/<name>/<version>, models:/<name>@<alias> or a local MLflow model directory" },
                        "runtime": { "enum": ["onnx", "process"] },
                        "weight": { "type": "number", "minimum": 0 },
                        "max_concurrency": { "type": "integer", "minimum": 1 }
                    } } },
                    "shadow": { "type": "object", "required": ["model"], "description": "{name, model, runtime, sampling_percent}" },
                    "capture": { "type": "object", "description": "{sampling_percent, mode: input|output|input_and_output}" },
                    "rollout": { "type": "object", "description": "{strategy: all_at_once|canary|linear|blue_green, percent, bake, interval, alarms: {max_error_rate, max_error_rate_increase, max_p99_ms, max_p99_ratio, max_rejected_rate, min_requests}}" },
                    "follow": { "type": "object", "required": ["model"], "description": "{model, alias} or {model, approved: true}: deploy new versions by themselves" }
                }
            },
            "Endpoint": {
                "type": "object", "required": ["name", "status", "spec", "deployed", "traffic", "stats"],
                "properties": {
                    "name": { "type": "string" },
                    "status": { "enum": ["in_service", "updating", "failed"] },
                    "spec": schema_ref("EndpointSpec"),
                    "deployed": { "type": "object", "description": "The stable model of each variant" },
                    "rollout": { "type": ["object", "null"], "description": "The rollout in progress, with time_left_ms (until its bake ends or its next step) and counters {new, stable: {requests, errors, rejected, p99_ms}} since it began" },
                    "past_rollouts": { "type": "array", "items": { "type": "object" }, "description": "Ended rollouts, newest last, each with its final counters" },
                    "traffic": { "type": "array", "items": { "type": "object" }, "description": "Every traffic split installed: time, time_rfc3339, split, reason" },
                    "stats": { "type": "array", "items": { "type": "object" }, "description": "Counters of the variants served now: requests, errors (model failures), rejected (refused at the concurrency limit), client_errors, in_flight, p50_ms, p99_ms" },
                    "warnings": { "type": "array", "items": { "type": "string" }, "description": "After a PUT: what the caller should know, e.g. a version rolled out without approval" },
                    "url": { "type": "string" }
                }
            },
            "EndpointList": {
                "type": "object", "required": ["endpoints"],
                "properties": { "endpoints": { "type": "array", "items": schema_ref("Endpoint") } }
            },
            "EndpointTraffic": {
                "type": "object", "required": ["name", "sample_every_ms", "samples_kept", "since", "variants"],
                "properties": {
                    "name": { "type": "string" },
                    "sample_every_ms": { "type": "integer" },
                    "samples_kept": { "type": "integer" },
                    "since": { "type": ["integer", "null"], "description": "When the first sample kept was taken (epoch ms); null before any" },
                    "since_rfc3339": { "type": ["string", "null"] },
                    "variants": { "type": "array", "items": {
                        "type": "object", "required": ["variant", "shadow", "points"],
                        "properties": {
                            "variant": { "type": "string" }, "shadow": { "type": "boolean" },
                            "points": { "type": "array", "description": "One per interval between samples, oldest first", "items": {
                                "type": "object",
                                "required": ["start_ms", "end_ms", "end_rfc3339", "requests", "errors", "client_errors", "rejected", "requests_per_s", "error_rate", "rejected_rate", "p50_ms", "p99_ms"],
                                "properties": {
                                    "start_ms": { "type": "integer" }, "end_ms": { "type": "integer" }, "end_rfc3339": { "type": "string" },
                                    "requests": { "type": "integer" }, "errors": { "type": "integer" },
                                    "client_errors": { "type": "integer" }, "rejected": { "type": "integer" },
                                    "requests_per_s": { "type": "number" },
                                    "error_rate": { "type": ["number", "null"], "description": "errors / answered requests (routed minus rejected); null with none answered" },
                                    "rejected_rate": { "type": ["number", "null"], "description": "rejected / routed requests; null with none" },
                                    "p50_ms": { "type": ["number", "null"] }, "p99_ms": { "type": ["number", "null"], "description": "Upper bound of the latency bucket holding the quantile" }
                                }
                            } }
                        }
                    } }
                }
            },
            "GatewayStats": {
                "type": "object", "required": ["gateway", "variants"],
                "properties": {
                    "gateway": { "type": "string", "minLength": 1, "maxLength": 200, "description": "The reporting gateway's id, unique per process" },
                    "variants": { "type": "array", "items": {
                        "type": "object",
                        "required": ["name", "shadow", "requests", "errors", "client_errors", "rejected", "in_flight", "latency"],
                        "properties": {
                            "name": { "type": "string" }, "shadow": { "type": "boolean" },
                            "requests": { "type": "integer", "description": "Routed to the variant, rejected ones included" },
                            "errors": { "type": "integer", "description": "Failed by the model: 5xx, timeouts, model failures; not rejections" },
                            "client_errors": { "type": "integer" },
                            "rejected": { "type": "integer", "description": "Refused with 503 at the variant's concurrency limit" },
                            "in_flight": { "type": "integer" },
                            "latency": { "type": "object", "required": ["counts", "sum_seconds"], "properties": {
                                "counts": { "type": "array", "items": { "type": "integer", "minimum": 0 }, "minItems": LATENCY_COUNTS, "maxItems": LATENCY_COUNTS, "description": "Per latency bucket (50 µs … 30 s) plus +Inf, not cumulative" },
                                "sum_seconds": { "type": "number", "minimum": 0 }
                            } }
                        }
                    } }
                }
            },
            "GroundTruth": {
                "type": "object", "required": ["records"],
                "properties": { "records": { "type": "array", "items": {
                    "type": "object", "required": ["inference_id", "label"],
                    "properties": { "inference_id": { "type": "string" }, "label": { "type": ["number", "string", "boolean"] } }
                } } }
            },
            "GroundTruthStored": {
                "type": "object",
                "properties": { "stored": { "type": "integer" }, "path": { "type": "string" } }
            },
            "MonitorSpec": {
                "type": "object",
                "properties": {
                    "endpoint": { "type": "string" }, "variants": { "type": "array", "items": { "type": "string" } },
                    "data": { "type": "string" }, "baseline": { "type": "string" },
                    "schedule": { "type": "string", "description": "Five-field cron, UTC" },
                    "window": { "type": "string", "description": "e.g. 10m, 1h" },
                    "min_rows": { "type": "integer" }, "data_quality": { "type": "boolean" },
                    "drift": { "type": "object" }, "model_quality": { "type": "object" }
                }
            },
            "Monitor": {
                "type": "object",
                "properties": { "name": { "type": "string" }, "spec": schema_ref("MonitorSpec"), "last_run": { "type": ["object", "null"] } }
            },
            "MonitorList": {
                "type": "object", "required": ["monitors"],
                "properties": { "monitors": { "type": "array", "items": schema_ref("Monitor") } }
            },
            "MonitorRunRequest": {
                "type": "object", "additionalProperties": false,
                "properties": { "window_start": { "type": "integer" }, "window_end": { "type": "integer" }, "window": { "type": "string" } }
            },
            "MonitorRun": {
                "type": "object",
                "properties": {
                    "id": { "type": "string" }, "monitor": { "type": "string" },
                    "status": { "type": "string", "enum": ["InProgress", "Completed", "CompletedWithViolations", "Failed"] },
                    "trigger": { "type": "string" }, "window_start": { "type": "integer" }, "window_end": { "type": "integer" },
                    "error": { "type": ["string", "null"] }, "summary": { "type": "object" }, "report_url": { "type": "string" }
                }
            },
            "MonitorRunList": {
                "type": "object", "required": ["runs"],
                "properties": { "runs": { "type": "array", "items": schema_ref("MonitorRun") } }
            },
            "ClaimRequest": {
                "type": "object", "additionalProperties": false, "required": ["worker", "lease_ms"],
                "properties": {
                    "worker": { "type": "string", "pattern": "\\S", "maxLength": 200, "description": "The lease owner name: not blank, at most 200 bytes" },
                    "lease_ms": { "type": "integer", "minimum": 200, "maximum": 600000 },
                    "wait_ms": { "type": "integer", "minimum": 0, "description": "How long to wait for a task (capped at 30000)" }
                }
            },
            "ClaimResult": {
                "type": "object", "required": ["task"],
                "properties": { "task": { "type": ["object", "null"], "description": "The work order: task_id, fencing, attempt, pipeline_run, pipeline, step, spec, lease_ms, step_run_id, step_run_artifact_uri, params, metrics, outputs, cache" } }
            },
            "HeartbeatRequest": {
                "type": "object", "additionalProperties": false, "required": ["fencing", "lease_ms"],
                "properties": { "fencing": { "type": "integer" }, "lease_ms": { "type": "integer", "minimum": 200, "maximum": 600000 } }
            },
            "OutcomeRequest": {
                "type": "object", "additionalProperties": false, "required": ["fencing", "outcome"],
                "properties": {
                    "fencing": { "type": "integer" },
                    "outcome": { "type": "object", "required": ["status"], "properties": { "status": { "enum": ["succeeded", "failed"] } }, "description": "`{\"status\": \"succeeded\", \"result\": {metrics, outputs, cache}}` or `{\"status\": \"failed\", \"message\": …, \"permanent\": bool}`" }
                }
            },
            "Pipeline": {
                "type": "object", "required": ["name", "spec", "applied_by", "steps", "schedule", "triggers", "created_time", "updated_time"],
                "properties": {
                    "name": { "type": "string" },
                    "spec": { "type": "string", "description": "The pipeline YAML as applied" },
                    "steps": { "type": "array", "items": { "type": "string" }, "description": "Its steps' names, in file order" },
                    "schedule": { "type": ["string", "null"], "description": "Its cron schedule (5 fields, UTC), if any" },
                    "triggers": { "type": "array", "items": { "type": "string" }, "description": "The event kinds that start it (`on:`), in file order" },
                    "applied_by": { "type": ["string", "null"], "description": "With `--auth`: the user who last applied it; scheduled and event-triggered runs act for them, and its gate approves only on their authority" },
                    "created_time": epoch_ms("First applied"),
                    "created_time_rfc3339": rfc3339("First applied"),
                    "updated_time": epoch_ms("Last changed"),
                    "updated_time_rfc3339": rfc3339("Last changed")
                }
            },
            "PipelinePage": {
                "type": "object", "required": ["pipelines", "next_offset"],
                "properties": {
                    "pipelines": { "type": "array", "items": schema_ref("Pipeline") },
                    "next_offset": nullable("integer")
                }
            },
            "ApplyResult": {
                "type": "object", "required": ["name", "result"],
                "properties": { "name": { "type": "string" }, "result": { "enum": ["created", "updated", "unchanged"] } }
            },
            "RunRequest": {
                "type": "object", "additionalProperties": false,
                "properties": {
                    "params": { "type": "object", "description": "Parameter values; declared defaults fill the rest" },
                    "no_cache": { "type": "boolean", "default": false, "description": "Run every step, reusing no cached result" }
                }
            },
            "CacheDecision": {
                "type": "object", "required": ["key", "parts", "hit"],
                "properties": {
                    "key": { "type": "string", "description": "`sha256:<hex>` over `parts`" },
                    "parts": { "type": "object", "description": "What the key hashes: spec, params, inputs (output digests), metrics, files (content digests), runtime" },
                    "hit": { "type": "boolean" },
                    "source": { "type": "object", "description": "The execution reused, on a hit", "properties": {
                        "pipeline_run": { "type": "string" }, "step_run": nullable("string"), "created_time": epoch_ms("When it was recorded")
                    } },
                    "reason": { "type": "string", "description": "Why nothing was reused, on a miss" }
                }
            },
            "CacheExplanation": {
                "type": "object", "required": ["run", "step", "cacheable", "status", "decision", "previous", "changes", "summary"],
                "properties": {
                    "run": { "type": "string" },
                    "step": { "type": "string" },
                    "cacheable": { "type": "boolean", "description": "Whether the step has a `cache:` policy" },
                    "status": { "type": ["string", "null"], "description": "The step's latest task status" },
                    "decision": { "oneOf": [schema_ref("CacheDecision"), { "type": "null" }] },
                    "previous": { "type": ["object", "null"], "description": "The newest other execution recorded before this one", "properties": {
                        "pipeline_run": { "type": "string" }, "key": { "type": "string" }, "created_time": epoch_ms("When it was recorded")
                    } },
                    "changes": { "type": "array", "items": { "type": "string" }, "description": "`part.key: before → after`, one per difference from `previous`" },
                    "summary": { "type": "string" }
                }
            },
            "PipelineRun": {
                "type": "object", "required": ["id", "pipeline", "status", "tracking_run_id", "trigger", "params", "started_by", "created_time", "updated_time"],
                "properties": {
                    "id": { "type": "string" },
                    "pipeline": { "type": "string" },
                    "status": { "enum": ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"] },
                    "tracking_run_id": { "type": ["string", "null"], "description": "The MLflow run the step runs nest under" },
                    "no_cache": { "type": "boolean", "description": "Started with `--no-cache`" },
                    "trigger": { "enum": ["manual", "schedule", "event"] },
                    "params": { "type": "object", "description": "The resolved parameters" },
                    "started_by": { "type": ["string", "null"], "description": "With `--auth`: the user the run acts for (who started it, or who applied the pipeline for a scheduled or event-triggered run); versions it registers count as created by them" },
                    "created_time": epoch_ms("Creation time"),
                    "created_time_rfc3339": rfc3339("Creation time"),
                    "updated_time": epoch_ms("Last change"),
                    "updated_time_rfc3339": rfc3339("Last change")
                }
            },
            "PipelineRunPage": {
                "type": "object", "required": ["runs", "next_offset"],
                "properties": {
                    "runs": { "type": "array", "items": schema_ref("PipelineRun") },
                    "next_offset": nullable("integer")
                }
            },
            "StepLog": {
                "type": "object",
                "required": ["step", "stream", "attempt", "attempts", "offset", "next_offset", "data", "complete", "finished", "status"],
                "properties": {
                    "step": { "type": "string" },
                    "stream": { "enum": ["stdout", "stderr"] },
                    "attempt": { "type": "integer", "description": "The attempt read; 0 when the step has not started" },
                    "attempts": { "type": "integer", "description": "The latest attempt so far" },
                    "offset": { "type": "integer", "description": "Where `data` starts" },
                    "next_offset": { "type": "integer", "description": "Where the next read starts; a UTF-8 character cut by the size limit is left for it" },
                    "data": { "type": "string", "description": "The bytes read, as UTF-8 (invalid bytes become U+FFFD)" },
                    "complete": { "type": "boolean", "description": "This attempt's log will not grow" },
                    "finished": { "type": "boolean", "description": "The step will write no more logs in this run: stop following once `data` is empty" },
                    "status": { "enum": ["waiting", "ready", "queued", "running", "succeeded", "failed", "cancelled", "skipped"] }
                }
            },
            "PipelineStep": {
                "type": "object", "required": ["name", "needs", "status", "attempts", "fencing", "worker", "tracking_run_id", "error", "metrics", "model_version", "note", "branch"],
                "properties": {
                    "name": { "type": "string" },
                    "needs": { "type": "array", "items": { "type": "string" }, "description": "The steps this one waits for (needs, references, condition branches): the edges of the run's graph" },
                    "status": { "enum": ["waiting", "ready", "queued", "running", "succeeded", "failed", "cancelled", "skipped"] },
                    "attempts": { "type": "integer", "description": "Attempts so far" },
                    "fencing": { "type": "integer", "description": "Claims of the step's current task so far (its fencing token); only the latest holder's outcome counts" },
                    "worker": nullable("string"),
                    "tracking_run_id": { "type": ["string", "null"], "description": "The MLflow run of the latest attempt" },
                    "error": { "type": ["string", "null"], "description": "Why the latest attempt failed" },
                    "metrics": string_map("The step's metrics", "number"),
                    "model_version": { "type": ["integer", "null"], "description": "The version a `register_model` step registered" },
                    "note": { "type": ["string", "null"], "description": "What a person should know of a step that succeeded: a `register_model` step's `approval:` left undone (the version stays pending), and why" },
                    "branch": { "type": ["string", "null"], "enum": ["then", "else", null], "description": "The branch a condition step took" },
                    "outputs": { "type": "object", "description": "Each published output by name", "additionalProperties": {
                        "type": "object", "properties": { "digest": { "type": "string" }, "files": { "type": "integer" }, "bytes": { "type": "integer" } }
                    } },
                    "cache": { "oneOf": [schema_ref("CacheDecision"), { "type": "null" }], "description": "For a step with `cache:`, what the cache decided" }
                }
            },
            "PipelineRunDetail": {
                "allOf": [
                    schema_ref("PipelineRun"),
                    { "type": "object", "required": ["steps"], "properties": {
                        "steps": { "type": "array", "description": "Every step, in file order", "items": schema_ref("PipelineStep") }
                    } }
                ]
            },
            "Error": {
                "type": "object", "required": ["error_code", "message"],
                "properties": {
                    "error_code": { "type": "string", "examples": ["RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"] },
                    "message": { "type": "string" }
                }
            },
            "Approval": {
                "type": "object", "required": ["status", "actor", "comment", "time", "time_rfc3339"],
                "properties": {
                    "status": { "enum": ["pending", "approved", "rejected"] },
                    "actor": nullable("string"),
                    "comment": nullable("string"),
                    "time": { "type": ["integer", "null"], "description": "When decided, milliseconds since the Unix epoch" },
                    "time_rfc3339": { "type": ["string", "null"], "format": "date-time" }
                }
            },
            "Double": {
                "description": "A double as MLflow's JSON writes it: a number, or NaN and the infinities as strings",
                "oneOf": [ { "type": "number" }, { "enum": ["NaN", "Infinity", "-Infinity"] } ]
            },
            "MetricSummaries": {
                "type": "object", "required": ["summaries"],
                "properties": {
                    "summaries": {
                        "type": "array",
                        "items": {
                            "type": "object", "required": ["run_id", "key", "last", "min", "max", "step", "timestamp"],
                            "properties": {
                                "run_id": { "type": "string" },
                                "key": { "type": "string" },
                                "last": { "$ref": "#/components/schemas/Double", "description": "The latest value: highest step, then time, then value (MLflow's choice)" },
                                "min": { "$ref": "#/components/schemas/Double", "description": "The smallest value, NaN skipped" },
                                "max": { "$ref": "#/components/schemas/Double", "description": "The largest value, NaN skipped" },
                                "step": { "type": "integer", "description": "The latest value's step" },
                                "timestamp": epoch_ms("The latest value's time")
                            }
                        }
                    }
                }
            },
            "FilterCheck": {
                "type": "object", "required": ["valid", "message", "start", "end"],
                "properties": {
                    "valid": { "type": "boolean" },
                    "message": { "type": ["string", "null"], "description": "The search's error message" },
                    "start": { "type": ["integer", "null"], "minimum": 0, "description": "Where the wrong part starts, in characters (code points) from 0" },
                    "end": { "type": ["integer", "null"], "minimum": 0, "description": "Where it ends (exclusive)" }
                }
            },
            "RunKeys": {
                "type": "object", "required": ["keys", "truncated"],
                "properties": {
                    "keys": { "type": "array", "items": { "type": "string" } },
                    "truncated": { "type": "boolean", "description": "More keys match than were listed" }
                }
            },
            "Lineage": {
                "type": "object", "required": ["model_version", "run", "step", "pipeline_run", "event", "monitor_run", "endpoints", "withheld"],
                "properties": {
                    "model_version": { "type": "object", "required": ["name", "version"], "properties": { "name": { "type": "string" }, "version": { "type": "integer" } } },
                    "run": { "type": ["object", "null"], "description": "The tracking run that logged the version: run_id, experiment_id, run_name" },
                    "step": { "type": ["string", "null"], "description": "The pipeline step that run belongs to" },
                    "pipeline_run": { "type": ["object", "null"], "description": "id, pipeline, status, trigger" },
                    "event": { "type": ["object", "null"], "description": "The event that started the pipeline run: id, kind, subject, time" },
                    "monitor_run": { "type": ["object", "null"], "description": "The monitor run behind that event: id, monitor, status, started_time" },
                    "endpoints": { "type": "array", "description": "Endpoints serving the version now: name, status, variants (stable, in rollout, or shadow)",
                        "items": { "type": "object", "required": ["name", "status", "variants"], "properties": {
                            "name": { "type": "string" }, "status": { "type": "string" }, "variants": { "type": "array", "items": { "type": "string" } } } } },
                    "withheld": { "type": "array", "items": { "enum": ["run", "pipeline_run", "event", "monitor_run"] }, "description": "Links emptied because the caller may not read what they lead to" }
                }
            },
            "ModelVersion": {
                "type": "object",
                "required": ["name", "version", "source", "stage", "status", "approval", "aliases", "tags", "creation_time", "last_updated_time"],
                "properties": {
                    "name": { "type": "string" },
                    "version": { "type": "integer" },
                    "description": nullable("string"),
                    "source": { "type": "string", "description": "The source as registered (`runs:/…`, `models:/m-…`, a URI)" },
                    "storage_location": { "type": "string", "description": "The artifact URI the source resolves to" },
                    "run_id": nullable("string"),
                    "model_id": nullable("string"),
                    "run_link": nullable("string"),
                    "user_id": nullable("string"),
                    "stage": { "enum": ["None", "Staging", "Production", "Archived"] },
                    "status": { "enum": ["PENDING_REGISTRATION", "FAILED_REGISTRATION", "READY"] },
                    "status_message": nullable("string"),
                    "approval": schema_ref("Approval"),
                    "aliases": { "type": "array", "items": { "type": "string" } },
                    "tags": string_map("Tag key to value", "string"),
                    "creation_time": epoch_ms("Registration time"),
                    "creation_time_rfc3339": rfc3339("Registration time"),
                    "last_updated_time": epoch_ms("Last change"),
                    "last_updated_time_rfc3339": rfc3339("Last change")
                }
            },
            "Model": {
                "type": "object",
                "required": ["name", "tags", "aliases", "latest_versions", "approval_settings", "creation_time", "last_updated_time"],
                "properties": {
                    "name": { "type": "string" },
                    "description": nullable("string"),
                    "user_id": nullable("string"),
                    "creation_time": epoch_ms("Creation time"),
                    "creation_time_rfc3339": rfc3339("Creation time"),
                    "last_updated_time": epoch_ms("Last change"),
                    "last_updated_time_rfc3339": rfc3339("Last change"),
                    "tags": string_map("Tag key to value", "string"),
                    "aliases": string_map("Alias to version number", "integer"),
                    "latest_versions": { "type": "array", "description": "The newest version in each stage, newest first", "items": schema_ref("ModelVersion") },
                    "approval_settings": schema_ref("ApprovalSettings")
                }
            },
            "ApprovalSettings": {
                "type": "object", "required": ["require_distinct_approver", "allow_pipeline_approval"],
                "properties": {
                    "require_distinct_approver": { "type": "boolean", "description": "Four-eyes, with `--auth`: nobody approves a version they created (registered, or registered by a pipeline run acting for them)" },
                    "allow_pipeline_approval": { "type": "boolean", "description": "A pipeline's `register_model: {approval: approved}` may decide, as `pipeline:<name>` and, with `--auth`, only if the user who applied the pipeline holds MANAGE on the model" }
                }
            },
            "ApprovalSettingsRequest": {
                "type": "object", "additionalProperties": false,
                "properties": {
                    "require_distinct_approver": { "type": "boolean" },
                    "allow_pipeline_approval": { "type": "boolean" }
                }
            },
            "ModelDetail": {
                "allOf": [
                    schema_ref("Model"),
                    { "type": "object", "required": ["versions"], "properties": {
                        "versions": { "type": "array", "description": "Every version, newest first", "items": schema_ref("ModelVersion") }
                    } }
                ]
            },
            "ModelPage": {
                "type": "object", "required": ["models", "next_page_token"],
                "properties": {
                    "models": { "type": "array", "items": schema_ref("Model") },
                    "next_page_token": nullable("string")
                }
            },
            "ApprovalRequest": {
                "type": "object", "required": ["status"], "additionalProperties": false,
                "properties": {
                    "status": { "enum": ["pending", "approved", "rejected"] },
                    "comment": { "type": "string", "description": "Why" },
                    "actor": { "type": "string", "description": "Without `--auth`: who (default: the X-Sextant-Actor header, else `anonymous`); ignored with `--auth`, where the caller decides" },
                    "force": { "type": "boolean", "default": false, "description": "Replace a decision already made; the earlier one stays in the events feed" }
                }
            },
            "AliasRequest": {
                "type": "object", "required": ["version"], "additionalProperties": false,
                "properties": { "version": { "type": "integer", "minimum": 1 } }
            },
            "Alias": {
                "type": "object", "required": ["name", "alias", "version"],
                "properties": { "name": { "type": "string" }, "alias": { "type": "string" }, "version": { "type": "integer" } }
            },
            "Event": {
                "type": "object", "required": ["id", "time", "time_rfc3339", "kind", "subject", "actor", "payload"],
                "properties": {
                    "id": { "type": "integer", "description": "Increasing; use as a cursor" },
                    "time": epoch_ms("When the change was committed"),
                    "time_rfc3339": rfc3339("When the change was committed"),
                    "kind": { "type": "string", "examples": ["run.created", "model_version.approved"] },
                    "subject": { "type": "string", "examples": ["run:0123abcd", "model_version:fraud/3"] },
                    "actor": nullable("string"),
                    "payload": { "type": "object" }
                }
            },
            "EventPage": {
                "type": "object", "required": ["events", "cursor", "has_more"],
                "properties": {
                    "events": { "type": "array", "items": schema_ref("Event") },
                    "cursor": { "type": "integer", "description": "Pass as the next `after`" },
                    "has_more": { "type": "boolean", "description": "More events are ready beyond this page" }
                }
            }
        } }
    })
}

#[cfg(test)]
mod tests;
