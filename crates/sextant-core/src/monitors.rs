//! Stored monitors and monitor runs. A monitor's definition (`spec`) is a JSON
//! document whose shape belongs to the server; a monitor run is one check of a
//! window of data against the monitor's baseline, with its outcome summary
//! (JSON) and where its files are.

use crate::endpoints::validate_endpoint_name;
use crate::{Error, Result};

/// One monitor row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMonitor {
    pub name: String,
    /// The applied definition (JSON).
    pub spec: String,
    pub created_time: i64,
    pub updated_time: i64,
}

/// Where a monitor run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MonitorRunStatus {
    /// Reading and checking the window.
    Running,
    /// Checked; no violation.
    Completed,
    /// Checked; at least one violation (a `monitor.violation` event was appended).
    CompletedWithViolations,
    /// The check could not be made (no data, unreadable baseline, …); `error` says why.
    Failed,
}

impl MonitorRunStatus {
    /// The stored and wire spelling (SageMaker's execution statuses).
    pub fn as_str(self) -> &'static str {
        match self {
            MonitorRunStatus::Running => "InProgress",
            MonitorRunStatus::Completed => "Completed",
            MonitorRunStatus::CompletedWithViolations => "CompletedWithViolations",
            MonitorRunStatus::Failed => "Failed",
        }
    }

    /// Parses [`MonitorRunStatus::as_str`]'s spelling.
    pub fn parse(text: &str) -> Result<MonitorRunStatus> {
        Ok(match text {
            "InProgress" => MonitorRunStatus::Running,
            "Completed" => MonitorRunStatus::Completed,
            "CompletedWithViolations" => MonitorRunStatus::CompletedWithViolations,
            "Failed" => MonitorRunStatus::Failed,
            other => {
                return Err(Error::invalid(format!(
                    "invalid monitor run status '{other}': use InProgress, Completed, CompletedWithViolations or Failed"
                )));
            }
        })
    }

    /// Whether the run has ended.
    pub fn is_terminal(self) -> bool {
        self != MonitorRunStatus::Running
    }
}

/// One monitor run row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorRun {
    /// 32 hex digits.
    pub id: String,
    pub monitor: String,
    pub status: MonitorRunStatus,
    /// `manual` or `schedule`.
    pub trigger: String,
    /// The window checked, ms since the epoch, `[start, end)`.
    pub window_start: i64,
    pub window_end: i64,
    pub started_time: i64,
    pub ended_time: Option<i64>,
    /// The outcome (JSON): counts, violations, drift, quality, file paths.
    pub summary: String,
    /// Why a failed run failed.
    pub error: Option<String>,
}

/// An event to append with a monitor write: its kind and JSON payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorEvent {
    pub kind: String,
    pub payload: String,
}

/// Checks a monitor name: the same rule as endpoint names (it is a URL segment
/// and a directory of reports).
pub fn validate_monitor_name(name: &str) -> Result<()> {
    validate_endpoint_name(name).map_err(|_| {
        Error::invalid(format!(
            "invalid monitor name '{name}': use 1 to 63 letters, digits and '-', starting and ending with a letter or digit"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for s in [
            MonitorRunStatus::Running,
            MonitorRunStatus::Completed,
            MonitorRunStatus::CompletedWithViolations,
            MonitorRunStatus::Failed,
        ] {
            assert_eq!(MonitorRunStatus::parse(s.as_str()).unwrap(), s);
        }
        assert!(MonitorRunStatus::parse("done").is_err());
        assert!(validate_monitor_name("churn-drift").is_ok());
        assert!(validate_monitor_name("churn_drift").is_err());
    }
}
