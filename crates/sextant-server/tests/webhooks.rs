//! Webhooks through the HTTP surface and the delivery worker: the SSRF
//! matrix at create/update and at delivery, MLflow's wire shapes, signed
//! deliveries to a real socket, the delivery log, and secrets encrypted at
//! rest. Through the typed client; MLflow's wire shapes on the wire.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_client::{Client, WebhookChanges, WebhookEvent, WebhookRequest};
use sextant_control::webhooks::{SecretKey, WebhookSettings, Webhooks, is_sealed, run_once, sign};
use sextant_core::webhooks::{EventFilter, NewWebhook};
use sextant_server::{AppState, SecurityConfig, controllers, router};
use support::{Served, eventually, refused, serve};
use tokio::sync::mpsc;

struct Fixture {
    /// The router, for MLflow's wire shapes.
    app: Router,
    served: Served,
    state: AppState,
    hooks: Webhooks,
}

impl Fixture {
    fn client(&self) -> &Client {
        &self.served.client
    }

    /// Creates registered model `name`: an event the webhooks here follow.
    async fn registered_model(&self, name: &str, description: Option<&str>) {
        self.client()
            .create_registered_model(name, description)
            .await
            .unwrap();
    }
}

/// The key webhook secrets are sealed with in these tests.
const KEY: &str = "5ec2e7a85ec2e7a85ec2e7a85ec2e7a85ec2e7a85ec2e7a85ec2e7a85ec2e7a8";

async fn fixture(allow_private: bool) -> Fixture {
    fixture_with_key(allow_private, Some(KEY)).await
}

async fn fixture_with_key(allow_private: bool, key: Option<&str>) -> Fixture {
    let store = sextant_store::open_in_memory("mlflow-artifacts:").expect("in-memory store");
    let artifacts = ArtifactStore::from_uri("memory://").expect("memory artifact store");
    let state = AppState::new(
        Arc::from(store),
        Arc::new(artifacts),
        SecurityConfig::loopback(),
    );
    let hooks = Webhooks::new(WebhookSettings {
        allow_private,
        backoff: Duration::from_millis(1),
        max_attempts: 3,
        secret_key: key.map(|k| SecretKey::parse(k).unwrap()),
        ..WebhookSettings::default()
    });
    let app = router(state.clone()).layer(axum::Extension(hooks.clone()));
    Fixture {
        served: serve(app.clone()).await,
        app,
        state,
        hooks,
    }
}

async fn call(app: &Router, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let uri = format!("/api/2.0/mlflow/{path}");
    let body = body.map(|b| b.to_string());
    support::send(app, method, &uri, body.as_deref(), &[]).await
}

/// Webhook `h1` to `url` on registered models' creation, signed with `s3cret`.
fn hook(url: &str) -> WebhookRequest {
    WebhookRequest {
        name: "h1".into(),
        url: url.into(),
        events: vec![WebhookEvent::Mlflow {
            entity: "REGISTERED_MODEL".into(),
            action: "CREATED".into(),
        }],
        secret: Some("s3cret".into()),
    }
}

/// Webhook `h1` as MLflow's client sends it.
fn hook_json(url: &str) -> Value {
    json!({
        "name": "h1",
        "url": url,
        "events": [{"entity": "REGISTERED_MODEL", "action": "CREATED"}],
        "secret": "s3cret",
    })
}

/// The id of a webhook as the server answers it.
fn id_of(webhook: &Value) -> String {
    webhook["webhook_id"].as_str().unwrap().to_string()
}

/// A receiver on a real socket: every POST is sent down the channel.
async fn receiver(status: StatusCode) -> (String, mpsc::UnboundedReceiver<(HeaderMap, String)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send((headers, body));
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://localhost:{port}/hook"), rx)
}

#[tokio::test]
async fn non_public_targets_are_refused_at_create_and_update() {
    let f = fixture(false).await;
    let c = f.client();
    for url in [
        "http://127.0.0.1/x",
        "http://127.1/x",
        "http://2130706433/x",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://10.0.0.1/x",
        "http://192.168.0.1/x",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/x",
        "http://[fd00::1]/x",
        "http://localhost/x",
        "http://localhost.:8080/x",
        "ftp://example.com/x",
        "file:///etc/passwd",
        "not a url",
    ] {
        let e = refused(c.create_webhook(&hook(url)).await);
        assert_eq!(e.status, 400, "{url}: {e:?}");
        assert_eq!(e.code, "INVALID_PARAMETER_VALUE", "{url}");
    }
    let id = id_of(
        &c.create_webhook(&hook("https://93.184.215.14/x"))
            .await
            .unwrap(),
    );
    let metadata = WebhookChanges {
        url: Some("http://169.254.169.254/".into()),
        ..WebhookChanges::default()
    };
    let e = refused(c.update_webhook(&id, &metadata).await);
    assert_eq!(e.status, 400, "{e:?}");
}

