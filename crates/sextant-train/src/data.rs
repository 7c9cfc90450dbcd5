//! CSV data sets: a numeric feature matrix plus a target column, and the train/test split
//! behind `builtin/split`.

use std::path::Path;

use crate::{Result, TrainError};

/// A dense row-major matrix of `f64`.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Matrix {
    /// A matrix from row-major values; `data.len()` must be `rows * cols`.
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Result<Self> {
        if data.len() != rows * cols {
            return Err(TrainError::LengthMismatch {
                what: "matrix values vs rows × columns",
                left: data.len(),
                right: rows * cols,
            });
        }
        Ok(Self { rows, cols, data })
    }

    /// A matrix from equal-length rows.
    pub fn from_rows(rows: &[Vec<f64>]) -> Result<Self> {
        let cols = rows.first().map_or(0, Vec::len);
        let mut data = Vec::with_capacity(rows.len() * cols);
        for row in rows {
            if row.len() != cols {
                return Err(TrainError::LengthMismatch {
                    what: "row length vs first row",
                    left: row.len(),
                    right: cols,
                });
            }
            data.extend_from_slice(row);
        }
        Ok(Self {
            rows: rows.len(),
            cols,
            data,
        })
    }

    /// Number of rows (samples).
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns (features).
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `i` as a slice.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    /// All values, row-major.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }
}

/// A CSV loaded as numeric features plus a target column.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Feature column names, in the order of the matrix columns.
    pub feature_names: Vec<String>,
    /// Name of the target column.
    pub target_name: String,
    /// One row per CSV record, one column per feature.
    pub features: Matrix,
    /// The target value of each row.
    pub target: Vec<f64>,
}

impl Dataset {
    /// The rows at `rows` (each below the row count), in that order.
    pub fn select(&self, rows: &[usize]) -> Dataset {
        let x = &self.features;
        let values = rows
            .iter()
            .flat_map(|&r| x.row(r).iter().copied())
            .collect();
        Dataset {
            feature_names: self.feature_names.clone(),
            target_name: self.target_name.clone(),
            features: Matrix {
                rows: rows.len(),
                cols: x.cols(),
                data: values,
            },
            target: rows.iter().map(|&r| self.target[r]).collect(),
        }
    }
}

/// Loads a headed CSV: every column but `target` becomes a feature. Every cell must parse as
/// a number; an error names the line and column of the first one that does not.
pub fn load_csv(path: &Path, target: &str) -> Result<Dataset> {
    load(path, target, false)
}

/// Like [`load_csv`], but an empty or `NaN` feature cell is a missing value, read as `NaN`,
/// for trainers that handle missing values (gradient-boosted trees). The target must still be
/// a finite number, and infinities are still refused.
pub fn load_csv_with_missing(path: &Path, target: &str) -> Result<Dataset> {
    load(path, target, true)
}

fn load(path: &Path, target: &str, allow_missing: bool) -> Result<Dataset> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| TrainError::csv(path, e))?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| TrainError::csv(path, e))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    let target_idx =
        header
            .iter()
            .position(|h| h == target)
            .ok_or_else(|| TrainError::MissingColumn {
                path: path.to_owned(),
                column: target.to_owned(),
                available: header.join(", "),
            })?;
    let feature_names: Vec<String> = header
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != target_idx)
        .map(|(_, h)| h.clone())
        .collect();
    if feature_names.is_empty() {
        return Err(TrainError::EmptyData(format!(
            "{}: no feature columns besides the target {target:?}",
            path.display()
        )));
    }

    let mut data = Vec::new();
    let mut y = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| TrainError::csv(path, e))?;
        let line = record.position().map_or(0, csv::Position::line);
        for (i, cell) in record.iter().enumerate() {
            let missing = allow_missing && i != target_idx && is_missing(cell);
            let parsed = if missing {
                Some(f64::NAN)
            } else {
                parse_cell(cell)
            };
            let value = parsed.ok_or_else(|| TrainError::NonNumeric {
                path: path.to_owned(),
                line,
                column: header[i].clone(),
                value: cell.to_owned(),
            })?;
            if i == target_idx {
                y.push(value);
            } else {
                data.push(value);
            }
        }
    }
    if y.is_empty() {
        return Err(TrainError::EmptyData(format!(
            "{}: no data rows",
            path.display()
        )));
    }
    let features = Matrix::new(y.len(), feature_names.len(), data)?;
    Ok(Dataset {
        feature_names,
        target_name: target.to_owned(),
        features,
        target: y,
    })
}

