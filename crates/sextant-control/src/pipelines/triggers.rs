//! Starts pipeline runs by themselves: on a pipeline's cron `schedule` (UTC,
//! no catch-up) and on events of the events feed that match its `on` triggers.
//!
//! The last time a schedule fired is the creation time of the pipeline's
//! newest `schedule` run, so a restart does not fire the same time twice and
//! needs no table of its own. The event cursor lives in memory: it starts at
//! the newest event when the server starts, so events appended while the
//! server was down trigger nothing (a persisted cursor can come later).
//! Starting a triggered run is at most once: if the store refuses it, the
//! event is logged and skipped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value as Json};
use sextant_core::entities::Tag;
use sextant_core::pipeline_runs::TriggerKind;
use sextant_core::registry::Event;
use sextant_pipelines::cron::{Cron, parse_cron};
use sextant_pipelines::refs::{self, Ref};
use sextant_pipelines::spec::{Pipeline, Trigger, Value};
use sextant_store::PipelineRunSearch;

use super::service::{StartedBy, resolve_params, start_triggered_run};
use super::{Deps, PipelineError};

/// Why an event that matches a trigger starts no run (logged, then skipped).
#[derive(Debug, thiserror::Error)]
pub(super) enum TriggerError {
    /// A `params:` template of the trigger failed.
    #[error("parameter '{name}': {source}")]
    Param {
        name: String,
        #[source]
        source: Box<TriggerError>,
    },
    /// The mapped values do not fit the pipeline's declared parameters.
    #[error(transparent)]
    Params(#[from] PipelineError),
    /// A malformed `${…}` in a template.
    #[error("{}", .0.message)]
    Reference(refs::RefError),
    /// The event's payload lacks the field a reference names.
    #[error("the {kind} event has no field {reference}")]
    NoField { kind: String, reference: Ref },
    /// A reference to something only a step can see.
    #[error("{0} is not available in a trigger")]
    Unavailable(Ref),
    /// A reference inside a longer text names a list or an object.
    #[error("{reference} is {value}, which cannot be put into a string")]
    NotText { reference: Ref, value: Json },
}

/// The tags that tie a triggered run to its event and, for a monitor's
/// event, to the monitor run behind it.
fn lineage_tags(event: &Event) -> Vec<Tag> {
    let mut tags = vec![
        Tag::new("sextant.triggerEvent", event.id.to_string()),
        Tag::new("sextant.triggerEventKind", event.kind.as_str()),
    ];
    if event.kind.starts_with("monitor.") {
        let payload: Json = serde_json::from_str(&event.payload).unwrap_or(Json::Null);
        for (key, field) in [
            ("sextant.monitor", "monitor"),
            ("sextant.monitorRun", "run"),
        ] {
            if let Some(v) = payload.get(field).and_then(|v| v.as_str()) {
                tags.push(Tag::new(key, v));
            }
        }
    }
    tags
}

/// How often the loop looks for new pipelines and events when nothing woke it
/// (runs and events the orchestrator appends wake nobody).
const POLL: Duration = Duration::from_secs(1);
/// A schedule that comes due more than this late (the host slept, the loop
/// stalled) is skipped rather than caught up.
const LATE: TimeDelta = TimeDelta::seconds(60);
/// Events are read in batches of this size.
const EVENT_BATCH: u64 = 500;
/// Pipelines and runs are listed in pages of this size.
const PAGE: u64 = 1000;

/// The clock's time as a date.
fn now(deps: &Deps) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(deps.clock.now_ms()).unwrap_or_default()
}

/// A stored pipeline as the trigger loop knows it.
struct Known {
    /// The stored `updated_time`: a newer one means the spec changed.
    updated_time: i64,
    pipeline: Arc<Pipeline>,
    /// The parsed schedule and the next time it is due.
    schedule: Option<(Cron, Option<DateTime<Utc>>)>,
}

