//! The proxied artifact API through the router: round trips, listings,
//! traversal payloads, large streamed uploads.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{Value, json};
use sextant_artifacts::ArtifactStore;
use sextant_core::entities::NewRun;
use sextant_server::{AppState, SecurityConfig};
use tower::ServiceExt;

const API: &str = "/api/2.0/mlflow-artifacts/artifacts";

struct Server {
    app: Router,
    state: AppState,
    /// The directory holding the artifact root, with a secret beside it.
    dir: tempfile::TempDir,
}

fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), "top secret").unwrap();
    let root = dir.path().join("artifacts");
    let state = AppState {
        store: Arc::from(sextant_store::open_in_memory("mlflow-artifacts:").unwrap()),
        artifacts: Arc::new(ArtifactStore::from_uri(root.to_str().unwrap()).unwrap()),
        security: Arc::new(SecurityConfig::default()),
    };
    Server {
        app: sextant_server::router(state.clone()),
        state,
        dir,
    }
}

impl Server {
    async fn send(&self, method: Method, uri: &str, body: Body) -> (StatusCode, HeaderMap, Bytes) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .body(body)
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        (
            parts.status,
            parts.headers,
            axum::body::to_bytes(body, usize::MAX).await.unwrap(),
        )
    }

    async fn json(&self, method: Method, uri: &str, body: Body) -> (StatusCode, Value) {
        let (status, _, bytes) = self.send(method, uri, body).await;
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{uri}: {e}: {}", String::from_utf8_lossy(&bytes)));
        (status, value)
    }

    async fn put(&self, path: &str, data: &'static [u8]) {
        let (status, body) = self
            .json(Method::PUT, &format!("{API}/{path}"), Body::from(data))
            .await;
        assert_eq!((status, body), (StatusCode::OK, json!({})), "PUT {path}");
    }

    /// A run and its artifact root as a path under the artifact API.
    async fn run(&self) -> (String, String) {
        let store = self.state.store.clone();
        let run = tokio::task::spawn_blocking(move || {
            let exp = store.create_experiment("e", None, &[]).unwrap();
            store
                .create_run(&NewRun {
                    experiment_id: exp,
                    ..NewRun::default()
                })
                .unwrap()
        })
        .await
        .unwrap();
        let rel = run
            .info
            .artifact_uri
            .strip_prefix("mlflow-artifacts:")
            .unwrap();
        (run.info.run_id, rel.trim_start_matches('/').to_string())
    }
}

