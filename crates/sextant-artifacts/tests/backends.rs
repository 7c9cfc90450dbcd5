//! One suite of artifact-store behaviour, run against a local directory,
//! memory, and S3 (when `SEXTANT_TEST_S3_ENDPOINT` names an S3-compatible
//! server, as `scripts/test` arranges with moto).

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use sextant_artifacts::{
    ArtifactError, ArtifactStore, ByteRange, CompletedPart, Entry, PART_SIZE, SafePath, UploadId,
};

fn p(s: &str) -> SafePath {
    SafePath::parse(s).unwrap()
}

fn once(data: &[u8]) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + use<> {
    stream::iter([Ok(Bytes::copy_from_slice(data))])
}

/// A deterministic body of `len` bytes, sent in uneven chunks.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn chunked(
    data: &[u8],
    chunk: usize,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + use<> {
    let chunks: Vec<_> = data
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    stream::iter(chunks)
}

async fn read(store: &ArtifactStore, path: &str, range: Option<ByteRange>) -> (u64, Vec<u8>) {
    let d = store.get(&p(path), range).await.unwrap();
    let bytes: Vec<Bytes> = d.stream.try_collect().await.unwrap();
    (d.size, bytes.concat())
}

fn file(name: &str, size: u64) -> Entry {
    Entry {
        name: name.into(),
        is_dir: false,
        size,
    }
}

fn dir(name: &str) -> Entry {
    Entry {
        name: name.into(),
        is_dir: true,
        size: 0,
    }
}

