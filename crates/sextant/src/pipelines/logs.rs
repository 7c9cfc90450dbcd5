//! `sextant pipelines logs RUN [STEP] [--follow]`: a step's captured output,
//! read from the server by offset, so following a live step is polling for
//! what was written since the last read until the step ends.
//!
//! The step's stdout goes to stdout and its stderr to stderr. With one step
//! the bytes are copied as they are; with every step each line is prefixed
//! with its step's name (`train | …`). A step retried by its policy shows each attempt in
//! turn, with a marker line on stderr before the second and later ones.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use sextant_client::{LogChunk, LogQuery};

use crate::client::{Client, ClientArgs};

/// How long `--follow` waits before asking again when nothing was new.
const POLL: Duration = Duration::from_millis(250);

#[derive(Args)]
pub struct LogsArgs {
    /// The pipeline run id.
    run: String,
    /// Only this step; when absent, every step, each line prefixed with its name.
    step: Option<String>,
    /// Keep printing what the step (or the run) writes until it ends.
    #[arg(long, short)]
    follow: bool,
    #[command(flatten)]
    client: ClientArgs,
}

/// Which of the step's streams a cursor reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    /// Writes `bytes` to our own stream of the same name.
    fn write(self, bytes: &[u8]) -> anyhow::Result<()> {
        let result = match self {
            Stream::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(bytes).and_then(|()| out.flush())
            }
            Stream::Stderr => {
                let mut err = std::io::stderr().lock();
                err.write_all(bytes).and_then(|()| err.flush())
            }
        };
        match result {
            // `… | head` closed the pipe: stop quietly, like `out`.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
            other => other.context("writing the log"),
        }
    }
}

/// How far one stream of one step has been printed.
struct Cursor {
    step: String,
    /// What each line is prefixed with when every step is shown.
    label: String,
    stream: Stream,
    /// The attempt being printed; 0 until the step has started.
    attempt: i64,
    offset: u64,
    /// With prefixes, the start of a line whose end has not been read yet.
    partial: String,
    /// The step will write nothing more to this stream.
    done: bool,
    /// Bytes printed from this stream so far.
    printed: u64,
    /// The step's state and attempts in the last answer.
    state: String,
    attempts: i64,
}

/// Runs `pipelines logs`.
pub fn run(args: LogsArgs) -> anyhow::Result<()> {
    if args.client.json {
        bail!("`pipelines logs` prints the logs as they are; --json is not supported");
    }
    let client = Client::new(&args.client)?;
    let steps = match &args.step {
        Some(s) => vec![s.clone()],
        None => {
            let run = client.block(client.get_pipeline_run(&args.run))?;
            run["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["name"].as_str().map(String::from))
                .collect()
        }
    };
    // Names padded to the longest, so the lines of every step line up.
    let width = steps.iter().map(|s| s.chars().count()).max().unwrap_or(0);
    let prefixed = args.step.is_none();
    let mut cursors: Vec<Cursor> = steps
        .iter()
        .flat_map(|step| {
            [Stream::Stdout, Stream::Stderr].map(|stream| Cursor {
                step: step.clone(),
                label: format!("{step:<width$} | "),
                stream,
                attempt: 0,
                offset: 0,
                partial: String::new(),
                done: false,
                printed: 0,
                state: String::new(),
                attempts: 0,
            })
        })
        .collect();
    loop {
        let mut printed = false;
        for cursor in cursors.iter_mut().filter(|c| !c.done) {
            printed |= drain(&client, &args.run, cursor, prefixed)?;
        }
        if !args.follow || cursors.iter().all(|c| c.done) {
            break;
        }
        if !printed {
            std::thread::sleep(POLL);
        }
    }
    for cursor in &mut cursors {
        flush_partial(cursor)?;
    }
    if let Some(note) = silence(&args.run, args.step.as_deref(), &cursors) {
        eprintln!("{note}");
    }
    Ok(())
}

/// What to say on stderr when nothing was printed, so an empty log is not
/// mistaken for a failure to read it.
fn silence(run: &str, step: Option<&str>, cursors: &[Cursor]) -> Option<String> {
    if cursors.iter().any(|c| c.printed > 0) {
        return None;
    }
    let Some(step) = step else {
        return Some(format!("no step of run {run} has written any output yet"));
    };
    let c = cursors.first()?;
    Some(if c.attempts == 0 {
        format!("step '{step}' of run {run} has not run (it is {})", c.state)
    } else if c.done {
        format!(
            "step '{step}' of run {run} wrote no output (attempt {} of {}: {}; nothing on stdout or stderr)",
            c.attempt.max(1),
            c.attempts,
            c.state
        )
    } else {
        format!(
            "step '{step}' of run {run} has written no output so far (it is {})",
            c.state
        )
    })
}

/// Prints everything `cursor`'s stream holds now, moving on to later
/// attempts as earlier ones complete; returns whether it printed anything.
fn drain(client: &Client, run: &str, cursor: &mut Cursor, prefixed: bool) -> anyhow::Result<bool> {
    let mut printed = false;
    loop {
        let chunk = read(client, run, cursor)?;
        let attempts = chunk.attempts;
        cursor.attempts = attempts;
        cursor.state = chunk.status;
        if cursor.attempt == 0 {
            if attempts == 0 {
                cursor.done = chunk.finished;
                return Ok(printed);
            }
            // The step has started: print from its first attempt.
            cursor.attempt = 1;
            continue;
        }
        let data = chunk.data;
        let next = chunk.next_offset;
        if !data.is_empty() || next > cursor.offset {
            cursor.printed += data.len() as u64;
            emit(cursor, &data, prefixed)?;
            cursor.offset = next;
            printed = true;
            continue;
        }
        if chunk.finished {
            cursor.done = true;
            flush_partial(cursor)?;
            return Ok(printed);
        }
        if chunk.complete && cursor.attempt < attempts {
            flush_partial(cursor)?;
            cursor.attempt += 1;
            cursor.offset = 0;
            // Once per attempt, not once per stream.
            if cursor.stream == Stream::Stdout {
                eprintln!("--- step '{}': attempt {} ---", cursor.step, cursor.attempt);
            }
            continue;
        }
        return Ok(printed);
    }
}

/// One read of the cursor's stream from its offset.
fn read(client: &Client, run: &str, cursor: &Cursor) -> anyhow::Result<LogChunk> {
    let query = LogQuery {
        step: cursor.step.clone(),
        stream: cursor.stream.as_str().to_string(),
        attempt: (cursor.attempt > 0).then_some(cursor.attempt),
        offset: cursor.offset,
    };
    client.block(client.step_log(run, &query))
}

/// Prints a piece of a log: as is, or line by line behind the step's name.
fn emit(cursor: &mut Cursor, data: &str, prefixed: bool) -> anyhow::Result<()> {
    if !prefixed {
        return cursor.stream.write(data.as_bytes());
    }
    cursor.partial.push_str(data);
    let Some(end) = cursor.partial.rfind('\n') else {
        return Ok(());
    };
    let whole: String = cursor.partial.drain(..=end).collect();
    let mut text = String::new();
    for line in whole.lines() {
        text.push_str(&format!("{}{line}\n", cursor.label));
    }
    cursor.stream.write(text.as_bytes())
}

/// Prints a last line that had no line ending.
fn flush_partial(cursor: &mut Cursor) -> anyhow::Result<()> {
    if cursor.partial.is_empty() {
        return Ok(());
    }
    let line = std::mem::take(&mut cursor.partial);
    cursor
        .stream
        .write(format!("{}{line}\n", cursor.label).as_bytes())
}
