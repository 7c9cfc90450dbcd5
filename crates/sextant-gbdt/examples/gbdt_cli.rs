//! Train and predict on numeric CSV files; the scikit-learn comparison test drives it.
//!
//! ```text
//! gbdt_cli train   --data train.csv --target y --objective regression|binary|multiclass
//!                  --model model.json [--n-trees 100] [--learning-rate 0.1]
//!                  [--max-leaf-nodes 31] [--max-depth D] [--min-samples-leaf 20] [--l2 0]
//!                  [--max-bins 255] [--early-stopping SEED]
//! gbdt_cli predict --model model.json --data features.csv --out predictions.csv [--flat]
//! gbdt_cli export  --model model.json --out ensemble.json
//! gbdt_cli bench   [--rows 100000] [--features 10] [--trees 100]
//! ```
//!
//! `predict --flat` evaluates the exported ONNX-shaped arrays instead of the trees; `export`
//! writes those arrays as JSON. Empty cells
//! and `nan` are missing values. Data go to files, the summary of each command to stderr.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use sextant_gbdt::{EarlyStopping, Gbdt, Objective, Params};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        bail!("usage: gbdt_cli train|predict|bench [--flag value ...]");
    };
    let flags = parse_flags(rest)?;
    match command.as_str() {
        "train" => train(&flags),
        "predict" => predict(&flags),
        "export" => export(&flags),
        "bench" => bench(&flags),
        other => bail!("unknown command {other:?}; expected train, predict, export or bench"),
    }
}

struct Flags(HashMap<String, String>);

impl Flags {
    fn required(&self, name: &str) -> Result<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .with_context(|| format!("--{name} is required"))
    }

    fn parsed<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        match self.0.get(name) {
            Some(v) => v.parse().with_context(|| format!("--{name} {v:?}")),
            None => Ok(default),
        }
    }

    fn optional<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>>
    where
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        self.0
            .get(name)
            .map(|v| v.parse().with_context(|| format!("--{name} {v:?}")))
            .transpose()
    }
}

fn parse_flags(args: &[String]) -> Result<Flags> {
    let mut flags = HashMap::new();
    let mut it = args.iter().peekable();
    while let Some(arg) = it.next() {
        let name = arg
            .strip_prefix("--")
            .with_context(|| format!("unexpected argument {arg:?}"))?;
        let value = match it.peek() {
            Some(next) if !next.starts_with("--") => it.next().cloned().unwrap_or_default(),
            _ => String::from("true"),
        };
        flags.insert(name.to_owned(), value);
    }
    Ok(Flags(flags))
}

/// A numeric CSV with a header: column names and row-major values.
fn read_csv(path: &str) -> Result<(Vec<String>, Vec<f64>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .with_context(|| format!("{path} is empty"))?
        .split(',')
        .map(|s| s.trim().to_owned())
        .collect();
    let mut values = Vec::new();
    for (n, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != header.len() {
            bail!(
                "{path} line {}: {} cells, header has {}",
                n + 2,
                cells.len(),
                header.len()
            );
        }
        for cell in cells {
            let cell = cell.trim();
            values.push(if cell.is_empty() || cell.eq_ignore_ascii_case("nan") {
                f64::NAN
            } else {
                cell.parse()
                    .with_context(|| format!("{path} line {}: {cell:?}", n + 2))?
            });
        }
    }
    Ok((header, values))
}