async fn suite(store: &ArtifactStore) {
    store.put(&p("run/a.txt"), once(b"a")).await.unwrap();
    store.put(&p("run/empty.bin"), once(b"")).await.unwrap();
    store
        .put(&p("run/dir/sub/c.csv"), once(b"x,y\n"))
        .await
        .unwrap();
    store
        .put(&p("run/with space/e ✓~[1].txt"), once("é".as_bytes()))
        .await
        .unwrap();

    assert_eq!(
        store.list(&p("run")).await.unwrap(),
        vec![
            file("a.txt", 1),
            dir("dir"),
            file("empty.bin", 0),
            dir("with space")
        ]
    );
    assert_eq!(store.list(&p("run/dir")).await.unwrap(), vec![dir("sub")]);
    assert_eq!(
        store.list(&p("run/with space")).await.unwrap(),
        vec![file("e ✓~[1].txt", 2)]
    );
    // Names holding `%` are escaped in the backend and come back intact.
    store.put(&p("run/pct/100%.txt"), once(b"1")).await.unwrap();
    store
        .put(&p("run/pct/x%41%2F.txt"), once(b"2"))
        .await
        .unwrap();
    assert_eq!(
        store.list(&p("run/pct")).await.unwrap(),
        vec![file("100%.txt", 1), file("x%41%2F.txt", 1)]
    );
    assert_eq!(read(store, "run/pct/x%41%2F.txt", None).await.1, b"2");
    store.delete(&p("run/pct")).await.unwrap();
    assert_eq!(store.list(&p("run/nothing")).await.unwrap(), vec![]);
    assert_eq!(store.list(&p("run/a.txt")).await.unwrap(), vec![]);
    assert_eq!(
        store.list(&SafePath::root()).await.unwrap(),
        vec![dir("run")]
    );

    assert_eq!(
        read(store, "run/with space/e ✓~[1].txt", None).await,
        (2, "é".as_bytes().to_vec())
    );
    assert_eq!(read(store, "run/empty.bin", None).await, (0, vec![]));
    assert!(matches!(
        store.get(&p("run/absent"), None).await,
        Err(ArtifactError::NotFound(_))
    ));
    assert!(matches!(
        store.get(&p("run/dir"), None).await,
        Err(ArtifactError::NotFound(_))
    ));

    // Overwrite replaces.
    store.put(&p("run/a.txt"), once(b"bb")).await.unwrap();
    assert_eq!(read(store, "run/a.txt", None).await, (2, b"bb".to_vec()));

    // Larger than one part: a multipart upload, streamed in odd-sized chunks.
    let big = pattern(2 * PART_SIZE + 12_345);
    let n = store
        .put(&p("run/big/blob.bin"), chunked(&big, 1_000_003))
        .await
        .unwrap();
    assert_eq!(n, big.len() as u64);
    let (size, got) = read(store, "run/big/blob.bin", None).await;
    assert_eq!(size, big.len() as u64);
    assert!(got == big, "multipart round trip differs");
    let (_, part) = read(
        store,
        "run/big/blob.bin",
        Some(ByteRange::Inclusive { start: 10, end: 19 }),
    )
    .await;
    assert_eq!(part, big[10..20]);
    let (_, tail) = read(store, "run/big/blob.bin", Some(ByteRange::Suffix(5))).await;
    assert_eq!(tail, big[big.len() - 5..]);
    let (_, from) = read(store, "run/a.txt", Some(ByteRange::From(1))).await;
    assert_eq!(from, b"b");
    assert!(matches!(
        store.get(&p("run/a.txt"), Some(ByteRange::From(2))).await,
        Err(ArtifactError::RangeNotSatisfiable { size: 2, .. })
    ));

    // A body that fails midway leaves nothing behind, small or large.
    for len in [10, PART_SIZE + 1] {
        let failing = chunked(&pattern(len), 4096).chain(stream::iter([Err(
            std::io::Error::other("client went away"),
        )]));
        let err = store.put(&p("run/failed.bin"), failing).await.unwrap_err();
        assert!(matches!(err, ArtifactError::Body { .. }), "{err}");
        assert!(matches!(
            store.get(&p("run/failed.bin"), None).await,
            Err(ArtifactError::NotFound(_))
        ));
    }

    // Recursive delete of a directory; deleting nothing is fine; the root is refused.
    store.delete(&p("run/dir")).await.unwrap();
    store.delete(&p("run/big/blob.bin")).await.unwrap();
    store.delete(&p("run/never-there")).await.unwrap();
    assert_eq!(
        store.list(&p("run")).await.unwrap(),
        vec![file("a.txt", 2), file("empty.bin", 0), dir("with space")]
    );
    assert!(matches!(
        store.delete(&SafePath::root()).await,
        Err(ArtifactError::InvalidPath(_))
    ));
    assert!(matches!(
        store.put(&SafePath::root(), once(b"x")).await,
        Err(ArtifactError::InvalidPath(_))
    ));
    store.delete(&p("run")).await.unwrap();
    assert_eq!(store.list(&SafePath::root()).await.unwrap(), vec![]);

    multipart(store).await;
}