/// Follows schedules, and events after `since` (read now when it is `None`),
/// until the task is aborted.
pub(super) async fn run(state: Deps, since: Option<i64>) {
    let mut cursor = match since {
        Some(id) => id,
        None => loop {
            match state.db(|s| s.last_event_id()).await {
                Ok(id) => break id,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the newest event id");
                    tokio::time::sleep(POLL).await;
                }
            }
        },
    };
    let mut known = BTreeMap::new();
    loop {
        // Listen before looking, so a change made while we look still wakes us.
        let changes = state.changes.clone();
        let woken = changes.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        if let Err(e) = refresh(&state, &mut known).await {
            tracing::error!(error = %e, "cannot list pipelines for their triggers");
        }
        fire_schedules(&state, &mut known).await;
        cursor = follow_events(&state, &known, cursor).await;
        let now = now(&state);
        let wait = known
            .values()
            .filter_map(|k| k.schedule.as_ref()?.1)
            .map(|due| (due - now).to_std().unwrap_or_default())
            .fold(POLL, Duration::min);
        tokio::select! {
            _ = woken => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Brings `known` in line with the stored pipelines.
async fn refresh(state: &Deps, known: &mut BTreeMap<String, Known>) -> Result<(), PipelineError> {
    let mut stored = Vec::new();
    loop {
        let offset = stored.len() as u64;
        let page = state.db(move |s| s.list_pipelines(PAGE, offset)).await?;
        let more = page.next_offset.is_some();
        stored.extend(page.items);
        if !more {
            break;
        }
    }
    known.retain(|name, _| stored.iter().any(|p| &p.name == name));
    for p in stored {
        if known
            .get(&p.name)
            .is_some_and(|k| k.updated_time == p.updated_time)
        {
            continue;
        }
        let v = match sextant_pipelines::load(&p.name, &p.spec) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(pipeline = %p.name, error = %e, "stored pipeline does not validate: its triggers are off");
                known.remove(&p.name);
                continue;
            }
        };
        let schedule = match &v.pipeline.schedule {
            None => None,
            Some(text) => match parse_cron(&text.value) {
                Ok(cron) => {
                    let last = last_fired(state, &p.name).await?;
                    let due = next_due(&cron, last, now(state));
                    tracing::info!(pipeline = %p.name, schedule = %text.value, next = ?due, "schedule active");
                    Some((cron, due))
                }
                Err(e) => {
                    tracing::warn!(pipeline = %p.name, error = %e, "invalid schedule: it is off");
                    None
                }
            },
        };
        known.insert(
            p.name.clone(),
            Known {
                updated_time: p.updated_time,
                pipeline: Arc::new(v.pipeline),
                schedule,
            },
        );
    }
    Ok(())
}

/// When the pipeline's newest `schedule` run was created, if it has one.
async fn last_fired(state: &Deps, pipeline: &str) -> Result<Option<DateTime<Utc>>, PipelineError> {
    let mut offset = 0;
    loop {
        let q = PipelineRunSearch {
            pipeline: Some(pipeline.to_string()),
            status: None,
            max_results: PAGE,
            offset,
        };
        let page = state.db(move |s| s.list_pipeline_runs(&q)).await?;
        // Runs come newest first, so the first schedule run is the last fired.
        if let Some(run) = page
            .items
            .iter()
            .find(|r| r.trigger_kind == TriggerKind::Schedule)
        {
            return Ok(DateTime::from_timestamp_millis(run.created_time));
        }
        match page.next_offset {
            Some(next) => offset = next,
            None => return Ok(None),
        }
    }
}