/// A finite number; NaN and infinities are refused because the linear trainers cannot
/// handle them.
fn parse_cell(cell: &str) -> Option<f64> {
    cell.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// An empty cell or any spelling of NaN (pandas and NumPy write `nan` or nothing).
fn is_missing(cell: &str) -> bool {
    let cell = cell.trim();
    cell.is_empty() || cell.eq_ignore_ascii_case("nan")
}

/// How many rows each side of a split received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitCounts {
    /// Rows written to the train file.
    pub train: usize,
    /// Rows written to the test file.
    pub test: usize,
}

/// Splits a headed CSV into train and test files: `round(n × test_fraction)` rows, chosen by
/// a shuffle seeded with `seed`, go to `test`; both files keep the header and the original
/// row order. The same input, fraction and seed always give the same split.
pub fn split_csv(
    input: &Path,
    test_fraction: f64,
    seed: u64,
    train_out: &Path,
    test_out: &Path,
) -> Result<SplitCounts> {
    if test_fraction.is_nan() || test_fraction <= 0.0 || test_fraction >= 1.0 {
        return Err(TrainError::InvalidParam(format!(
            "test_fraction must be strictly between 0 and 1, got {test_fraction}"
        )));
    }
    let mut reader = csv::Reader::from_path(input).map_err(|e| TrainError::csv(input, e))?;
    let header = reader
        .headers()
        .map_err(|e| TrainError::csv(input, e))?
        .clone();
    let records = reader
        .records()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TrainError::csv(input, e))?;
    let n = records.len();
    if n < 2 {
        return Err(TrainError::EmptyData(format!(
            "{}: {n} data rows, a split needs at least 2",
            input.display()
        )));
    }
    // Both sides get at least one row, whatever the fraction.
    let n_test = ((n as f64 * test_fraction).round() as usize).clamp(1, n - 1);
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(&mut order, seed);
    let mut is_test = vec![false; n];
    for &i in &order[..n_test] {
        is_test[i] = true;
    }

    let mut train = csv::Writer::from_path(train_out).map_err(|e| TrainError::csv(train_out, e))?;
    let mut test = csv::Writer::from_path(test_out).map_err(|e| TrainError::csv(test_out, e))?;
    train
        .write_record(&header)
        .map_err(|e| TrainError::csv(train_out, e))?;
    test.write_record(&header)
        .map_err(|e| TrainError::csv(test_out, e))?;
    for (record, &to_test) in records.iter().zip(&is_test) {
        let (writer, path) = if to_test {
            (&mut test, test_out)
        } else {
            (&mut train, train_out)
        };
        writer
            .write_record(record)
            .map_err(|e| TrainError::csv(path, e))?;
    }
    train.flush().map_err(|e| TrainError::io(train_out, e))?;
    test.flush().map_err(|e| TrainError::io(test_out, e))?;
    Ok(SplitCounts {
        train: n - n_test,
        test: n_test,
    })
}

/// Holds out `round(n × fraction)` rows (at least one, and at least one left to train on),
/// chosen by a shuffle seeded with `seed`: returns (training rows, held-out rows), each in
/// the original row order. The same data, fraction and seed always hold out the same rows.
pub fn holdout(data: &Dataset, fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
    if fraction.is_nan() || fraction <= 0.0 || fraction >= 1.0 {
        return Err(TrainError::InvalidParam(format!(
            "holdout must be strictly between 0 and 1, got {fraction}"
        )));
    }
    let n = data.target.len();
    if n < 2 {
        return Err(TrainError::EmptyData(format!(
            "{n} data rows: holding rows out needs at least 2"
        )));
    }
    let n_out = ((n as f64 * fraction).round() as usize).clamp(1, n - 1);
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(&mut order, seed);
    let (mut out, mut kept) = (order[..n_out].to_vec(), order[n_out..].to_vec());
    out.sort_unstable();
    kept.sort_unstable();
    Ok((data.select(&kept), data.select(&out)))
}

