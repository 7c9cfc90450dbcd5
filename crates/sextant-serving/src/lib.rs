//! Sextant's data plane: model loading, the gateway, inference protocols,
//! the endpoint controller and rollouts. Being filled from `sextant-server`
//! (issue 16).
