//! `sextant webhooks rekey`: after changing `SEXTANT_SECRET_KEY`, seal every
//! stored webhook secret under the new key, directly in the store (like
//! `sextant db upgrade`), so the old key can be dropped.
//!
//! The change, step by step: restart the servers with the new key as
//! `SEXTANT_SECRET_KEY` and the old one in `SEXTANT_SECRET_KEY_PREVIOUS`
//! (deliveries keep signing), run this with the same two variables, then
//! restart the servers without the previous key.

use anyhow::bail;
use clap::{Args, Subcommand};

use crate::server::{SecretKeyArgs, StoreArgs};

#[derive(Subcommand)]
pub enum WebhooksCommand {
    /// Re-encrypt every webhook secret under SEXTANT_SECRET_KEY, opening each with it or a key of SEXTANT_SECRET_KEY_PREVIOUS.
    Rekey(RekeyArgs),
}

#[derive(Args)]
pub struct RekeyArgs {
    #[command(flatten)]
    keys: SecretKeyArgs,
    #[command(flatten)]
    store: StoreArgs,
}

pub fn run(command: WebhooksCommand) -> anyhow::Result<()> {
    match command {
        WebhooksCommand::Rekey(args) => rekey(&args),
    }
}

fn rekey(args: &RekeyArgs) -> anyhow::Result<()> {
    let (current, previous) = args.keys.keys()?;
    let Some(current) = current else {
        bail!(
            "SEXTANT_SECRET_KEY is not set: it is the key every webhook secret is encrypted \
             under from now on\nhint: set it to the new key, and SEXTANT_SECRET_KEY_PREVIOUS \
             to the old one"
        );
    };
    let store = crate::audit::open(&args.store)?;
    let done = sextant_control::webhooks::rekey(store.as_ref(), &current, &previous)?;
    println!(
        "re-encrypted {} webhook secrets under the current key ({} already under it, {} \
         stored in plaintext and now encrypted)",
        done.resealed.len() + done.sealed_plaintext.len(),
        done.current,
        done.sealed_plaintext.len(),
    );
    for id in &done.changed {
        eprintln!("webhook {id}: its secret changed while this ran; run rekey again");
    }
    for (id, e) in &done.failed {
        eprintln!("webhook {id}: {e}");
    }
    if !done.failed.is_empty() {
        bail!(
            "{} webhook secrets could not be decrypted and were left as they are\nhint: add \
             the key they were encrypted with to SEXTANT_SECRET_KEY_PREVIOUS, or set those \
             webhooks' secrets anew",
            done.failed.len()
        );
    }
    if !done.changed.is_empty() {
        bail!(
            "{} webhook secrets changed while this ran and were left as they are; run rekey \
             again",
            done.changed.len()
        );
    }
    Ok(())
}
