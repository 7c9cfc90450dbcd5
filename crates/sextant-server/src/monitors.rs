//! The monitor controller moved to `sextant_control::monitors` and its
//! engine to `sextant_monitor::engine`; the old paths stay while callers move.

pub use sextant_control::monitors::*;
pub use sextant_monitor::engine;
