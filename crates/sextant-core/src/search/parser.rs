//! Parser for filter strings and order_by clauses.

use super::ast::{Filter, OrderBy, SearchKind};
use crate::Error;

/// Parses a filter string for `kind`; an empty or blank string is the empty filter.
pub fn parse_filter(kind: SearchKind, input: &str) -> Result<Filter, Error> {
    let _ = kind;
    if input.trim().is_empty() {
        return Ok(Filter::default());
    }
    Err(Error::invalid("search filters are not parsed yet"))
}

/// Parses one order_by clause for `kind`.
pub fn parse_order_by(kind: SearchKind, input: &str) -> Result<OrderBy, Error> {
    let _ = (kind, input);
    Err(Error::invalid("order_by is not parsed yet"))
}
