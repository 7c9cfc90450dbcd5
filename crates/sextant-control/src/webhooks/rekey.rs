//! `sextant webhooks rekey`: every live webhook's secret sealed under the
//! current key, after a key change (the old key given as a previous one),
//! directly in the store. Each secret is replaced only if it is still the
//! value read, so a secret set meanwhile through a server is not undone.

use sextant_store::{MetaStore, StoreError};

use super::secret::{self, SecretError, SecretKey};

/// Webhooks read per store call.
const PAGE: u64 = 100;

/// What a rekey found and did, by webhook id.
#[derive(Debug, Default)]
pub struct Rekeyed {
    /// Sealed under a previous key, now under the current one.
    pub resealed: Vec<String>,
    /// Stored in plaintext (from before secrets were encrypted), now sealed.
    pub sealed_plaintext: Vec<String>,
    /// Already under the current key.
    pub current: usize,
    /// Changed through a server while this ran: run again.
    pub changed: Vec<String>,
    /// Opened by no key given: the webhook id and why.
    pub failed: Vec<(String, SecretError)>,
}

/// Reseals every live webhook's secret under `current`, opening each with
/// `current` or one of `previous`.
pub fn rekey(
    store: &dyn MetaStore,
    current: &SecretKey,
    previous: &[SecretKey],
) -> Result<Rekeyed, StoreError> {
    let mut out = Rekeyed::default();
    let mut offset = Some(0);
    while let Some(at) = offset {
        let page = store.list_webhooks(PAGE, at)?;
        offset = page.next_offset;
        for hook in page.items {
            let Some(stored) = hook.secret.filter(|s| !s.is_empty()) else {
                continue;
            };
            let id = hook.webhook_id;
            let to = match secret::reseal(&stored, current, previous) {
                Ok(None) => {
                    out.current += 1;
                    continue;
                }
                Ok(Some(to)) => to,
                Err(e) => {
                    out.failed.push((id, e));
                    continue;
                }
            };
            if !store.reseal_webhook_secret(&id, &stored, &to)? {
                out.changed.push(id);
            } else if secret::is_sealed(&stored) {
                out.resealed.push(id);
            } else {
                out.sealed_plaintext.push(id);
            }
        }
    }
    Ok(out)
}