/// Keeps `round(n × fraction)` rows (at least one), chosen by a shuffle seeded with `seed`,
/// in the original row order. For one seed, a smaller fraction keeps a subset of the rows a
/// larger one keeps, so the rungs of successive halving train on nested samples.
pub fn sample(data: &Dataset, fraction: f64, seed: u64) -> Result<Dataset> {
    if fraction.is_nan() || fraction <= 0.0 || fraction > 1.0 {
        return Err(TrainError::InvalidParam(format!(
            "train_fraction must be above 0 and at most 1, got {fraction}"
        )));
    }
    let n = data.target.len();
    let k = ((n as f64 * fraction).round() as usize).max(1).min(n);
    let mut order: Vec<usize> = (0..n).collect();
    // Another stream than `holdout`'s, so the sample is not the held-out rows' complement order.
    shuffle(&mut order, seed ^ SAMPLE_STREAM);
    let mut kept = order[..k].to_vec();
    kept.sort_unstable();
    Ok(data.select(&kept))
}

/// Mixed into the seed of [`sample`].
const SAMPLE_STREAM: u64 = 0x5EED_5A3B_1E00_0001;

/// Fisher–Yates with SplitMix64. Hand-rolled on purpose: a split is part of a pipeline's
/// cached, reproducible result, so it must not change when a RNG crate changes its streams.
fn shuffle(items: &mut [usize], seed: u64) {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..items.len()).rev() {
        // The modulo bias is below 2^-40 for any realistic row count.
        let j = (next() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn loads_features_and_target_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "d.csv", "a,y,b\n1,10,2\n3, 20 ,4.5\n");
        let ds = load_csv(&path, "y").unwrap();
        assert_eq!(ds.feature_names, ["a", "b"]);
        assert_eq!(ds.target, [10.0, 20.0]);
        assert_eq!(ds.features.row(1), [3.0, 4.5]);
    }

    #[test]
    fn non_numeric_cell_names_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "d.csv", "a,y\n1,2\n3,4\nx3,5\n");
        let err = load_csv(&path, "y").unwrap_err().to_string();
        assert!(err.contains("line 4"), "{err}");
        assert!(err.contains("column \"a\""), "{err}");
        assert!(err.contains("\"x3\""), "{err}");
    }

    #[test]
    fn missing_feature_cells_are_nan_only_when_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "d.csv", "a,b,y\n1,,0\nnan,NaN,1\n2,3,1\n");
        assert!(matches!(
            load_csv(&path, "y"),
            Err(TrainError::NonNumeric { line: 2, .. })
        ));
        let ds = load_csv_with_missing(&path, "y").unwrap();
        let nan: Vec<bool> = ds.features.as_slice().iter().map(|v| v.is_nan()).collect();
        assert_eq!(nan, [false, true, true, true, false, false]);
        assert_eq!(ds.target, [0.0, 1.0, 1.0]);

        // The target is never missing, and infinities stay errors.
        let path = write(dir.path(), "t.csv", "a,y\n1,\n");
        assert!(load_csv_with_missing(&path, "y").is_err());
        let path = write(dir.path(), "i.csv", "a,y\ninf,1\n");
        assert!(load_csv_with_missing(&path, "y").is_err());
    }

    #[test]
    fn missing_target_lists_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "d.csv", "a,b\n1,2\n");
        let err = load_csv(&path, "price").unwrap_err().to_string();
        assert!(err.contains("no column named \"price\""), "{err}");
        assert!(err.contains("a, b"), "{err}");
    }

    #[test]
    fn split_is_deterministic_and_partitions_rows() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("x,y\n");
        for i in 0..50 {
            text.push_str(&format!("{i},{}\n", i * 2));
        }
        let input = write(dir.path(), "in.csv", &text);
        let run = |seed: u64, tag: &str| {
            let train = dir.path().join(format!("train-{tag}.csv"));
            let test = dir.path().join(format!("test-{tag}.csv"));
            let counts = split_csv(&input, 0.2, seed, &train, &test).unwrap();
            assert_eq!(
                counts,
                SplitCounts {
                    train: 40,
                    test: 10
                }
            );
            (
                std::fs::read_to_string(train).unwrap(),
                std::fs::read_to_string(test).unwrap(),
            )
        };
        let (train_a, test_a) = run(7, "a");
        let (train_b, test_b) = run(7, "b");
        let (_, test_c) = run(8, "c");
        assert_eq!((&train_a, &test_a), (&train_b, &test_b));
        assert_ne!(test_a, test_c);
        let mut rows: Vec<&str> = train_a
            .lines()
            .skip(1)
            .chain(test_a.lines().skip(1))
            .collect();
        rows.sort_by_key(|r| r.split(',').next().unwrap().parse::<u32>().unwrap());
        let expected: Vec<String> = (0..50).map(|i| format!("{i},{}", i * 2)).collect();
        assert_eq!(rows, expected);
    }

    fn numbered(n: usize) -> Dataset {
        let rows: Vec<Vec<f64>> = (0..n).map(|i| vec![i as f64]).collect();
        Dataset {
            feature_names: vec!["i".into()],
            target_name: "y".into(),
            features: Matrix::from_rows(&rows).unwrap(),
            target: (0..n).map(|i| i as f64 * 10.0).collect(),
        }
    }

    #[test]
    fn holdout_partitions_rows_and_is_deterministic() {
        let data = numbered(50);
        let (train, valid) = holdout(&data, 0.2, 3).unwrap();
        assert_eq!((train.target.len(), valid.target.len()), (40, 10));
        let mut all: Vec<f64> = train.features.as_slice().to_vec();
        all.extend_from_slice(valid.features.as_slice());
        all.sort_by(f64::total_cmp);
        assert_eq!(all, (0..50).map(|i| i as f64).collect::<Vec<_>>());
        // Rows keep their target and their original order.
        assert!(valid.features.as_slice().windows(2).all(|w| w[0] < w[1]));
        for (x, y) in valid.features.as_slice().iter().zip(&valid.target) {
            assert_eq!(*y, x * 10.0);
        }
        let (_, again) = holdout(&data, 0.2, 3).unwrap();
        assert_eq!(again.target, valid.target);
        let (_, other) = holdout(&data, 0.2, 4).unwrap();
        assert_ne!(other.target, valid.target);
        assert!(holdout(&data, 1.0, 0).is_err());
        assert!(holdout(&numbered(1), 0.5, 0).is_err());
    }

    #[test]
    fn smaller_samples_are_subsets_of_larger_ones() {
        let data = numbered(90);
        let ninth = sample(&data, 1.0 / 9.0, 5).unwrap();
        let third = sample(&data, 1.0 / 3.0, 5).unwrap();
        let all = sample(&data, 1.0, 5).unwrap();
        assert_eq!((ninth.target.len(), third.target.len()), (10, 30));
        assert_eq!(all.target, data.target);
        assert!(ninth.target.iter().all(|y| third.target.contains(y)));
        assert!(sample(&data, 0.0, 5).is_err());
        assert_eq!(sample(&data, 0.001, 5).unwrap().target.len(), 1);
    }

    #[test]
    fn split_rejects_bad_fraction() {
        let dir = tempfile::tempdir().unwrap();
        let input = write(dir.path(), "in.csv", "x\n1\n2\n");
        let (train, test) = (dir.path().join("a"), dir.path().join("b"));
        assert!(split_csv(&input, 1.0, 0, &train, &test).is_err());
        assert!(split_csv(&input, 0.0, 0, &train, &test).is_err());
    }
}