/// Starts a run of every pipeline whose schedule is due.
async fn fire_schedules(state: &Deps, known: &mut BTreeMap<String, Known>) {
    for (name, k) in known.iter_mut() {
        let Some((cron, Some(due))) = &mut k.schedule else {
            continue;
        };
        let now = now(state);
        let (fire, next) = tick(cron, *due, now);
        if now >= *due && !fire {
            tracing::warn!(pipeline = %name, due = %due, "schedule came due too late: skipped, no catch-up");
        }
        if fire {
            match start_triggered_run(
                state,
                name.clone(),
                Map::new(),
                StartedBy {
                    kind: TriggerKind::Schedule,
                    event: None,
                    tags: Vec::new(),
                    user: None,
                },
                false,
            )
            .await
            {
                Ok(run) => {
                    tracing::info!(pipeline = %name, run = %run.id, due = %due, "scheduled pipeline run started")
                }
                Err(e) => {
                    tracing::warn!(pipeline = %name, error = %e, "cannot start a scheduled run")
                }
            }
        }
        k.schedule = Some((cron.clone(), next));
    }
}

/// Starts the runs that events after `cursor` trigger; returns the new cursor.
async fn follow_events(state: &Deps, known: &BTreeMap<String, Known>, cursor: i64) -> i64 {
    let mut cursor = cursor;
    if known.values().all(|k| k.pipeline.on.is_empty()) {
        // Nobody listens: skip ahead rather than read every event.
        return match state.db(|s| s.last_event_id()).await {
            Ok(id) => id.max(cursor),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the newest event id");
                cursor
            }
        };
    }
    loop {
        let after = cursor;
        let events = match state
            .db(move |s| s.events_after(after, &[], EVENT_BATCH))
            .await
        {
            Ok(events) => events,
            Err(e) => {
                tracing::error!(error = %e, "cannot read events for triggers");
                return cursor;
            }
        };
        for event in &events {
            for (name, k) in known {
                // A trigger reacts to events appended after its pipeline was applied.
                if event.time < k.updated_time {
                    continue;
                }
                match event_params(&k.pipeline, event) {
                    None => {}
                    Some(Err(e)) => {
                        tracing::warn!(pipeline = %name, event = event.id, kind = %event.kind, error = %e, "event trigger not started")
                    }
                    Some(Ok(params)) => match start_triggered_run(
                        state,
                        name.clone(),
                        params,
                        StartedBy {
                            kind: TriggerKind::Event,
                            event: Some(event.id),
                            tags: lineage_tags(event),
                            user: None,
                        },
                        false,
                    )
                    .await
                    {
                        Ok(run) => {
                            tracing::info!(pipeline = %name, run = %run.id, event = event.id, kind = %event.kind, "event-triggered pipeline run started")
                        }
                        Err(e) => {
                            tracing::warn!(pipeline = %name, event = event.id, error = %e, "cannot start an event-triggered run")
                        }
                    },
                }
            }
            cursor = event.id;
        }
        if (events.len() as u64) < EVENT_BATCH {
            return cursor;
        }
    }
}

/// The first time `cron` is due strictly after both `last_fired` and `now`:
/// times missed while the server was down are skipped (no catch-up), and a
/// time already fired is never due again.
pub(super) fn next_due(
    cron: &Cron,
    last_fired: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let from = last_fired.map_or(now, |last| last.max(now));
    cron.find_next_occurrence(&from, false).ok()
}

/// What a schedule due at `due` says at `now`: whether to fire, and when it
/// is due next. A time more than [`LATE`] in the past is skipped.
fn tick(cron: &Cron, due: DateTime<Utc>, now: DateTime<Utc>) -> (bool, Option<DateTime<Utc>>) {
    if now < due {
        return (false, Some(due));
    }
    (now - due <= LATE, next_due(cron, Some(due), now))
}

/// The parameters of the run that `event` starts for `p`: `None` when no
/// trigger of `p` matches, an error (for a warning) when the first matching
/// trigger's mapping fails or its values do not fit the declared types.
fn event_params(p: &Pipeline, event: &Event) -> Option<Result<Map<String, Json>, TriggerError>> {
    let payload: Json = serde_json::from_str(&event.payload).unwrap_or(Json::Null);
    let trigger =
        p.on.iter()
            .find(|t| trigger_matches(p, t, event, &payload))?;
    Some(map_params(p, trigger, event, &payload))
}