/// Client-driven multipart uploads: staged parts, ETag checks, assembly in
/// order, abort, and nothing left behind.
async fn multipart(store: &ArtifactStore) {
    let target = p("0/r/artifacts/big.bin");
    let data = pattern(PART_SIZE + 3 * 1024 * 1024 + 17);
    let cuts = [0, 5 * 1024 * 1024, PART_SIZE + 1024, data.len()];
    let id = store.create_multipart(&target, 3).await.unwrap();
    // Staged data is invisible to listings.
    assert_eq!(store.list(&SafePath::root()).await.unwrap(), vec![]);
    let mut parts = Vec::new();
    // Upload out of order, and part 2 twice: the ETag named at completion wins.
    for n in [3usize, 2, 1, 2] {
        let bytes = if parts.len() == 1 {
            vec![0u8; 10]
        } else {
            data[cuts[n - 1]..cuts[n]].to_vec()
        };
        let etag = store
            .put_part(&id, n as u32, chunked(&bytes, 100_000))
            .await
            .unwrap();
        parts.push(CompletedPart {
            part_number: n as u32,
            etag,
        });
    }
    let stale = parts.remove(1);
    parts.sort_by_key(|p| p.part_number);
    assert_eq!(
        parts.iter().map(|p| p.part_number).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_ne!(stale.etag, parts[1].etag);

    fn refused<T: std::fmt::Debug>(r: Result<T, ArtifactError>) {
        assert!(
            matches!(r, Err(ArtifactError::InvalidMultipart(_))),
            "{r:?}"
        );
    }
    // Bad part numbers.
    refused(store.put_part(&id, 0, once(b"x")).await);
    refused(store.put_part(&id, 4, once(b"x")).await);
    // ETags that were not issued for these parts (the stale upload of part
    // 2 is a valid choice, and would be assembled if named).
    let mut swapped = parts.clone();
    swapped[1].etag = parts[0].etag.clone();
    refused(store.complete_multipart(&id, &target, &swapped).await);
    swapped[1].etag = "\"../../x\"".into();
    refused(store.complete_multipart(&id, &target, &swapped).await);
    // Out of order, duplicated, empty, another target.
    let mut reversed = parts.clone();
    reversed.reverse();
    refused(store.complete_multipart(&id, &target, &reversed).await);
    refused(store.complete_multipart(&id, &target, &[]).await);
    refused(
        store
            .complete_multipart(&id, &p("0/r/artifacts/other.bin"), &parts)
            .await,
    );
    refused(store.abort_multipart(&id, &p("0/other.bin")).await);

    let size = store
        .complete_multipart(&id, &target, &parts)
        .await
        .unwrap();
    assert_eq!(size, data.len() as u64);
    assert_eq!(read(store, "0/r/artifacts/big.bin", None).await.1, data);
    // The upload is gone once completed.
    assert!(matches!(
        store.complete_multipart(&id, &target, &parts).await,
        Err(ArtifactError::NoSuchUpload(_))
    ));
    assert!(matches!(
        store.put_part(&id, 1, once(b"x")).await,
        Err(ArtifactError::NoSuchUpload(_))
    ));
    assert_eq!(store.list(&SafePath::root()).await.unwrap(), vec![dir("0")]);

    // A small upload of one part; then an aborted one.
    let small = p("0/r/artifacts/small.txt");
    let id = store.create_multipart(&small, 1).await.unwrap();
    let etag = store.put_part(&id, 1, once(b"tiny")).await.unwrap();
    let part = CompletedPart {
        part_number: 1,
        etag,
    };
    assert_eq!(
        store
            .complete_multipart(&id, &small, &[part])
            .await
            .unwrap(),
        4
    );
    assert_eq!(
        read(store, "0/r/artifacts/small.txt", None).await.1,
        b"tiny"
    );

    let id = store.create_multipart(&small, 2).await.unwrap();
    store.put_part(&id, 1, once(b"gone")).await.unwrap();
    store.abort_multipart(&id, &small).await.unwrap();
    assert!(matches!(
        store.abort_multipart(&id, &small).await,
        Err(ArtifactError::NoSuchUpload(_))
    ));
    assert!(matches!(
        store.abort_multipart(&UploadId::generate(), &small).await,
        Err(ArtifactError::NoSuchUpload(_))
    ));
    refused(store.create_multipart(&small, 0).await);
    refused(store.create_multipart(&small, 10_001).await);
    refused(store.create_multipart(&SafePath::root(), 1).await);
    assert_eq!(
        read(store, "0/r/artifacts/small.txt", None).await.1,
        b"tiny"
    );

    // Abandoned uploads are purged once old enough.
    let id = store.create_multipart(&small, 2).await.unwrap();
    store.put_part(&id, 1, once(b"left")).await.unwrap();
    let hour = std::time::Duration::from_secs(3600);
    assert_eq!(store.purge_stale_uploads(hour).await.unwrap(), 0);
    store.put_part(&id, 2, once(b"still here")).await.unwrap();
    assert_eq!(
        store
            .purge_stale_uploads(std::time::Duration::ZERO)
            .await
            .unwrap(),
        1
    );
    assert!(matches!(
        store.put_part(&id, 2, once(b"x")).await,
        Err(ArtifactError::NoSuchUpload(_))
    ));
    assert_eq!(
        store
            .purge_stale_uploads(std::time::Duration::ZERO)
            .await
            .unwrap(),
        0
    );
    assert!(store.purge_due());
    assert!(!store.purge_due(), "at most one purge per interval");

    store.delete(&p("0")).await.unwrap();
    assert_eq!(store.list(&SafePath::root()).await.unwrap(), vec![]);
}

#[tokio::test]
async fn local_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("artifacts");
    let store = ArtifactStore::from_uri(root.to_str().unwrap()).unwrap();
    assert!(root.is_dir(), "the root directory is created");
    suite(&store).await;
    // Multipart staging leaves nothing behind.
    assert!(!root.join(".sextant-mpu").exists());
    let id = store
        .create_multipart(&p("0/r/artifacts/x.bin"), 1)
        .await
        .unwrap();
    assert!(root.join(".sextant-mpu").join(id.as_str()).is_dir());
    assert_eq!(store.list(&SafePath::root()).await.unwrap(), vec![]);
    store
        .abort_multipart(&id, &p("0/r/artifacts/x.bin"))
        .await
        .unwrap();
    assert!(!root.join(".sextant-mpu").exists());

    // Files land under the root with their own names.
    store
        .put(&p("0/r/artifacts/x.txt"), once(b"x"))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(root.join("0/r/artifacts/x.txt")).unwrap(),
        b"x"
    );
    store
        .put(&p("0/r/artifacts/sp ✓/é [1].txt"), once(b"y"))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(root.join("0/r/artifacts/sp ✓/é [1].txt")).unwrap(),
        b"y"
    );
    // A file MLflow wrote is read under its own name.
    std::fs::write(root.join("0/r/artifacts/from mlflow ✓.txt"), b"z").unwrap();
    assert_eq!(
        read(&store, "0/r/artifacts/from mlflow ✓.txt", None)
            .await
            .1,
        b"z"
    );
    let via_uri = ArtifactStore::from_uri(&format!("file://{}", root.display())).unwrap();
    assert_eq!(read(&via_uri, "0/r/artifacts/x.txt", None).await.1, b"x");
}

