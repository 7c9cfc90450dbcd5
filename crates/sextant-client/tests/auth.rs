//! Credentials on the wire and the answers of an authentication layer,
//! against a small server that answers as MLflow's basic-auth app does:
//! plain-text 401 and 403 bodies, JSON for everything else.

use axum::Json;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use sextant_client::{Client, ClientError, Credentials, Settings};

/// Who may do what: no or wrong credentials get MLflow's 401, `reader` may
/// only read, `json-refusal` gets a Sextant-style JSON 401; any other
/// credentials get their own header echoed back.
async fn guard(method: Method, headers: HeaderMap) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    match auth.as_deref() {
        None | Some("Bearer wrong") => (
            StatusCode::UNAUTHORIZED,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::WWW_AUTHENTICATE, "Basic realm=\"mlflow\""),
            ],
            "You are not authenticated. Please see \
             https://www.mlflow.org/docs/latest/auth/index.html#authenticating-to-mlflow \
             on how to authenticate.",
        )
            .into_response(),
        Some("Bearer reader") if method != Method::GET => (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Permission denied",
        )
            .into_response(),
        Some("Bearer json-refusal") => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error_code": "UNAUTHENTICATED", "message": "token expired"})),
        )
            .into_response(),
        Some(auth) => Json(json!({ "authorization": auth })).into_response(),
    }
}

/// A client of a fresh guard server, sending `credentials`.
async fn client(credentials: Option<Credentials>) -> Client {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(guard);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let settings = Settings {
        credentials,
        ..Settings::default()
    };
    Client::with_settings(&format!("http://{addr}"), settings).unwrap()
}

fn bearer(token: &str) -> Option<Credentials> {
    Some(Credentials::Bearer(token.into()))
}

#[tokio::test]
async fn basic_credentials_go_with_every_request() {
    let c = client(Some(Credentials::Basic {
        username: "alice".into(),
        password: "s3cret".into(),
    }))
    .await;
    let answer = c.get_model("churn").await.unwrap();
    assert_eq!(answer["authorization"], "Basic YWxpY2U6czNjcmV0");
    // An inference call builds its own request; it carries them too.
    let answer = c.invoke("churn", None, &json!({"inputs": [1]})).await;
    assert_eq!(answer.unwrap()["authorization"], "Basic YWxpY2U6czNjcmV0");
}

#[tokio::test]
async fn a_token_is_sent_as_bearer() {
    let c = client(bearer("tok-123")).await;
    let answer: Value = c.get_model("churn").await.unwrap();
    assert_eq!(answer["authorization"], "Bearer tok-123");
}

#[tokio::test]
async fn a_plain_401_without_credentials_says_which_variables_to_set() {
    let c = client(None).await;
    let e = c.get_model("churn").await.unwrap_err();
    assert!(
        matches!(e, ClientError::Unauthenticated { sent: false, .. }),
        "{e:?}"
    );
    assert_eq!(e.status(), Some(401));
    assert_eq!(
        e.to_string(),
        format!(
            "authentication required: set MLFLOW_TRACKING_USERNAME/PASSWORD or \
             MLFLOW_TRACKING_TOKEN (GET {}api/v1/models/churn: HTTP 401)",
            c.base()
        )
    );
}

#[tokio::test]
async fn a_plain_401_with_credentials_says_they_were_refused() {
    let c = client(bearer("wrong")).await;
    let e = c.list_endpoints().await.unwrap_err();
    let message = e.to_string();
    assert!(
        message.starts_with(
            "authentication required: set MLFLOW_TRACKING_USERNAME/PASSWORD or \
             MLFLOW_TRACKING_TOKEN; the server refused the credentials sent ("
        ),
        "{message}"
    );
    assert!(!message.contains("wrong"), "the token leaked: {message}");
}

#[tokio::test]
async fn a_plain_403_is_permission_denied() {
    let c = client(bearer("reader")).await;
    // A JSON call and an artifact upload are told alike.
    let e = c.promote("churn").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "permission denied: POST {}api/v1/endpoints/churn/promote (HTTP 403)",
            c.base()
        )
    );
    let e = c
        .put_artifact("capture/a.jsonl", Bytes::from_static(b"{}\n"))
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::PermissionDenied { .. }), "{e:?}");
    assert_eq!(e.status(), Some(403));
    // Reading is allowed.
    assert_eq!(
        c.get_model("churn").await.unwrap()["authorization"],
        "Bearer reader"
    );
}

#[tokio::test]
async fn a_json_401_stays_the_servers_error() {
    let c = client(bearer("json-refusal")).await;
    let e = c.get_model("churn").await.unwrap_err();
    assert_eq!(e.error_code(), Some("UNAUTHENTICATED"));
    assert_eq!(e.to_string(), "token expired (UNAUTHENTICATED, HTTP 401)");
}

#[test]
fn settings_never_show_a_secret() {
    let settings = Settings {
        credentials: Some(Credentials::Basic {
            username: "alice".into(),
            password: "s3cret".into(),
        }),
        ..Settings::default()
    };
    let shown = format!("{settings:?}");
    assert!(!shown.contains("s3cret"), "{shown}");
    let client = Client::with_settings("127.0.0.1:1", settings).unwrap();
    let shown = format!("{client:?}");
    assert!(
        !shown.contains("s3cret") && !shown.contains("YWxpY2U6czNjcmV0"),
        "{shown}"
    );
}
