//! `sextant webhooks rekey` as a user runs it after changing the key: from
//! a fresh working directory, with a relative `--data-dir`, the new key in
//! `SEXTANT_SECRET_KEY` and the old one in `SEXTANT_SECRET_KEY_PREVIOUS`.

mod common;

use std::path::Path;
use std::process::Output;

use sextant_control::webhooks::{SecretKey, WebhookSettings, Webhooks};
use sextant_core::webhooks::{EventFilter, NewWebhook, WebhookStatus};
use sextant_store::MetaStore;

const OLD: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const NEW: &str = "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";
const LOST: &str = "abababababababababababababababababababababababababababababababab";

fn key(hex: &str) -> SecretKey {
    SecretKey::parse(hex).unwrap()
}

fn rekey(cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(common::BIN);
    cmd.current_dir(cwd)
        .args(["webhooks", "rekey", "--data-dir", "data"])
        .env_remove("SEXTANT_LOG")
        .env_remove("SEXTANT_SECRET_KEY")
        .env_remove("SEXTANT_SECRET_KEY_PREVIOUS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn hook(store: &dyn MetaStore, name: &str, secret: Option<String>) -> String {
    store
        .create_webhook(&NewWebhook {
            name: name.into(),
            description: None,
            url: "https://example.com/hook".into(),
            events: vec![EventFilter::Kind("*".into())],
            secret,
            status: WebhookStatus::Active,
        })
        .unwrap()
        .webhook_id
}

/// What a server holding only `keys` signs a webhook's deliveries with.
fn signing_secret(store: &dyn MetaStore, id: &str, current: &str) -> Result<String, String> {
    let hooks = Webhooks::new(WebhookSettings {
        secret_key: Some(key(current)),
        ..WebhookSettings::default()
    });
    let stored = store.get_webhook(id).unwrap().secret;
    hooks
        .reveal_secret(stored.as_deref())
        .map(|s| s.unwrap_or_default())
        .map_err(|e| e.to_string())
}

#[test]
fn rekey_moves_every_secret_to_the_new_key_and_names_what_it_cannot_open() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let uri = sextant_store::sqlite_uri::sqlite_uri(&data.join("sextant.db")).unwrap();
    sextant_store::upgrade(&uri, "mlflow-artifacts:").unwrap();
    let store = sextant_store::open(&uri, "mlflow-artifacts:").unwrap();
    let old = hook(
        store.as_ref(),
        "old",
        Some(key(OLD).seal("old-secret").unwrap()),
    );
    let plain = hook(store.as_ref(), "plain", Some("legacy-secret".into()));
    let lost = hook(
        store.as_ref(),
        "lost",
        Some(key(LOST).seal("gone").unwrap()),
    );
    let none = hook(store.as_ref(), "none", None);
    let before = store.get_webhook(&old).unwrap();

    // Without the new key nothing is done.
    let out = rekey(dir.path(), &[("SEXTANT_SECRET_KEY_PREVIOUS", OLD)]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("SEXTANT_SECRET_KEY is not set"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        signing_secret(store.as_ref(), &old, OLD).unwrap(),
        "old-secret"
    );

    let keys = [
        ("SEXTANT_SECRET_KEY", NEW),
        ("SEXTANT_SECRET_KEY_PREVIOUS", OLD),
    ];
    let out = rekey(dir.path(), &keys);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "one secret opens with no key given");
    assert!(
        stdout.contains("re-encrypted 2 webhook secrets under the current key (0 already under it, 1 stored in plaintext and now encrypted)"),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!(
            "webhook {lost}: the webhook's secret cannot be decrypted"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("SEXTANT_SECRET_KEY_PREVIOUS"), "{stderr}");
    // The new key alone now signs as before; the old one opens nothing.
    assert_eq!(
        signing_secret(store.as_ref(), &old, NEW).unwrap(),
        "old-secret"
    );
    assert_eq!(
        signing_secret(store.as_ref(), &plain, NEW).unwrap(),
        "legacy-secret"
    );
    assert!(signing_secret(store.as_ref(), &old, OLD).is_err());
    assert!(
        store
            .get_webhook(&plain)
            .unwrap()
            .secret
            .unwrap()
            .starts_with("enc:v1:")
    );
    // The undecryptable one is left as it was; the webhook itself unchanged.
    assert_eq!(signing_secret(store.as_ref(), &lost, LOST).unwrap(), "gone");
    assert_eq!(store.get_webhook(&none).unwrap().secret, None);
    let after = store.get_webhook(&old).unwrap();
    assert_eq!(after.last_updated_timestamp, before.last_updated_timestamp);

    // Deleting the lost one drops its secret; a second run has nothing to do.
    store.delete_webhook(&lost).unwrap();
    let out = rekey(dir.path(), &keys);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("re-encrypted 0 webhook secrets under the current key (2 already under it, 0 stored in plaintext"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn rekey_refuses_a_missing_store_and_malformed_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = rekey(dir.path(), &[("SEXTANT_SECRET_KEY", NEW)]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no store at"),
        "{}",
        text(&out.stderr)
    );
    assert!(!dir.path().join("data").exists(), "nothing created");
    let out = rekey(
        dir.path(),
        &[
            ("SEXTANT_SECRET_KEY", NEW),
            ("SEXTANT_SECRET_KEY_PREVIOUS", &format!("{OLD},short")),
        ],
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("SEXTANT_SECRET_KEY_PREVIOUS, key 2 of the list"),
        "{stderr}"
    );
    assert!(!stderr.contains("short"), "never echoes a key: {stderr}");
}
