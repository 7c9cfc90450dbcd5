//! Conformance of webhooks, the delivery outbox and the delivery log: every
//! test runs against SQLite and PostgreSQL through the public `MetaStore`.

#[macro_use]
mod support;

use sextant_core::Error;
use sextant_core::webhooks::{
    DeliveryAttempt, DeliveryState, EventFilter, NewDelivery, NewWebhook, WebhookStatus,
    WebhookUpdate,
};
use sextant_store::StoreError;

use support::Fixture;

conformance!(
    webhook_lifecycle,
    outbox_claims_retries_and_logs,
    a_secret_is_resealed_only_if_unchanged,
);

fn new_hook(name: &str) -> NewWebhook {
    NewWebhook {
        name: name.into(),
        url: "https://example.com/hook".into(),
        events: vec![
            EventFilter::Mlflow("model_version.created".into()),
            EventFilter::kind("run.*").unwrap(),
        ],
        secret: Some("s3cret".into()),
        ..NewWebhook::default()
    }
}

fn invalid(r: Result<impl std::fmt::Debug, StoreError>) {
    assert!(
        matches!(r, Err(StoreError::Domain(Error::InvalidParameter(_)))),
        "{r:?}"
    );
}

fn webhook_lifecycle(f: &Fixture) {
    let s = f.store.as_ref();
    s.create_registered_model("m", None, &[]).unwrap();
    let a = s.create_webhook(&new_hook("a")).unwrap();
    assert_eq!(a.start_event_id, s.last_event_id().unwrap());
    assert_eq!(a.status, WebhookStatus::Active);
    assert_eq!(a.secret.as_deref(), Some("s3cret"));
    assert_eq!(a.events.len(), 2);
    assert_eq!(s.get_webhook(&a.webhook_id).unwrap(), a);
    invalid(s.create_webhook(&new_hook("-bad")));
    invalid(s.create_webhook(&NewWebhook {
        events: vec![],
        ..new_hook("b")
    }));

    let b = s.create_webhook(&new_hook("b")).unwrap();
    let p1 = s.list_webhooks(1, 0).unwrap();
    let p2 = s.list_webhooks(1, p1.next_offset.unwrap()).unwrap();
    let mut names = vec![p1.items[0].name.clone(), p2.items[0].name.clone()];
    names.sort();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(p2.next_offset, None);

    let u = s
        .update_webhook(
            &a.webhook_id,
            &WebhookUpdate {
                name: Some("a2".into()),
                description: Some("d".into()),
                events: Some(vec![EventFilter::kind("*").unwrap()]),
                secret: Some(String::new()),
                status: Some(WebhookStatus::Disabled),
                ..WebhookUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(u.name, "a2");
    assert_eq!(u.description.as_deref(), Some("d"));
    assert_eq!(u.secret, None, "an empty secret clears it");
    assert_eq!(u.events, vec![EventFilter::Kind("*".into())]);
    assert_eq!(u.url, a.url);
    let active: Vec<String> = s
        .active_webhooks()
        .unwrap()
        .into_iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(active, ["b"]);
    // Turned on again after events of its time off, it starts after them;
    // an update that leaves it on keeps its start.
    s.create_registered_model("m2", None, &[]).unwrap();
    let on = WebhookUpdate {
        status: Some(WebhookStatus::Active),
        ..WebhookUpdate::default()
    };
    let again = s.update_webhook(&a.webhook_id, &on).unwrap();
    assert_eq!(again.start_event_id, s.last_event_id().unwrap());
    assert!(again.start_event_id > a.start_event_id);
    s.create_registered_model("m3", None, &[]).unwrap();
    let still = s.update_webhook(&a.webhook_id, &on).unwrap();
    assert_eq!(still.start_event_id, again.start_event_id);

    s.delete_webhook(&b.webhook_id).unwrap();
    assert!(matches!(
        s.get_webhook(&b.webhook_id),
        Err(StoreError::Domain(Error::NotFound(_)))
    ));
    assert!(s.delete_webhook(&b.webhook_id).is_err());
    assert_eq!(s.list_webhooks(10, 0).unwrap().items.len(), 1);
}

/// `reseal_webhook_secret` swaps the stored secret only while it is the
/// value read (a rekey never undoes a secret set meanwhile), leaves the
/// update time alone, and touches no deleted webhook, whose secret
/// deleting dropped.
fn a_secret_is_resealed_only_if_unchanged(f: &Fixture) {
    let s = f.store.as_ref();
    let a = s.create_webhook(&new_hook("a")).unwrap();
    let id = a.webhook_id.as_str();
    assert!(!s.reseal_webhook_secret(id, "stale", "x").unwrap());
    assert_eq!(s.get_webhook(id).unwrap().secret.as_deref(), Some("s3cret"));
    assert!(s.reseal_webhook_secret(id, "s3cret", "enc:v1:new").unwrap());
    let after = s.get_webhook(id).unwrap();
    assert_eq!(after.secret.as_deref(), Some("enc:v1:new"));
    assert_eq!(after.last_updated_timestamp, a.last_updated_timestamp);
    let events = s.last_event_id().unwrap();
    assert!(
        s.reseal_webhook_secret(id, "enc:v1:new", "enc:v1:newer")
            .unwrap()
    );
    assert_eq!(s.last_event_id().unwrap(), events, "no event appended");
    s.delete_webhook(id).unwrap();
    assert!(!s.reseal_webhook_secret(id, "enc:v1:newer", "y").unwrap());
    assert!(!s.reseal_webhook_secret(id, "", "y").unwrap());
}

fn attempt(d: &sextant_core::webhooks::PendingDelivery, n: i64, code: i64) -> DeliveryAttempt {
    DeliveryAttempt {
        webhook_id: d.webhook_id.clone(),
        event_id: d.event_id,
        delivery_id: d.delivery_id.clone(),
        attempt: n,
        time: 1_000 * n,
        status_code: Some(code),
        error: (code >= 300).then(|| format!("HTTP {code}")),
        duration_ms: 5,
    }
}

fn outbox_claims_retries_and_logs(f: &Fixture) {
    let s = f.store.as_ref();
    let w = s.create_webhook(&new_hook("w")).unwrap();
    assert_eq!(s.webhook_cursor().unwrap(), 0);
    let d = |event_id| NewDelivery {
        webhook_id: w.webhook_id.clone(),
        event_id,
        event: "run.created".into(),
        body: format!("{{\"id\":{event_id}}}"),
    };
    // Queued at the fan-out's time, which the claims compare with: the
    // worker's clock, not the store's (a test's clock is years ahead).
    let now = 4_000_000_000_000;
    assert!(
        !s.enqueue_webhook_deliveries_at(5, 7, &[d(6)], now).unwrap(),
        "stale cursor"
    );
    assert!(
        s.enqueue_webhook_deliveries_at(0, 7, &[d(6), d(7)], now)
            .unwrap()
    );
    assert_eq!(s.webhook_cursor().unwrap(), 7);
    assert!(!s.enqueue_webhook_deliveries_at(0, 8, &[d(8)], now).unwrap());

    assert!(
        s.claim_webhook_deliveries(now - 1, 60_000, 10)
            .unwrap()
            .is_empty(),
        "not due before they were queued"
    );
    let due = s.claim_webhook_deliveries(now, 60_000, 10).unwrap();
    assert_eq!(due.len(), 2);
    assert_eq!(due[0].url, w.url);
    assert_eq!(due[0].secret.as_deref(), Some("s3cret"));
    assert_eq!(due[0].attempts, 0);
    assert_ne!(due[0].delivery_id, due[1].delivery_id);
    assert!(
        s.claim_webhook_deliveries(now, 60_000, 10)
            .unwrap()
            .is_empty(),
        "claimed deliveries are leased"
    );

    let first = &due[0];
    s.record_webhook_attempt(
        first.id,
        &attempt(first, 1, 503),
        DeliveryState::Pending {
            next_attempt_at: now + 100,
        },
    )
    .unwrap();
    s.record_webhook_attempt(
        due[1].id,
        &attempt(&due[1], 1, 200),
        DeliveryState::Delivered,
    )
    .unwrap();
    assert!(
        s.claim_webhook_deliveries(now + 99, 60_000, 10)
            .unwrap()
            .is_empty()
    );
    let again = s.claim_webhook_deliveries(now + 100, 60_000, 10).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(again[0].delivery_id, first.delivery_id);
    assert_eq!(again[0].body, first.body);
    s.record_webhook_attempt(
        again[0].id,
        &attempt(&again[0], 2, 200),
        DeliveryState::Delivered,
    )
    .unwrap();

    let log = s.webhook_delivery_log(&w.webhook_id, 10).unwrap();
    let got: Vec<(i64, i64, Option<i64>)> = log
        .iter()
        .map(|a| (a.event_id, a.attempt, a.status_code))
        .collect();
    assert_eq!(
        got,
        vec![(6, 1, Some(503)), (7, 1, Some(200)), (6, 2, Some(200))]
    );
    assert_eq!(s.webhook_delivery_log(&w.webhook_id, 1).unwrap().len(), 1);

    // Deleting a webhook cancels what it has not received.
    assert!(s.enqueue_webhook_deliveries_at(7, 9, &[d(9)], now).unwrap());
    s.delete_webhook(&w.webhook_id).unwrap();
    assert!(
        s.claim_webhook_deliveries(i64::MAX / 2, 1, 10)
            .unwrap()
            .is_empty()
    );
}