#[tokio::test]
async fn upload_list_download_delete() {
    let s = server();
    s.put("0/r/artifacts/raw/one.txt", b"1").await;
    s.put("0/r/artifacts/raw/dir/two.bin", b"22").await;
    s.put("0/r/artifacts/raw/empty.bin", b"").await;
    s.put(
        "0/r/artifacts/with%20space/e%20%E2%9C%93.txt",
        "é".as_bytes(),
    )
    .await;
    assert_eq!(
        std::fs::read(
            s.dir
                .path()
                .join("artifacts/0/r/artifacts/with space/e ✓.txt")
        )
        .unwrap(),
        "é".as_bytes()
    );

    let (status, body) = s
        .json(
            Method::GET,
            &format!("{API}?path=0/r/artifacts/raw"),
            Body::empty(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"files": [
            {"path": "dir", "is_dir": true},
            {"path": "empty.bin", "is_dir": false},
            {"path": "one.txt", "is_dir": false, "file_size": 1},
        ]})
    );
    let (_, body) = s
        .json(
            Method::GET,
            &format!("{API}?path=0%2Fr%2Fartifacts"),
            Body::empty(),
        )
        .await;
    assert_eq!(
        body,
        json!({"files": [{"path": "raw", "is_dir": true}, {"path": "with space", "is_dir": true}]})
    );
    let (_, body) = s
        .json(
            Method::GET,
            &format!("{API}?path=0/r/artifacts/with+space"),
            Body::empty(),
        )
        .await;
    assert_eq!(
        body,
        json!({"files": [{"path": "e ✓.txt", "is_dir": false, "file_size": 2}]})
    );
    let (_, body) = s.json(Method::GET, API, Body::empty()).await;
    assert_eq!(body, json!({"files": [{"path": "0", "is_dir": true}]}));
    for empty in ["0/r/nothing-here", "0/r/artifacts/raw/one.txt"] {
        let (status, body) = s
            .json(Method::GET, &format!("{API}?path={empty}"), Body::empty())
            .await;
        assert_eq!((status, body), (StatusCode::OK, json!({})), "{empty}");
    }

    let (status, headers, bytes) = s
        .send(
            Method::GET,
            &format!("{API}/0/r/artifacts/raw/dir/two.bin"),
            Body::empty(),
        )
        .await;
    assert_eq!((status, &bytes[..]), (StatusCode::OK, &b"22"[..]));
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"two.bin\""
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(headers["content-length"], "2");
    let (_, headers, _) = s
        .send(
            Method::GET,
            &format!("{API}/0/r/artifacts/raw/one.txt"),
            Body::empty(),
        )
        .await;
    assert_eq!(headers["content-type"], "text/plain");
    // The UI's alias serves the same files.
    let (status, _, bytes) = s
        .send(
            Method::GET,
            "/ajax-api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/raw/one.txt",
            Body::empty(),
        )
        .await;
    assert_eq!((status, &bytes[..]), (StatusCode::OK, &b"1"[..]));

    for missing in ["0/r/artifacts/raw/absent.txt", "0/r/artifacts/raw/dir"] {
        let (status, body) = s
            .json(Method::GET, &format!("{API}/{missing}"), Body::empty())
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
        assert_eq!(body["error_code"], "RESOURCE_DOES_NOT_EXIST");
    }

    let (status, body) = s
        .json(
            Method::DELETE,
            &format!("{API}/0/r/artifacts/raw/dir"),
            Body::empty(),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let (_, body) = s
        .json(
            Method::GET,
            &format!("{API}?path=0/r/artifacts/raw"),
            Body::empty(),
        )
        .await;
    let names: Vec<&str> = body["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["empty.bin", "one.txt"]);
    let (status, _) = s
        .json(
            Method::DELETE,
            &format!("{API}/0/r/never-there"),
            Body::empty(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn run_listing_is_relative_to_the_run_root() {
    let s = server();
    let (run_id, rel) = s.run().await;
    let leaked: &'static str = Box::leak(format!("{rel}/raw/one.txt").into_boxed_str());
    s.put(leaked, b"1").await;
    let leaked: &'static str = Box::leak(format!("{rel}/raw/dir/two.bin").into_boxed_str());
    s.put(leaked, b"22").await;

    for base in ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"] {
        let (status, body) = s
            .json(
                Method::GET,
                &format!("{base}/artifacts/list?run_id={run_id}&path=raw"),
                Body::empty(),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"root_uri": format!("mlflow-artifacts:/{rel}"), "files": [
                {"path": "raw/dir", "is_dir": true},
                {"path": "raw/one.txt", "is_dir": false, "file_size": 1},
            ]})
        );
    }
    let (_, body) = s
        .json(
            Method::GET,
            &format!("/api/2.0/mlflow/artifacts/list?run_id={run_id}"),
            Body::empty(),
        )
        .await;
    assert_eq!(body["files"], json!([{"path": "raw", "is_dir": true}]));
    let (status, body) = s
        .json(
            Method::GET,
            "/api/2.0/mlflow/artifacts/list?path=raw",
            Body::empty(),
        )
        .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_PARAMETER_VALUE"))
    );
    let (status, body) = s
        .json(
            Method::GET,
            "/api/2.0/mlflow/artifacts/list?run_id=nope",
            Body::empty(),
        )
        .await;
    assert_eq!(
        (status, body["error_code"].as_str()),
        (StatusCode::NOT_FOUND, Some("RESOURCE_DOES_NOT_EXIST"))
    );
    let (status, body) = s
        .json(
            Method::GET,
            &format!("/api/2.0/mlflow/artifacts/list?run_id={run_id}&path=../../../../etc"),
            Body::empty(),
        )
        .await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, invalid_path()));
}

fn invalid_path() -> Value {
    json!({"error_code": "INVALID_PARAMETER_VALUE", "message": "Invalid path"})
}

/// Payloads refused anywhere in a path (an absolute path only at the start:
/// `0//etc/passwd` is just `0/etc/passwd`, inside the root).
const TRAVERSALS: [&str; 12] = [
    "../secret.txt",
    "0/../../secret.txt",
    "..%2fsecret.txt",
    "0/..%2f..%2fsecret.txt",
    "%2e%2e%2fsecret.txt",
    "%252e%252e%252fsecret.txt",
    "..;/secret.txt",
    "..%5Csecret.txt",
    "0/a%00/../../secret.txt",
    "C:%5CWindows%5Cwin.ini",
    "a/./b",
    "a%23b/..%2f..%2fsecret.txt",
];

