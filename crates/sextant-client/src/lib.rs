//! The one typed HTTP client of Sextant's native and MLflow APIs. Being
//! built (issue 16).