#[tokio::test]
async fn memory() {
    suite(&ArtifactStore::from_uri("memory://").unwrap()).await;
}

#[test]
fn unsupported_uris_are_refused() {
    for uri in [
        "gs://bucket",
        "mlflow-artifacts:/0",
        "file://otherhost/x",
        "file://relative",
        "s3://",
    ] {
        let err = ArtifactStore::from_uri(uri)
            .err()
            .unwrap_or_else(|| panic!("accepted {uri}"));
        assert!(matches!(err, ArtifactError::Config { .. }), "{uri}: {err}");
    }
}

#[tokio::test]
async fn s3() {
    let Ok(endpoint) = std::env::var("SEXTANT_TEST_S3_ENDPOINT") else {
        eprintln!(
            "skipped: SEXTANT_TEST_S3_ENDPOINT is not set (scripts/test starts moto and sets it)"
        );
        return;
    };
    let bucket = format!("sextant-artifacts-test-{}", std::process::id());
    create_bucket(&endpoint, &bucket).await;
    let env = |key: &str| match key {
        "AWS_ENDPOINT_URL" => Some(endpoint.clone()),
        "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => {
            Some(std::env::var(key).unwrap_or_else(|_| "test".into()))
        }
        other => std::env::var(other).ok(),
    };
    let store =
        ArtifactStore::from_uri_with_env(&format!("s3://{bucket}/some/prefix"), env).unwrap();
    suite(&store).await;
}

/// Creates a bucket with one unsigned `PUT /bucket` (moto accepts it), which
/// spares the tests an HTTP client dependency.
async fn create_bucket(endpoint: &str, bucket: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let mut conn = tokio::net::TcpStream::connect(host).await.unwrap();
    let request = format!(
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).await.unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "creating bucket {bucket}: {response}"
    );
}
