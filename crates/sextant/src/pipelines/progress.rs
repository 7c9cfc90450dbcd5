//! What `pipelines run --wait` says about steps that take a while: every
//! [`EVERY`], each running step's time so far and the last line it wrote, so
//! a long step shows it is alive (and what it is doing) without `logs -f`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use sextant_client::LogQuery;

use crate::client::{Client, text};

/// How often a running step is reported.
const EVERY: Duration = Duration::from_secs(5);
/// Log reads per step and report, so a step that writes fast cannot stall the wait.
const MAX_READS: usize = 8;
/// The longest last line shown, in characters.
const MAX_LINE: usize = 120;

/// One running step: since when, how far its output was read, its last line.
struct Running {
    since: Instant,
    attempt: i64,
    offsets: [u64; 2],
    last_line: Option<String>,
}

/// The running steps of one run, and when they were last reported.
pub struct Progress {
    steps: BTreeMap<String, Running>,
    reported: Instant,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            steps: BTreeMap::new(),
            reported: Instant::now(),
        }
    }

    /// Notes which steps of `run` (the run's JSON) are running; every
    /// [`EVERY`] prints one line per running step on stderr.
    pub fn update(&mut self, client: &Client, run_id: &str, run: &Value) {
        let now = Instant::now();
        let mut live = Vec::new();
        for step in run["steps"].as_array().into_iter().flatten() {
            if step["status"].as_str() != Some("running") {
                continue;
            }
            let name = text(&step["name"]);
            let attempt = step["attempts"].as_i64().unwrap_or(1);
            let entry = self.steps.entry(name.clone()).or_insert(Running {
                since: now,
                attempt,
                offsets: [0, 0],
                last_line: None,
            });
            if entry.attempt != attempt {
                *entry = Running {
                    since: now,
                    attempt,
                    offsets: [0, 0],
                    last_line: None,
                };
            }
            live.push(name);
        }
        self.steps.retain(|name, _| live.contains(name));
        if self.steps.is_empty() || now.duration_since(self.reported) < EVERY {
            return;
        }
        self.reported = now;
        for (name, step) in &mut self.steps {
            // A step that just started says so itself ("running").
            if now.duration_since(step.since) < EVERY {
                continue;
            }
            // The tail is a courtesy: a failed read leaves the last line as it was.
            read_tail(client, run_id, name, step);
            let elapsed = now.duration_since(step.since).as_secs();
            match &step.last_line {
                Some(line) => eprintln!("  {name}: running for {elapsed} s | {line}"),
                None => eprintln!("  {name}: running for {elapsed} s (no output yet)"),
            }
        }
    }
}

/// Reads what `step` wrote since the last report, on both streams, and keeps
/// the last non-empty line.
fn read_tail(client: &Client, run_id: &str, name: &str, step: &mut Running) {
    for (i, stream) in ["stdout", "stderr"].into_iter().enumerate() {
        for _ in 0..MAX_READS {
            let query = LogQuery {
                step: name.to_string(),
                stream: stream.to_string(),
                attempt: Some(step.attempt),
                offset: step.offsets[i],
            };
            let Ok(chunk) = client.block(client.step_log(run_id, &query)) else {
                return;
            };
            let (data, next) = (chunk.data.as_str(), chunk.next_offset);
            if let Some(line) = data.lines().rev().map(str::trim).find(|l| !l.is_empty()) {
                step.last_line = Some(shorten(line));
            }
            if next <= step.offsets[i] {
                break;
            }
            step.offsets[i] = next;
        }
    }
}

/// `line` cut to [`MAX_LINE`] characters.
fn shorten(line: &str) -> String {
    match line.char_indices().nth(MAX_LINE) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_string(),
    }
}