fn train(flags: &Flags) -> Result<()> {
    let (header, values) = read_csv(flags.required("data")?)?;
    let target = flags.required("target")?;
    let t = header
        .iter()
        .position(|h| h == target)
        .with_context(|| format!("no column {target:?}"))?;
    let width = header.len();
    let y: Vec<f64> = values.chunks(width).map(|r| r[t]).collect();
    let x: Vec<f64> = values
        .chunks(width)
        .flat_map(|r| {
            r.iter()
                .enumerate()
                .filter(|(j, _)| *j != t)
                .map(|(_, v)| *v)
        })
        .collect();
    let objective = match flags.required("objective")? {
        "regression" => Objective::Regression,
        "binary" => Objective::Binary,
        "multiclass" => Objective::Multiclass {
            n_classes: y.iter().fold(0.0f64, |m, v| m.max(*v)) as usize + 1,
        },
        other => bail!("unknown objective {other:?}"),
    };
    let defaults = Params::default();
    let params = Params {
        objective,
        n_trees: flags.parsed("n-trees", defaults.n_trees)?,
        learning_rate: flags.parsed("learning-rate", defaults.learning_rate)?,
        max_leaf_nodes: flags
            .optional("max-leaf-nodes")?
            .or(defaults.max_leaf_nodes),
        max_depth: flags.optional("max-depth")?,
        min_samples_leaf: flags.parsed("min-samples-leaf", defaults.min_samples_leaf)?,
        l2_regularization: flags.parsed("l2", defaults.l2_regularization)?,
        max_bins: flags.parsed("max-bins", defaults.max_bins)?,
        early_stopping: flags
            .optional::<u64>("early-stopping")?
            .map(|seed| EarlyStopping {
                seed,
                ..EarlyStopping::default()
            }),
    };
    let started = Instant::now();
    let model = Gbdt::fit(&params, &x, width - 1, &y)?;
    eprintln!(
        "trained {} trees on {} rows in {:.2?}",
        model.trees().len(),
        y.len(),
        started.elapsed()
    );
    let path = flags.required("model")?;
    std::fs::write(path, model.to_json()).with_context(|| format!("writing {path}"))?;
    Ok(())
}

fn predict(flags: &Flags) -> Result<()> {
    let model = load_model(flags)?;
    let (header, x) = read_csv(flags.required("data")?)?;
    if header.len() != model.n_features() {
        bail!(
            "the data have {} columns, the model {} features",
            header.len(),
            model.n_features()
        );
    }
    let predictions = if flags.0.contains_key("flat") {
        model.to_tree_ensemble().evaluate(&x, model.n_features())?
    } else {
        model.predict(&x)?
    };
    let columns = predictions.len() / (x.len() / model.n_features()).max(1);
    let mut out = if model.objective() == Objective::Regression {
        String::from("prediction\n")
    } else {
        (0..columns)
            .map(|c| format!("p{c}"))
            .collect::<Vec<_>>()
            .join(",")
            + "\n"
    };
    for row in predictions.chunks(columns.max(1)) {
        let cells: Vec<String> = row.iter().map(|v| format!("{v:?}")).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    let out_path = flags.required("out")?;
    std::fs::write(out_path, out).with_context(|| format!("writing {out_path}"))?;
    eprintln!(
        "wrote {} predictions to {out_path}",
        predictions.len() / columns.max(1)
    );
    Ok(())
}

fn load_model(flags: &Flags) -> Result<Gbdt> {
    let path = flags.required("model")?;
    let json = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    Ok(Gbdt::from_json(&json)?)
}

fn export(flags: &Flags) -> Result<()> {
    let ensemble = load_model(flags)?.to_tree_ensemble();
    let out = flags.required("out")?;
    std::fs::write(out, serde_json::to_string(&ensemble)?)
        .with_context(|| format!("writing {out}"))?;
    Ok(())
}

/// Training throughput on synthetic regression data; build with `--release` for real figures.
fn bench(flags: &Flags) -> Result<()> {
    let rows: usize = flags.parsed("rows", 100_000)?;
    let n_features: usize = flags.parsed("features", 10)?;
    let n_trees: usize = flags.parsed("trees", 100)?;
    let mut state = 42u64;
    let mut uniform = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let x: Vec<f64> = (0..rows * n_features).map(|_| uniform()).collect();
    let y: Vec<f64> = x
        .chunks(n_features)
        .map(|r| 10.0 * (r[0] * r[1] * 3.0).sin() + 5.0 * r[2] * r[2] + r[3] + uniform())
        .collect();
    let params = Params {
        n_trees,
        ..Params::default()
    };
    let started = Instant::now();
    let model = Gbdt::fit(&params, &x, n_features, &y)?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{rows} rows x {n_features} features, {} trees: {seconds:.2} s, {:.0} rows/s",
        model.trees().len(),
        rows as f64 / seconds
    );
    Ok(())
}
