//! Parquet files, row group by row group through the record API.

use std::path::Path;

use serde_json::Value;

use super::ReadError;
use crate::profile::{DatasetProfile, ProfileOptions};

/// Profiles a Parquet file: row groups in parallel (one thread per CPU, each
/// with its own reader, taking every n-th group), each through the record
/// API, merged in row-group order; columns keep the schema's order. Nested
/// values (lists, maps, structs) are profiled as their text.
pub fn profile_parquet(path: &Path, opts: ProfileOptions) -> Result<DatasetProfile, ReadError> {
    use parquet::file::reader::{FileReader, SerializedFileReader};

    let name = path.display().to_string();
    let open = || -> Result<SerializedFileReader<std::fs::File>, ReadError> {
        let file = std::fs::File::open(path).map_err(|source| ReadError::Io {
            path: name.clone(),
            source,
        })?;
        SerializedFileReader::new(file).map_err(|e| ReadError::Format {
            path: name.clone(),
            message: format!("not a readable Parquet file: {e}"),
        })
    };
    let reader = open()?;
    let groups = reader.metadata().num_row_groups();
    let columns: Vec<String> = reader
        .metadata()
        .file_metadata()
        .schema_descr()
        .root_schema()
        .get_fields()
        .iter()
        .map(|f| f.name().to_string())
        .collect();
    let empty = || {
        let mut p = DatasetProfile::new(opts);
        for c in &columns {
            p.column_index(c);
        }
        p
    };
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(groups)
        .max(1);
    let parts: Vec<Result<Vec<(usize, DatasetProfile)>, ReadError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (open, empty, name) = (&open, &empty, &name);
                scope.spawn(move || {
                    let reader = open()?;
                    let mut out = Vec::new();
                    for g in (t..groups).step_by(threads) {
                        let bad = |e: parquet::errors::ParquetError| {
                            let e = e.to_string();
                            let hint = if e.contains("Disabled feature") {
                                " (Sextant reads Snappy-compressed and uncompressed Parquet)"
                            } else {
                                ""
                            };
                            ReadError::Format {
                                path: name.clone(),
                                message: format!("row group {g}: {e}{hint}"),
                            }
                        };
                        let group = reader.get_row_group(g).map_err(bad)?;
                        let mut profile = empty();
                        for row in group.get_row_iter(None).map_err(bad)? {
                            let row = row.map_err(bad)?;
                            for (i, (_, field)) in row.get_column_iter().enumerate() {
                                push_parquet(&mut profile.columns[i], field);
                            }
                            profile.end_row();
                        }
                        out.push((g, profile));
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a Parquet worker panicked"))
            .collect()
    });
    let mut all = Vec::with_capacity(groups);
    for part in parts {
        all.extend(part?);
    }
    all.sort_by_key(|(g, _)| *g);
    let mut profile = empty();
    for (_, p) in &all {
        profile.merge(p);
    }
    Ok(profile)
}

/// One Parquet value into a column's profile: numbers keep their kind
/// (integers integral, floats fractional), text is typed like a CSV cell.
fn push_parquet(column: &mut crate::profile::ColumnProfile, field: &parquet::record::Field) {
    use parquet::record::Field;
    match field {
        Field::Null => column.push_json(&Value::Null),
        Field::Bool(b) => column.push_json(&Value::Bool(*b)),
        Field::Byte(x) => column.push_json(&Value::from(*x)),
        Field::Short(x) => column.push_json(&Value::from(*x)),
        Field::Int(x) => column.push_json(&Value::from(*x)),
        Field::Long(x) => column.push_json(&Value::from(*x)),
        Field::UByte(x) => column.push_json(&Value::from(*x)),
        Field::UShort(x) => column.push_json(&Value::from(*x)),
        Field::UInt(x) => column.push_json(&Value::from(*x)),
        Field::ULong(x) => column.push_json(&Value::from(*x)),
        // A NaN is missing, as in CSV; JSON has no NaN to carry it.
        Field::Float(x) if x.is_nan() => column.push_json(&Value::Null),
        Field::Double(x) if x.is_nan() => column.push_json(&Value::Null),
        Field::Float(x) => column.push_json(&float(f64::from(*x))),
        Field::Double(x) => column.push_json(&float(*x)),
        Field::Str(s) => column.push_text(Some(s)),
        // Decimals, dates, timestamps, bytes and nested values as their text.
        other => column.push_text(Some(&other.to_string())),
    }
}

/// A JSON number that stays a float (`2.0`, not `2`), so the column reads as fractional.
fn float(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}
