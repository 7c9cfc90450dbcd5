//! The one reading of a cron schedule (pipeline `schedule:`, monitor
//! `schedule:`): POSIX five fields, no seconds, no year, evaluated in UTC.

pub use croner::Cron;

/// A schedule that is not five valid cron fields.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron schedule '{text}': {reason}")]
pub struct InvalidCron {
    /// The schedule as written.
    pub text: String,
    /// What the parser objected to.
    pub reason: String,
}

/// Parses `text` as a five-field UTC cron schedule.
pub fn parse_cron(text: &str) -> Result<Cron, InvalidCron> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(text)
        .map_err(|e| InvalidCron {
            text: text.to_string(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_fields_only() {
        assert!(parse_cron("*/5 * * * *").is_ok());
        assert!(parse_cron("0 */5 * * * *").is_err());
        let e = parse_cron("61 * * * *").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid cron schedule '61 * * * *': "),
            "{e}"
        );
    }
}
