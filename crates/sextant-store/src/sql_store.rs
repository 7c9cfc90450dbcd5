//! The one SQL implementation of [`MetaStore`].

use crate::{MetaStore, StoreError};

/// The SQL store.
pub struct SqlStore;

pub(crate) fn open(uri: &str, _root: &str) -> Result<Box<dyn MetaStore>, StoreError> {
    Err(StoreError::Config(format!("unsupported store uri {uri}")))
}

pub(crate) fn upgrade(uri: &str, _root: &str) -> Result<Vec<u32>, StoreError> {
    Err(StoreError::Config(format!("unsupported store uri {uri}")))
}
