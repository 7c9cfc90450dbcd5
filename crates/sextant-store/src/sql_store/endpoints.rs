//! Stored serving endpoints: definition and controller state as JSON
//! documents, each write with its event in the same transaction.

use serde_json::Value;
use sextant_core::Error;
use sextant_core::endpoints::{EndpointEvent, StoredEndpoint, validate_endpoint_name};

use super::events;
use crate::StoreError;
use crate::backend::{Conn, Row, SqlValue};

const COLUMNS: &str = "name, spec, state, created_time, updated_time";

fn decode(row: Row) -> Result<StoredEndpoint, StoreError> {
    let [name, spec, state, created, updated]: [SqlValue; 5] = row
        .try_into()
        .map_err(|_| StoreError::Corrupt("short endpoint row".into()))?;
    Ok(StoredEndpoint {
        name: name.text()?,
        spec: spec.text()?,
        state: state.text()?,
        created_time: created.int()?,
        updated_time: updated.int()?,
    })
}

fn json(what: &str, text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| Error::invalid(format!("endpoint {what} is not valid JSON: {e}")).into())
}

fn append(c: &mut dyn Conn, name: &str, event: Option<&EndpointEvent>) -> Result<(), StoreError> {
    if let Some(e) = event {
        events::append(
            c,
            &e.kind,
            &format!("endpoint:{name}"),
            None,
            json("event payload", &e.payload)?,
        )?;
    }
    Ok(())
}

fn get_opt(c: &mut dyn Conn, name: &str) -> Result<Option<StoredEndpoint>, StoreError> {
    let rows = c.query(
        &format!("SELECT {COLUMNS} FROM endpoints WHERE name = ?"),
        &[name.into()],
    )?;
    rows.into_iter().next().map(decode).transpose()
}

pub fn get(c: &mut dyn Conn, name: &str) -> Result<StoredEndpoint, StoreError> {
    get_opt(c, name)?.ok_or_else(|| Error::not_found(format!("endpoint '{name}' not found")).into())
}

pub fn list(c: &mut dyn Conn) -> Result<Vec<StoredEndpoint>, StoreError> {
    c.query(
        &format!("SELECT {COLUMNS} FROM endpoints ORDER BY name"),
        &[],
    )?
    .into_iter()
    .map(decode)
    .collect()
}

/// Creates or replaces an endpoint's definition and state at `now` (the controller's clock).
pub fn put_at(
    c: &mut dyn Conn,
    name: &str,
    spec: &str,
    state: &str,
    event: Option<&EndpointEvent>,
    now: i64,
) -> Result<StoredEndpoint, StoreError> {
    validate_endpoint_name(name)?;
    json("spec", spec)?;
    json("state", state)?;
    c.exec(
        "INSERT INTO endpoints (name, spec, state, created_time, updated_time) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, state = excluded.state, \
         updated_time = excluded.updated_time",
        &[name.into(), spec.into(), state.into(), now.into(), now.into()],
    )?;
    append(c, name, event)?;
    get(c, name)
}

/// Replaces the controller state of an existing endpoint at `now`.
pub fn set_state_at(
    c: &mut dyn Conn,
    name: &str,
    state: &str,
    event: Option<&EndpointEvent>,
    now: i64,
) -> Result<StoredEndpoint, StoreError> {
    json("state", state)?;
    let n = c.exec(
        "UPDATE endpoints SET state = ?, updated_time = ? WHERE name = ?",
        &[state.into(), now.into(), name.into()],
    )?;
    if n == 0 {
        return Err(Error::not_found(format!("endpoint '{name}' not found")).into());
    }
    append(c, name, event)?;
    get(c, name)
}

/// Deletes an endpoint; appends `endpoint.deleted`.
pub fn delete(c: &mut dyn Conn, name: &str) -> Result<(), StoreError> {
    let n = c.exec("DELETE FROM endpoints WHERE name = ?", &[name.into()])?;
    if n == 0 {
        return Err(Error::not_found(format!("endpoint '{name}' not found")).into());
    }
    events::append(
        c,
        "endpoint.deleted",
        &format!("endpoint:{name}"),
        None,
        serde_json::json!({ "name": name }),
    )?;
    Ok(())
}