/// Whether `t` of pipeline `p` fires on `event`.
fn trigger_matches(p: &Pipeline, t: &Trigger, event: &Event, payload: &Json) -> bool {
    if !kind_matches(&t.event.value, &event.kind) {
        return false;
    }
    let filtered = t.filter.iter().all(|(key, want)| {
        payload
            .get(&key.value)
            .is_some_and(|got| value_eq(&want.value, got))
    });
    if !filtered {
        return false;
    }
    // A pipeline's own run events would start it again and again: they
    // trigger it only when its `where` names it explicitly.
    let own_run = event.kind.starts_with("pipeline_run.")
        && payload.get("pipeline").and_then(Json::as_str) == Some(p.name.value.as_str());
    !own_run || t.filter.iter().any(|(key, _)| key.value == "pipeline")
}

/// `pattern` is an exact kind or `prefix.*`.
fn kind_matches(pattern: &str, kind: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) if prefix.ends_with('.') => kind.starts_with(prefix),
        _ => pattern == kind,
    }
}

/// Whether a `where` value equals a payload value; numbers compare by value.
fn value_eq(want: &Value, got: &Json) -> bool {
    match (want, got) {
        (Value::Int(a), Json::Number(b)) => b.as_i64() == Some(*a) || b.as_f64() == Some(*a as f64),
        (Value::Float(a), Json::Number(b)) => b.as_f64() == Some(*a),
        _ => want.to_json() == *got,
    }
}

/// Resolves a trigger's `params:` against the event, then checks them
/// against the declared parameters (filling in defaults).
fn map_params(
    p: &Pipeline,
    t: &Trigger,
    event: &Event,
    payload: &Json,
) -> Result<Map<String, Json>, TriggerError> {
    let mut given = Map::new();
    for (name, template) in &t.params {
        let value = resolve(&template.value, event, payload).map_err(|e| TriggerError::Param {
            name: name.value.clone(),
            source: Box::new(e),
        })?;
        given.insert(name.value.clone(), value);
    }
    Ok(resolve_params(p, &given)?)
}

