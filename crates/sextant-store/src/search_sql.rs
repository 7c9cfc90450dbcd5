//! search_sql
