//! `sextant pipelines validate FILE`: checks a pipeline file and prints each
//! problem as `file:line:col: message`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;

use crate::client::out;

#[derive(Subcommand)]
pub enum PipelinesCommand {
    /// Check a pipeline file: unknown keys, types, references, cycles.
    Validate(ValidateArgs),
}

#[derive(Args)]
pub struct ValidateArgs {
    /// The pipeline YAML file.
    file: PathBuf,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Runs a `pipelines` subcommand.
pub fn run(command: PipelinesCommand) -> anyhow::Result<()> {
    let PipelinesCommand::Validate(args) = command;
    let label = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.file).with_context(|| format!("reading {label}"))?;
    match sextant_pipelines::load(&label, &text) {
        Ok(v) => {
            let (name, steps) = (&v.pipeline.name.value, v.pipeline.steps.len());
            if args.json {
                out(
                    &json!({"ok": true, "file": label, "pipeline": name, "steps": steps})
                        .to_string(),
                )?;
            } else {
                out(&format!("ok: pipeline '{name}', {steps} steps"))?;
            }
            Ok(())
        }
        Err(sextant_pipelines::Error::Invalid { file, diagnostics }) => {
            if args.json {
                let errors: Vec<_> = diagnostics
                    .iter()
                    .map(|d| json!({"line": d.pos.line, "col": d.pos.col, "message": d.message}))
                    .collect();
                out(&json!({"ok": false, "file": file, "errors": errors}).to_string())?;
            } else {
                for d in &diagnostics {
                    eprintln!("{file}:{d}");
                }
            }
            anyhow::bail!("{file}: {} error(s)", diagnostics.len())
        }
    }
}
