//! MLflow's search grammar: filter strings and `order_by` clauses, parsed once
//! into an AST that stores translate to parameterized SQL.
//!
//! The grammar is AND-only (`metrics.acc > 0.9 and params.model = 'tree'`);
//! which identifiers and comparators are legal depends on the searched
//! entity, given as a [`SearchKind`].

mod ast;
mod parser;
mod rules;

pub use ast::*;
pub use parser::{
    FilterError, MAX_FILTER_CLAUSES, MAX_FILTER_LENGTH, parse_filter, parse_filter_located,
    parse_order_by, parse_order_by_list,
};