#[tokio::test]
async fn traversal_payloads_are_refused_everywhere() {
    let s = server();
    s.put("0/a/b/x.txt", b"x").await;
    let (run_id, _) = s.run().await;
    for payload in TRAVERSALS {
        for (method, uri) in [
            (Method::GET, format!("{API}/{payload}")),
            (Method::GET, format!("{API}/0/{payload}")),
            (Method::PUT, format!("{API}/0/{payload}")),
            (Method::DELETE, format!("{API}/0/{payload}")),
            (Method::GET, format!("{API}?path={payload}")),
            (Method::GET, format!("{API}?path=0/{payload}")),
            (
                Method::GET,
                format!("/ajax-api/2.0/mlflow-artifacts/artifacts?path={payload}"),
            ),
            (
                Method::GET,
                format!("/api/2.0/mlflow/artifacts/list?run_id={run_id}&path={payload}"),
            ),
        ] {
            let (status, body) = s.json(method.clone(), &uri, Body::from("evil")).await;
            assert_eq!(
                (status, body),
                (StatusCode::BAD_REQUEST, invalid_path()),
                "{method} {uri}"
            );
        }
    }
    for uri in [
        format!("{API}//etc/passwd"),
        format!("{API}/%2fetc%2fpasswd"),
        format!("{API}/%252fetc%252fpasswd"),
        format!("{API}?path=/etc/passwd"),
        format!("{API}?path=%2fetc%2fpasswd"),
        format!("{API}?path=%252fetc%252fpasswd"),
        format!("{API}/0//..//secret.txt"),
    ] {
        let (status, body) = s.json(Method::GET, &uri, Body::empty()).await;
        assert_eq!(
            (status, body),
            (StatusCode::BAD_REQUEST, invalid_path()),
            "{uri}"
        );
    }
    assert_eq!(
        std::fs::read_to_string(s.dir.path().join("secret.txt")).unwrap(),
        "top secret"
    );
    assert!(!s.dir.path().join("escape.txt").exists());
    let (_, body) = s
        .json(Method::GET, &format!("{API}?path=0/a/b"), Body::empty())
        .await;
    assert_eq!(body["files"][0]["path"], "x.txt", "nothing was deleted");
}

#[tokio::test]
async fn large_streamed_upload_round_trips() {
    let s = server();
    let size = 20 * 1024 * 1024 + 7;
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(64 * 1024 + 3)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let body = Body::from_stream(futures::stream::iter(chunks));
    let (status, body) = s
        .json(Method::PUT, &format!("{API}/0/r/artifacts/big.bin"), body)
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));

    let (_, body) = s
        .json(
            Method::GET,
            &format!("{API}?path=0/r/artifacts"),
            Body::empty(),
        )
        .await;
    assert_eq!(
        body,
        json!({"files": [{"path": "big.bin", "is_dir": false, "file_size": size}]})
    );
    let (status, headers, bytes) = s
        .send(
            Method::GET,
            &format!("{API}/0/r/artifacts/big.bin"),
            Body::empty(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-length"], size.to_string().as_str());
    assert!(bytes == data, "downloaded bytes differ");

    let req = Request::get(format!("{API}/0/r/artifacts/big.bin"))
        .header("range", "bytes=100-199")
        .body(Body::empty())
        .unwrap();
    let resp = s.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        resp.headers()["content-range"],
        format!("bytes 100-199/{size}").as_str()
    );
    let part = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(&part[..], &data[100..200]);
    let req = Request::get(format!("{API}/0/r/artifacts/big.bin"))
        .header("range", format!("bytes={size}-"))
        .body(Body::empty())
        .unwrap();
    let resp = s.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
}

#[tokio::test]
async fn multipart_upload_is_declined_like_mlflow_local_storage() {
    let s = server();
    for action in ["create", "complete", "abort"] {
        let uri = format!("/api/2.0/mlflow-artifacts/mpu/{action}/0/r/artifacts");
        let (status, body) = s
            .json(
                Method::POST,
                &uri,
                Body::from(r#"{"path":"big.bin","num_parts":3}"#),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
        assert_eq!(
            body,
            json!({"error_code": "NOT_IMPLEMENTED",
                   "message": "Multipart upload is not supported for the current artifact repository"})
        );
    }
}
