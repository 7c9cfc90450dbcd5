//! Sextant's data plane: model loading, the gateway, inference protocols,
//! the endpoint controller and rollouts. Being filled from `sextant-server`
//! (issue 16). It reads the metadata store through the `MetaStore` trait only
//! and imports nothing from `sextant-server`.

pub mod endpoints;
pub mod origin;
pub mod pool;