/// A template with its `${event…}` references replaced. A template that is
/// one reference and nothing else keeps the JSON type of what it names.
fn resolve(text: &str, event: &Event, payload: &Json) -> Result<Json, TriggerError> {
    let found = refs::scan(text);
    if let [Ok(only)] = found.as_slice()
        && only.offset == 0
        && text.ends_with('}')
        && text.find('}') == Some(text.len() - 1)
    {
        return lookup(&only.reference, event, payload);
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut at = 0;
    for f in found {
        let f = f.map_err(TriggerError::Reference)?;
        out.push_str(&literal(&chars[at..f.offset]));
        match lookup(&f.reference, event, payload)? {
            Json::String(s) => out.push_str(&s),
            v @ (Json::Number(_) | Json::Bool(_)) => out.push_str(&v.to_string()),
            value => {
                return Err(TriggerError::NotText {
                    reference: f.reference,
                    value,
                });
            }
        }
        at = chars[f.offset..]
            .iter()
            .position(|&c| c == '}')
            .map_or(chars.len(), |i| f.offset + i + 1);
    }
    out.push_str(&literal(&chars[at.min(chars.len())..]));
    Ok(Json::String(out))
}

/// Text between references, where `$${` stands for `${`.
fn literal(chars: &[char]) -> String {
    chars.iter().collect::<String>().replace("$${", "${")
}

/// What an event reference names.
fn lookup(r: &Ref, event: &Event, payload: &Json) -> Result<Json, TriggerError> {
    match r {
        Ref::EventPayload(path) => path
            .iter()
            .try_fold(payload, |v, key| v.get(key))
            .cloned()
            .ok_or_else(|| TriggerError::NoField {
                kind: event.kind.clone(),
                reference: r.clone(),
            }),
        Ref::EventSubject => Ok(Json::String(event.subject.clone())),
        Ref::EventKind => Ok(Json::String(event.kind.clone())),
        Ref::Param(_)
        | Ref::StepOutput { .. }
        | Ref::StepMetric { .. }
        | Ref::Output(_)
        | Ref::RunId => Err(TriggerError::Unavailable(r.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(on: &str) -> Pipeline {
        let text = format!(
            "name: p\nparams:\n  uri: {{type: string, default: \"x\"}}\n  n: {{type: int, default: 1}}\n  \
             ok: {{type: bool, default: false}}\non:\n{on}\nsteps:\n  s:\n    run: \"true\"\n"
        );
        sextant_pipelines::load("p.yaml", &text)
            .unwrap_or_else(|e| panic!("{e}: {text}"))
            .pipeline
    }

    fn event(kind: &str, payload: Json) -> Event {
        Event {
            id: 7,
            time: 1,
            kind: kind.to_string(),
            subject: "model_version:m/3".to_string(),
            actor: None,
            payload: payload.to_string(),
        }
    }

    fn params(p: &Pipeline, e: &Event) -> Option<Result<Json, String>> {
        event_params(p, e).map(|r| r.map(Json::Object).map_err(|e| e.to_string()))
    }

    #[test]
    fn exact_and_prefix_kinds() {
        assert!(kind_matches(
            "model_version.approved",
            "model_version.approved"
        ));
        assert!(!kind_matches(
            "model_version.approved",
            "model_version.rejected"
        ));
        assert!(kind_matches("model_version.*", "model_version.rejected"));
        assert!(!kind_matches("model_version.*", "model_versions.x"));
        assert!(!kind_matches("model_version*", "model_version.x"));
        assert!(!kind_matches("model_version", "model_version.approved"));
    }

    #[test]
    fn unmatched_events_start_nothing() {
        let p = pipeline("  - event: model_version.approved");
        assert_eq!(
            params(&p, &event("model_version.rejected", Json::Null)),
            None
        );
        let p = pipeline("  - event: model_version.*\n    where: {name: m, version: 3}");
        let e = event(
            "model_version.approved",
            serde_json::json!({"name": "m", "version": 4}),
        );
        assert_eq!(params(&p, &e), None);
        let e = event("model_version.approved", serde_json::json!({"name": "m"}));
        assert_eq!(params(&p, &e), None, "a missing field does not match");
    }

    #[test]
    fn where_filters_and_defaults() {
        let p = pipeline("  - event: model_version.*\n    where: {name: m, version: 3}");
        let e = event(
            "model_version.approved",
            serde_json::json!({"name": "m", "version": 3}),
        );
        assert_eq!(
            params(&p, &e),
            Some(Ok(serde_json::json!({"uri": "x", "n": 1, "ok": false})))
        );
        let e = event(
            "model_version.approved",
            serde_json::json!({"name": "m", "version": 3.0}),
        );
        assert!(
            matches!(params(&p, &e), Some(Ok(_))),
            "numbers compare by value"
        );
    }

    #[test]
    fn payload_mapping_keeps_types_and_interpolates() {
        let p = pipeline(
            "  - event: monitor.violation\n    params:\n      uri: \"s3://b/${event.payload.window.uri}?k=${event.kind}&v=${event.payload.n}\"\n      \
             n: \"${event.payload.n}\"\n      ok: \"${event.payload.ok}\"",
        );
        let e = event(
            "monitor.violation",
            serde_json::json!({"window": {"uri": "w1"}, "n": 5, "ok": true}),
        );
        assert_eq!(
            params(&p, &e),
            Some(Ok(serde_json::json!({
                "uri": "s3://b/w1?k=monitor.violation&v=5", "n": 5, "ok": true
            })))
        );
        let p = pipeline(
            "  - event: a.b\n    params: {uri: \"${event.subject}\", n: \"${event.payload.n}\"}",
        );
        let e = event("a.b", serde_json::json!({"n": "12"}));
        assert_eq!(
            params(&p, &e),
            Some(Ok(
                serde_json::json!({"uri": "model_version:m/3", "n": 12, "ok": false})
            )),
            "a string of digits is an int, as on the command line"
        );
    }

    #[test]
    fn bad_mappings_are_errors_not_panics() {
        let p = pipeline("  - event: a.b\n    params: {n: \"${event.payload.n}\"}");
        let missing = params(&p, &event("a.b", serde_json::json!({})));
        assert_eq!(
            missing,
            Some(Err(
                "parameter 'n': the a.b event has no field ${event.payload.n}".into()
            ))
        );
        let wrong = params(&p, &event("a.b", serde_json::json!({"n": "many"})));
        assert_eq!(
            wrong,
            Some(Err(
                "invalid value \"many\" for parameter 'n': expected int".into()
            ))
        );
        let p = pipeline("  - event: a.b\n    params: {uri: \"at ${event.payload.o}\"}");
        let object = params(&p, &event("a.b", serde_json::json!({"o": {"x": 1}})));
        assert!(
            matches!(&object, Some(Err(m)) if m.contains("cannot be put into a string")),
            "{object:?}"
        );
        let not_json = Event {
            payload: "{oops".into(),
            ..event("a.b", Json::Null)
        };
        assert!(matches!(params(&p, &not_json), Some(Err(_))));
    }

    #[test]
    fn own_run_events_need_an_explicit_where() {
        let run_event = |pipeline: &str| {
            event(
                "pipeline_run.succeeded",
                serde_json::json!({"pipeline": pipeline, "status": "SUCCEEDED"}),
            )
        };
        let p = pipeline("  - event: pipeline_run.*");
        assert_eq!(params(&p, &run_event("p")), None);
        assert!(params(&p, &run_event("other")).is_some());
        let p = pipeline("  - event: pipeline_run.succeeded\n    where: {pipeline: p}");
        assert!(params(&p, &run_event("p")).is_some());
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn next_due_skips_missed_times() {
        let cron = parse_cron("0 3 * * *").unwrap();
        assert_eq!(
            next_due(&cron, None, at("2024-05-01T02:59:59Z")),
            Some(at("2024-05-01T03:00:00Z"))
        );
        // Down from the 1st to the 4th: only the next future time is due.
        assert_eq!(
            next_due(
                &cron,
                Some(at("2024-05-01T03:00:00Z")),
                at("2024-05-04T12:00:00Z")
            ),
            Some(at("2024-05-05T03:00:00Z"))
        );
        // Restarted in the minute it already fired: not due again.
        let every_minute = parse_cron("* * * * *").unwrap();
        assert_eq!(
            next_due(
                &every_minute,
                Some(at("2024-05-01T03:00:00.200Z")),
                at("2024-05-01T03:00:00.100Z")
            ),
            Some(at("2024-05-01T03:01:00Z"))
        );
        assert!(parse_cron("61 * * * *").is_err());
    }

    #[test]
    fn tick_fires_once_then_moves_on() {
        let cron = parse_cron("*/5 * * * *").unwrap();
        let due = at("2024-05-01T03:05:00Z");
        assert_eq!(
            tick(&cron, due, at("2024-05-01T03:04:59Z")),
            (false, Some(due))
        );
        assert_eq!(
            tick(&cron, due, at("2024-05-01T03:05:00.300Z")),
            (true, Some(at("2024-05-01T03:10:00Z")))
        );
        // Far too late (the host slept): skipped, and no catch-up of the others.
        assert_eq!(
            tick(&cron, due, at("2024-05-01T04:07:00Z")),
            (false, Some(at("2024-05-01T04:10:00Z")))
        );
    }
}
