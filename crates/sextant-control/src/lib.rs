//! Sextant's control plane: the controllers that join several domains
//! through the metadata store. Being filled from `sextant-server` (issue 16).

pub mod monitors;
pub mod webhooks;