#[tokio::test]
async fn wire_shapes_follow_mlflow_and_hide_the_secret() {
    let f = fixture(true).await;
    let (s, v) = call(
        &f.app,
        "POST",
        "webhooks",
        Some(hook_json("http://127.0.0.1:9/x")),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let w = &v["webhook"];
    assert_eq!(w["status"], "ACTIVE");
    assert_eq!(
        w["events"],
        json!([{"entity": "REGISTERED_MODEL", "action": "CREATED"}])
    );
    assert!(w.get("secret").is_none() && w.get("description").is_none());
    let id = w["webhook_id"].as_str().unwrap();
    let (_, got) = call(&f.app, "GET", &format!("webhooks/{id}"), None).await;
    assert_eq!(&got["webhook"], w);

    let (s, v) = call(
        &f.app,
        "POST",
        "webhooks",
        Some(json!({"name": "h2", "url": "http://127.0.0.1:9/y", "events": ["run.*"]})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["webhook"]["sextant_events"], json!(["run.*"]));
    assert!(v["webhook"].get("events").is_none());

    // A webhook with only Sextant kinds is left out of MLflow-format lists
    // (the MLflow client cannot read one without MLflow events), but pages
    // keep their offsets: the first page is empty and points on.
    let (_, page) = call(&f.app, "GET", "webhooks?max_results=1", None).await;
    assert!(page.get("webhooks").is_none(), "{page}");
    let token = page["next_page_token"].as_str().unwrap();
    let (_, rest) = call(
        &f.app,
        "GET",
        &format!("webhooks?max_results=1&page_token={token}"),
        None,
    )
    .await;
    assert_eq!(rest["webhooks"][0]["name"], "h1");
    assert!(rest.get("next_page_token").is_none());
    let (s, _) = call(&f.app, "GET", "webhooks?max_results=1001", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    for bad in [
        json!({"name": "-bad", "url": "http://127.0.0.1/", "events": ["run.created"]}),
        json!({"name": "ok", "url": "http://127.0.0.1/", "events": []}),
        json!({"name": "ok", "url": "http://127.0.0.1/", "events": [{"entity": "MODEL_VERSION", "action": "SET"}]}),
        json!({"name": "ok", "url": "http://127.0.0.1/", "events": ["Run.Created"]}),
    ] {
        let (s, v) = call(&f.app, "POST", "webhooks", Some(bad.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
    }
    let (s, _) = call(&f.app, "DELETE", &format!("webhooks/{id}"), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = call(&f.app, "GET", &format!("webhooks/{id}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error_code"], "RESOURCE_DOES_NOT_EXIST");
}

#[tokio::test]
async fn deliveries_are_signed_and_logged() {
    let f = fixture(true).await;
    let (url, mut rx) = receiver(StatusCode::OK).await;
    let id = id_of(&f.client().create_webhook(&hook(&url)).await.unwrap());
    f.registered_model("m", Some("d")).await;
    run_once(&controllers::webhook_deps(&f.state), &f.hooks)
        .await
        .unwrap();

    let (headers, body) = rx.recv().await.unwrap();
    let header = |n: &str| headers.get(n).unwrap().to_str().unwrap().to_string();
    let expected = sign(
        "s3cret",
        &header("x-mlflow-delivery-id"),
        &header("x-mlflow-timestamp"),
        &body,
    );
    assert_eq!(header("x-mlflow-signature"), expected);
    assert_ne!(
        sign(
            "other",
            &header("x-mlflow-delivery-id"),
            &header("x-mlflow-timestamp"),
            &body
        ),
        expected
    );
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["entity"], "registered_model");
    assert_eq!(v["action"], "created");
    assert_eq!(
        v["data"],
        json!({"name": "m", "tags": {}, "description": "d"})
    );

    let log = f.client().webhook_deliveries(&id).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["status_code"], 200);
    assert_eq!(log[0]["attempt"], 1);

    // Delivered once: another pass sends nothing.
    run_once(&controllers::webhook_deps(&f.state), &f.hooks)
        .await
        .unwrap();
    assert!(rx.try_recv().is_err());
}

#[tokio::test]
async fn failing_receivers_are_retried_then_given_up() {
    let f = fixture(true).await;
    let (url, mut rx) = receiver(StatusCode::SERVICE_UNAVAILABLE).await;
    let id = id_of(&f.client().create_webhook(&hook(&url)).await.unwrap());
    f.registered_model("m", None).await;
    let seen = std::cell::Cell::new(0);
    let (f, seen, rx) = (&f, &seen, &std::cell::RefCell::new(&mut rx));
    eventually(
        Duration::from_secs(30),
        "three attempts",
        move || async move {
            run_once(&controllers::webhook_deps(&f.state), &f.hooks)
                .await
                .unwrap();
            while rx.borrow_mut().try_recv().is_ok() {
                seen.set(seen.get() + 1);
            }
            if seen.get() >= 3 {
                Ok(())
            } else {
                Err(format!("only {} attempts", seen.get()))
            }
        },
    )
    .await;
    run_once(&controllers::webhook_deps(&f.state), &f.hooks)
        .await
        .unwrap();
    let log = f.client().webhook_deliveries(&id).await.unwrap();
    let attempts: Vec<i64> = log.iter().map(|a| a["attempt"].as_i64().unwrap()).collect();
    assert_eq!(attempts, vec![1, 2, 3], "max_attempts is 3");

    // The log of a webhook that does not exist is not an empty log.
    let err = f
        .client()
        .webhook_deliveries("no-such-webhook")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("RESOURCE_DOES_NOT_EXIST"), "{err}");
}

#[tokio::test]
async fn delivery_rechecks_the_address_it_connects_to() {
    // Targets stored before the guard could see them (another server with
    // --webhook-allow-private, or a name that resolved publicly at creation,
    // as in DNS rebinding) are refused when delivering.
    let f = fixture(false).await;
    let (url, mut rx) = receiver(StatusCode::OK).await;
    let literal = url.replace("localhost", "127.0.0.1");
    let mut ids = Vec::new();
    for target in [url.clone(), literal] {
        let store = f.state.store.clone();
        let w = store
            .create_webhook(&NewWebhook {
                name: "rebound".into(),
                url: target,
                events: vec![EventFilter::kind("registered_model.*").unwrap()],
                ..NewWebhook::default()
            })
            .unwrap();
        ids.push(w.webhook_id);
    }
    f.registered_model("m", None).await;
    run_once(&controllers::webhook_deps(&f.state), &f.hooks)
        .await
        .unwrap();
    assert!(rx.try_recv().is_err(), "nothing reached the receiver");
    for id in ids {
        let log = f.state.store.webhook_delivery_log(&id, 10).unwrap();
        assert_eq!(log.len(), 1, "refused targets are not retried");
        let error = log[0].error.as_deref().unwrap();
        assert!(
            error.contains("not a public") || error.contains("non-public"),
            "{error}"
        );
    }
}

/// A change of a webhook's secret only.
fn secret(secret: &str) -> WebhookChanges {
    WebhookChanges {
        secret: Some(secret.into()),
        ..WebhookChanges::default()
    }
}

/// The signature header of a received delivery, and what `secret` signs it as.
fn signatures(headers: &HeaderMap, body: &str, secret: &str) -> (String, String) {
    let header = |n: &str| headers.get(n).unwrap().to_str().unwrap().to_string();
    let expected = sign(
        secret,
        &header("x-mlflow-delivery-id"),
        &header("x-mlflow-timestamp"),
        body,
    );
    (header("x-mlflow-signature"), expected)
}

#[tokio::test]
async fn secrets_are_stored_encrypted_and_still_sign() {
    let f = fixture(true).await;
    let c = f.client();
    let (url, mut rx) = receiver(StatusCode::OK).await;
    let id = id_of(&c.create_webhook(&hook(&url)).await.unwrap());
    let stored = f.state.store.get_webhook(&id).unwrap().secret.unwrap();
    assert!(is_sealed(&stored) && !stored.contains("s3cret"), "{stored}");

    // A new secret through an update is sealed too, and signs from then on.
    c.update_webhook(&id, &secret("n3w-secret")).await.unwrap();
    let updated = f.state.store.get_webhook(&id).unwrap().secret.unwrap();
    assert!(is_sealed(&updated) && !updated.contains("n3w"), "{updated}");
    f.registered_model("m", None).await;
    run_once(&controllers::webhook_deps(&f.state), &f.hooks)
        .await
        .unwrap();
    let (headers, body) = rx.recv().await.unwrap();
    let (got, expected) = signatures(&headers, &body, "n3w-secret");
    assert_eq!(got, expected);

    // The test endpoint signs with the decrypted secret as well.
    let result = c.test_webhook(&id).await.unwrap();
    assert_eq!(result["success"], true, "{result}");
    let (headers, body) = rx.recv().await.unwrap();
    let (got, expected) = signatures(&headers, &body, "n3w-secret");
    assert_eq!(got, expected);
}

#[tokio::test]
async fn without_a_key_secrets_are_refused_and_plain_webhooks_work() {
    let f = fixture_with_key(true, None).await;
    let c = f.client();
    let (url, mut rx) = receiver(StatusCode::OK).await;
    let e = refused(c.create_webhook(&hook(&url)).await);
    assert_eq!(e.status, 400, "{e:?}");
    assert_eq!(e.code, "INVALID_PARAMETER_VALUE");
    assert!(e.message.contains("SEXTANT_SECRET_KEY"), "{e:?}");
    assert!(f.state.store.list_webhooks(10, 0).unwrap().items.is_empty());

    let plain = WebhookRequest {
        secret: None,
        ..hook(&url)
    };
    let id = id_of(&c.create_webhook(&plain).await.unwrap());
    let e = refused(c.update_webhook(&id, &secret("s3cret")).await);
    assert_eq!(e.status, 400, "an update may not add one either: {e:?}");
    // Clearing a secret needs no key.
    c.update_webhook(&id, &secret("")).await.unwrap();
    f.registered_model("m", None).await;
    run_once(&controllers::webhook_deps(&f.state), &f.hooks)
        .await
        .unwrap();
    let (headers, _) = rx.recv().await.unwrap();
    assert!(headers.get("x-mlflow-signature").is_none());
}

#[tokio::test]
async fn plaintext_secrets_from_before_encryption_still_sign() {
    let f = fixture(true).await;
    let (url, mut rx) = receiver(StatusCode::OK).await;
    f.state
        .store
        .create_webhook(&NewWebhook {
            name: "legacy".into(),
            url,
            events: vec![EventFilter::kind("registered_model.*").unwrap()],
            secret: Some("old-plain".into()),
            ..NewWebhook::default()
        })
        .unwrap();
    f.registered_model("m", None).await;
    run_once(&controllers::webhook_deps(&f.state), &f.hooks)
        .await
        .unwrap();
    let (headers, body) = rx.recv().await.unwrap();
    let (got, expected) = signatures(&headers, &body, "old-plain");
    assert_eq!(got, expected);
}

#[tokio::test]
async fn a_secret_sealed_under_another_key_is_not_sent_unsigned() {
    let f = fixture(true).await;
    let (url, mut rx) = receiver(StatusCode::OK).await;
    let other = SecretKey::parse(&"ab".repeat(32)).unwrap();
    let w = f
        .state
        .store
        .create_webhook(&NewWebhook {
            name: "rekeyed".into(),
            url,
            events: vec![EventFilter::kind("registered_model.*").unwrap()],
            secret: Some(other.seal("s3cret").unwrap()),
            ..NewWebhook::default()
        })
        .unwrap();
    f.registered_model("m", None).await;
    run_once(&controllers::webhook_deps(&f.state), &f.hooks)
        .await
        .unwrap();
    assert!(rx.try_recv().is_err(), "nothing reached the receiver");
    let log = f
        .state
        .store
        .webhook_delivery_log(&w.webhook_id, 10)
        .unwrap();
    assert_eq!(log.len(), 1, "not retried");
    let error = log[0].error.as_deref().unwrap();
    assert!(error.contains("cannot be decrypted"), "{error}");
}

/// With no active webhook a pass fans out nothing and moves no cursor (no
/// commit for every event), and the events of that time are never
/// delivered: a webhook turned on again gets the events from then on.
#[tokio::test]
async fn events_while_no_webhook_is_on_are_never_delivered() {
    let f = fixture(true).await;
    let deps = controllers::webhook_deps(&f.state);
    let (url, mut rx) = receiver(StatusCode::OK).await;
    let id = id_of(&f.client().create_webhook(&hook(&url)).await.unwrap());
    let path = format!("webhooks/{id}");
    let (s, v) = call(&f.app, "PATCH", &path, Some(json!({"status": "DISABLED"}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    f.registered_model("while-off", None).await;
    run_once(&deps, &f.hooks).await.unwrap();
    assert_eq!(f.state.store.webhook_cursor().unwrap(), 0);

    let (s, v) = call(&f.app, "PATCH", &path, Some(json!({"status": "ACTIVE"}))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    f.registered_model("while-on", None).await;
    run_once(&deps, &f.hooks).await.unwrap();
    let (_, body) = rx.recv().await.unwrap();
    assert!(body.contains("while-on"), "{body}");
    let log = f.client().webhook_deliveries(&id).await.unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(rx.try_recv().is_err(), "the event of the time off was sent");
}
