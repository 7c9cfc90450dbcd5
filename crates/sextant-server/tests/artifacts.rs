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
    let state = AppState::new(
        Arc::from(sextant_store::open_in_memory("mlflow-artifacts:").unwrap()),
        Arc::new(ArtifactStore::from_uri(root.to_str().unwrap()).unwrap()),
        SecurityConfig::default(),
    );
    Server {
        app: sextant_server::router(state.clone()),
        state,
        dir,
    }
}

impl Server {
    async fn send(&self, method: Method, uri: &str, body: Body) -> (StatusCode, HeaderMap, Bytes) {
        // JSON commands declare their type, as the mlflow client does (uploads may be any).
        let json = method == Method::POST || method == Method::DELETE;
        let mut req = Request::builder().method(method).uri(uri);
        if json {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(body).unwrap();
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
        "attachment; filename=two.bin"
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
/// (`.` segments are the directory itself, as for MLflow, and are dropped.)
const TRAVERSALS: [&str; 14] = [
    "../secret.txt",
    "./../secret.txt",
    "0/../../secret.txt",
    "..%2fsecret.txt",
    "0/..%2f..%2fsecret.txt",
    "%2e%2e%2fsecret.txt",
    "%252e%252e%252fsecret.txt",
    "..;/secret.txt",
    "..%5Csecret.txt",
    "0/a%00/../../secret.txt",
    "C:%5CWindows%5Cwin.ini",
    "a/./../..",
    "a/%252e/b",
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

const MPU: &str = "/api/2.0/mlflow-artifacts/mpu";

impl Server {
    /// A request with a Host header, as real clients send.
    async fn send_host(
        &self,
        method: Method,
        uri: &str,
        body: Body,
    ) -> (StatusCode, HeaderMap, Bytes) {
        let json = method == Method::POST || method == Method::DELETE;
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "127.0.0.1:5000");
        if json {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(body).unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        (
            parts.status,
            parts.headers,
            axum::body::to_bytes(body, usize::MAX).await.unwrap(),
        )
    }

    async fn post(&self, uri: &str, body: Value) -> (StatusCode, Value) {
        let (status, _, bytes) = self
            .send_host(Method::POST, uri, Body::from(body.to_string()))
            .await;
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{uri}: {e}: {}", String::from_utf8_lossy(&bytes)));
        (status, value)
    }

    /// Creates an upload of `n` parts of `path` under `dir`: its id and part URLs' paths.
    async fn create_upload(&self, dir: &str, path: &str, n: u32) -> (String, Vec<String>) {
        let (status, body) = self
            .post(
                &format!("{MPU}/create/{dir}"),
                json!({"path": path, "num_parts": n}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let id = body["upload_id"].as_str().unwrap().to_string();
        let creds = body["credentials"].as_array().unwrap();
        assert_eq!(creds.len(), n as usize);
        let urls = creds
            .iter()
            .enumerate()
            .map(|(i, c)| {
                assert_eq!(c["part_number"], json!(i + 1));
                assert_eq!(c["headers"], json!({}));
                let url = c["url"].as_str().unwrap();
                assert_eq!(
                    url,
                    format!("http://127.0.0.1:5000{MPU}/part/{id}/{}", i + 1)
                );
                url.strip_prefix("http://127.0.0.1:5000")
                    .unwrap()
                    .to_string()
            })
            .collect();
        (id, urls)
    }

    /// PUTs one part; the ETag it answered.
    async fn put_part(&self, url: &str, data: Vec<u8>) -> String {
        let (status, headers, _) = self.send_host(Method::PUT, url, Body::from(data)).await;
        assert_eq!(status, StatusCode::OK, "PUT {url}");
        headers["etag"].to_str().unwrap().to_string()
    }
}

fn error_code(body: &Value) -> &str {
    body["error_code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn server_info_offers_multipart_uploads() {
    let s = server();
    let (status, body) = s
        .json(Method::GET, "/api/3.0/mlflow/server-info", Body::empty())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["multipart_uploads_enabled"], json!(true));
}

#[tokio::test]
async fn multipart_upload_assembles_parts_in_order() {
    let s = server();
    let dir = "0/r/artifacts/models";
    let (id, urls) = s.create_upload(dir, "/home/me/data/big file.bin", 3).await;
    let parts: Vec<Vec<u8>> = [5 * 1024 * 1024 + 3, 6 * 1024 * 1024, 1234]
        .iter()
        .enumerate()
        .map(|(k, &len)| (0..len).map(|i| ((i * 13 + k * 7) % 251) as u8).collect())
        .collect();
    // Parts may arrive in any order.
    let mut etags = vec![String::new(); 3];
    for i in [2, 0, 1] {
        etags[i] = s.put_part(&urls[i], parts[i].clone()).await;
    }
    // Staged parts are invisible and unreachable through the artifact routes.
    assert!(s.dir.path().join("artifacts/.sextant-mpu").is_dir());
    let (_, body) = s.json(Method::GET, API, Body::empty()).await;
    assert_eq!(body, json!({}));
    for uri in [
        format!("{API}/.sextant-mpu/{id}/manifest"),
        format!("{API}/%2esextant-mpu/{id}/manifest"),
        format!("{API}?path=.sextant-mpu"),
        format!("{API}?path=.sextant-mpu/{id}"),
    ] {
        let (status, body) = s.json(Method::GET, &uri, Body::empty()).await;
        assert_eq!(
            (status, body),
            (StatusCode::BAD_REQUEST, invalid_path()),
            "{uri}"
        );
    }
    let (status, body) = s
        .json(
            Method::DELETE,
            &format!("{API}/.sextant-mpu"),
            Body::empty(),
        )
        .await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, invalid_path()));

    let complete = |etags: &[String]| {
        json!({
            "path": "/home/me/data/big file.bin",
            "upload_id": id,
            "parts": etags.iter().enumerate().map(|(i, e)| json!({
                "part_number": i + 1, "etag": e, "url": format!("http://127.0.0.1:5000{}", urls[i]),
            })).collect::<Vec<_>>(),
        })
    };
    // An ETag that was not issued for that part is refused.
    let mut wrong = etags.clone();
    wrong.swap(0, 1);
    let (status, body) = s
        .post(&format!("{MPU}/complete/{dir}"), complete(&wrong))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE"),
        "{body}"
    );
    let (status, body) = s
        .post(&format!("{MPU}/complete/{dir}"), complete(&etags))
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));

    let (status, _, bytes) = s
        .send(
            Method::GET,
            &format!("{API}/{dir}/big%20file.bin"),
            Body::empty(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(bytes == parts.concat(), "assembled bytes differ");
    // The staging area is gone, and the upload with it.
    assert!(!s.dir.path().join("artifacts/.sextant-mpu").exists());
    let (status, body) = s
        .post(&format!("{MPU}/complete/{dir}"), complete(&etags))
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST")
    );
    let (status, _, _) = s.send_host(Method::PUT, &urls[0], Body::from("x")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn multipart_upload_abort_and_bad_ids() {
    let s = server();
    let dir = "0/r/artifacts";
    // The UI alias works too, and part URLs follow the base asked for.
    let (status, body) = s
        .post(
            "/ajax-api/2.0/mlflow-artifacts/mpu/create/0/r/artifacts",
            json!({"path": "x.bin", "num_parts": "2"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = body["credentials"][0]["url"].as_str().unwrap();
    assert!(url.starts_with("http://127.0.0.1:5000/ajax-api/2.0/mlflow-artifacts/mpu/part/"));

    let (id, urls) = s.create_upload(dir, "x.bin", 2).await;
    s.put_part(&urls[0], b"first".to_vec()).await;
    // Abort needs the same target.
    let (status, _) = s
        .post(
            &format!("{MPU}/abort/{dir}/other"),
            json!({"path": "x.bin", "upload_id": id}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = s
        .post(
            &format!("{MPU}/abort/{dir}"),
            json!({"path": "x.bin", "upload_id": id}),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({})));
    let (status, _, _) = s.send_host(Method::PUT, &urls[1], Body::from("x")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = s
        .post(
            &format!("{MPU}/abort/{dir}"),
            json!({"path": "x.bin", "upload_id": id}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST")
    );
    let (status, body) = s
        .json(Method::GET, &format!("{API}?path={dir}"), Body::empty())
        .await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({})),
        "nothing was stored"
    );

    // Malformed ids, in the part URL and in bodies, are 400s; well-formed
    // unknown ones 404s.
    let unknown = "0b6a3f0e-8f1c-4b7e-9d2a-5c4e3b2a1f00";
    for bad in [
        "nope",
        "..%2F..%2Fsecret.txt",
        "0B6A3F0E-8F1C-4B7E-9D2A-5C4E3B2A1F00",
        "0b6a3f0e8f1c4b7e9d2a5c4e3b2a1f00",
        "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "%2e%2e",
    ] {
        let (status, _, _) = s
            .send_host(Method::PUT, &format!("{MPU}/part/{bad}/1"), Body::from("x"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        let (status, body) = s
            .post(
                &format!("{MPU}/abort/{dir}"),
                json!({"path": "x.bin", "upload_id": bad}),
            )
            .await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE"),
            "{bad}"
        );
    }
    let (status, body) = s
        .post(
            &format!("{MPU}/complete/{dir}"),
            json!({"path": "x.bin", "upload_id": unknown,
                   "parts": [{"part_number": 1, "etag": "\"00000000000000000000000000000000\""}]}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST")
    );
    let (status, _, _) = s
        .send_host(
            Method::PUT,
            &format!("{MPU}/part/{unknown}/1"),
            Body::from("x"),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Bad part numbers and counts.
    let (id, _) = s.create_upload(dir, "y.bin", 2).await;
    for n in ["0", "3", "-1", "1.0", "x", "1/2"] {
        let (status, _, _) = s
            .send_host(
                Method::PUT,
                &format!("{MPU}/part/{id}/{n}"),
                Body::from("x"),
            )
            .await;
        assert_ne!(status, StatusCode::OK, "part {n}");
        assert!(status.is_client_error(), "part {n}: {status}");
    }
    for n in [json!(0), json!(-1), json!(10_001), json!("many")] {
        let (status, _) = s
            .post(
                &format!("{MPU}/create/{dir}"),
                json!({"path": "y.bin", "num_parts": n}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "num_parts {n}");
    }
    let (status, _) = s
        .post(&format!("{MPU}/frobnicate/{dir}"), json!({"path": "y.bin"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn multipart_upload_refuses_traversal() {
    let s = server();
    for payload in TRAVERSALS {
        for action in ["create", "complete", "abort"] {
            let uri = format!("{MPU}/{action}/0/{payload}");
            let (status, body) = s
                .post(
                    &uri,
                    json!({"path": "x.bin", "num_parts": 1,
                           "upload_id": "0b6a3f0e-8f1c-4b7e-9d2a-5c4e3b2a1f00",
                           "parts": [{"part_number": 1, "etag": "e"}]}),
                )
                .await;
            assert_eq!(
                (status, body),
                (StatusCode::BAD_REQUEST, invalid_path()),
                "{uri}"
            );
        }
    }
    // The target's name comes from the client's local path: only its last
    // segment counts, and it must be a plain name.
    for path in ["..", "/tmp/..", "a/.", ".sextant-mpu", "x%00", "a;b"] {
        let (status, _) = s
            .post(
                &format!("{MPU}/create/0/r"),
                json!({"path": path, "num_parts": 1}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
    }
    for dir in [".sextant-mpu", "%2esextant-mpu", ".SEXTANT-MPU/x"] {
        let (status, body) = s
            .post(
                &format!("{MPU}/create/{dir}"),
                json!({"path": "x.bin", "num_parts": 1}),
            )
            .await;
        assert_eq!(
            (status, body),
            (StatusCode::BAD_REQUEST, invalid_path()),
            "{dir}"
        );
    }
    // `../x` is the local path's business: the upload lands at `<dir>/x`.
    let (id, urls) = s.create_upload("0/r", "../../x.bin", 1).await;
    let etag = s.put_part(&urls[0], b"ok".to_vec()).await;
    let (status, _) = s
        .post(
            &format!("{MPU}/complete/0/r"),
            json!({"path": "../../x.bin", "upload_id": id,
                   "parts": [{"part_number": 1, "etag": etag}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        std::fs::read(s.dir.path().join("artifacts/0/r/x.bin")).unwrap(),
        b"ok"
    );
    assert_eq!(
        std::fs::read_to_string(s.dir.path().join("secret.txt")).unwrap(),
        "top secret"
    );
}

#[tokio::test]
async fn logged_model_artifacts_list_and_download() {
    let s = server();
    let store = s.state.store.clone();
    let model = tokio::task::spawn_blocking(move || {
        let exp = store.create_experiment("e", None, &[]).unwrap();
        store
            .create_logged_model(&sextant_core::entities::NewLoggedModel {
                experiment_id: exp,
                name: Some("m".into()),
                ..Default::default()
            })
            .unwrap()
    })
    .await
    .unwrap();
    let rel = model
        .artifact_uri
        .strip_prefix("mlflow-artifacts:")
        .unwrap()
        .trim_start_matches('/')
        .to_string();
    for (file, data) in [
        ("MLmodel", &b"flavors: {}"[..]),
        ("data/model.pkl", &b"pkl"[..]),
    ] {
        let (status, _) = s
            .json(
                Method::PUT,
                &format!("{API}/{rel}/{file}"),
                Body::from(data),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let id = &model.model_id;
    for base in ["/api/2.0/mlflow", "/ajax-api/2.0/mlflow"] {
        let (status, body) = s
            .json(
                Method::GET,
                &format!("{base}/logged-models/{id}/artifacts/directories"),
                Body::empty(),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            body,
            json!({"root_uri": model.artifact_uri, "files": [
                {"path": "MLmodel", "is_dir": false, "file_size": 11},
                {"path": "data", "is_dir": true},
            ]})
        );
        let (_, body) = s
            .json(
                Method::GET,
                &format!(
                    "{base}/logged-models/{id}/artifacts/directories?artifact_directory_path=data"
                ),
                Body::empty(),
            )
            .await;
        assert_eq!(
            body["files"],
            json!([{"path": "data/model.pkl", "is_dir": false, "file_size": 3}])
        );
    }
    let (status, body) = s
        .json(
            Method::GET,
            &format!("/api/2.0/mlflow/logged-models/{id}/artifacts/directories?artifact_directory_path=../../.."),
            Body::empty(),
        )
        .await;
    assert_eq!((status, body), (StatusCode::BAD_REQUEST, invalid_path()));
    let (status, body) = s
        .json(
            Method::GET,
            "/api/2.0/mlflow/logged-models/m-nope/artifacts/directories",
            Body::empty(),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST")
    );

    let files = format!("/ajax-api/2.0/mlflow/logged-models/{id}/artifacts/files");
    let (status, headers, bytes) = s
        .send(
            Method::GET,
            &format!("{files}?artifact_file_path=data/model.pkl"),
            Body::empty(),
        )
        .await;
    assert_eq!((status, &bytes[..]), (StatusCode::OK, &b"pkl"[..]));
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=model.pkl"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let (status, body) = s.json(Method::GET, &files, Body::empty()).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "BAD_REQUEST")
    );
    for payload in TRAVERSALS {
        let (status, body) = s
            .json(
                Method::GET,
                &format!("{files}?artifact_file_path={payload}"),
                Body::empty(),
            )
            .await;
        assert_eq!(
            (status, body),
            (StatusCode::BAD_REQUEST, invalid_path()),
            "{payload}"
        );
    }
}

#[tokio::test]
async fn get_artifact_serves_run_files_as_attachments() {
    let s = server();
    let (run_id, rel) = s.run().await;
    let leaked: &'static str = Box::leak(format!("{rel}/plots/page.html").into_boxed_str());
    s.put(leaked, b"<script>alert(1)</script>").await;
    let (status, headers, bytes) = s
        .send(
            Method::GET,
            &format!("/get-artifact?run_id={run_id}&path=plots%2Fpage.html"),
            Body::empty(),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&bytes[..], b"<script>alert(1)</script>");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=page.html"
    );
    assert_eq!(headers["content-type"], "text/plain");
    assert_eq!(headers["x-content-type-options"], "nosniff");

    let (status, body) = s
        .json(
            Method::GET,
            &format!("/get-artifact?run_uuid={run_id}&path=plots/absent"),
            Body::empty(),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST")
    );
    let (status, _) = s
        .json(
            Method::GET,
            "/get-artifact?path=plots/page.html",
            Body::empty(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = s
        .json(
            Method::GET,
            &format!("/get-artifact?run_id={run_id}"),
            Body::empty(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for payload in TRAVERSALS {
        let (status, body) = s
            .json(
                Method::GET,
                &format!("/get-artifact?run_id={run_id}&path={payload}"),
                Body::empty(),
            )
            .await;
        assert_eq!(
            (status, body),
            (StatusCode::BAD_REQUEST, invalid_path()),
            "{payload}"
        );
    }
}

/// The audit log's checkpoints anchor its hash chain: the artifact service
/// must not let anyone read, list, replace or delete them.
#[tokio::test]
async fn the_audit_checkpoints_are_out_of_the_artifact_services_reach() {
    let s = server();
    let root = s.dir.path().join("artifacts/audit/checkpoints");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("7.json"), r#"{"seq":7}"#).unwrap();
    s.put("0/r/artifacts/f.txt", b"x").await;
    for (method, uri) in [
        (Method::GET, format!("{API}/audit/checkpoints/7.json")),
        (Method::PUT, format!("{API}/audit/checkpoints/7.json")),
        (Method::DELETE, format!("{API}/audit/checkpoints/7.json")),
        (Method::DELETE, format!("{API}/audit")),
        (Method::GET, format!("{API}?path=audit/checkpoints")),
        (
            Method::POST,
            "/api/2.0/mlflow-artifacts/mpu/create/audit/checkpoints".to_string(),
        ),
    ] {
        let body = if method == Method::POST {
            Body::from(r#"{"path":"8.json","num_parts":1}"#)
        } else {
            Body::from("{}")
        };
        let (status, answer) = s.json(method.clone(), &uri, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}: {answer}");
        assert_eq!(error_code(&answer), "PERMISSION_DENIED");
    }
    // The root listing leaves the folder out; the checkpoint is untouched.
    let (status, listing) = s.json(Method::GET, API, Body::empty()).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = listing["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["0"]);
    assert_eq!(
        std::fs::read_to_string(root.join("7.json")).unwrap(),
        r#"{"seq":7}"#
    );
}
