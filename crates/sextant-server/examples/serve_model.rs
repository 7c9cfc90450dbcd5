//! A minimal gateway serving one MLflow model directory at the root, for the Python
//! interop tests and `bench/serving/`. Not the product's CLI (`sextant gateway` is).
//!
//! Usage: serve_model --model DIR [--runtime onnx|process] [--name NAME] [--addr HOST:PORT]
//!                    [--concurrency N]
//!        serve_model --noop [--addr HOST:PORT]
//!
//! `--runtime process` runs `mlflow models serve --env-manager local` (from `PATH`) behind the
//! gateway.
//!
//! Prints `listening on http://HOST:PORT` on stdout once it accepts connections, and stops
//! on SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::routing::post;
use sextant_serving as serving;
use sextant_serving::{
    self, Gateway, GatewaySettings, ProcessPredictor, ProcessSettings, VariantSpec,
};

struct Args {
    model: Option<PathBuf>,
    name: String,
    addr: String,
    concurrency: usize,
    noop: bool,
    process: bool,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        model: None,
        name: "model".into(),
        addr: "127.0.0.1:0".into(),
        concurrency: 1024,
        noop: false,
        process: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => args.model = Some(PathBuf::from(value()?)),
            "--name" => args.name = value()?,
            "--addr" => args.addr = value()?,
            "--concurrency" => {
                args.concurrency = value()?
                    .parse()
                    .map_err(|e| format!("--concurrency: {e}"))?
            }
            "--noop" => args.noop = true,
            "--runtime" => match value()?.as_str() {
                "onnx" => args.process = false,
                "process" => args.process = true,
                other => return Err(format!("--runtime: unknown runtime {other}")),
            },
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.model.is_none() && !args.noop {
        return Err("--model DIR or --noop is required".into());
    }
    Ok(args)
}

/// The no-op handler the benchmark compares against: parses the JSON body, answers a
/// constant.
async fn noop(body: bytes::Bytes) -> ([(axum::http::HeaderName, &'static str); 1], &'static str) {
    let parsed: Result<serde_json::Value, _> = serde_json::from_slice(&body);
    std::hint::black_box(parsed.is_ok());
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        "{\"predictions\":[0.0]}",
    )
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args().map_err(|e| {
        format!("{e}\nusage: serve_model --model DIR [--name NAME] [--addr HOST:PORT] | --noop")
    })?;
    let app = if args.noop {
        Router::new().route("/invocations", post(noop))
    } else {
        let dir = args.model.clone().expect("checked in args()");
        let predictor: Arc<dyn serving::Predictor> = if args.process {
            ProcessPredictor::start(&dir, ProcessSettings::default()).await?
        } else {
            tokio::task::spawn_blocking(move || serving::load_model(&dir)).await??
        };
        let gateway: Arc<Gateway> = Gateway::new(&args.name, GatewaySettings::default(), None);
        gateway.set_variants(
            vec![VariantSpec {
                name: "primary".into(),
                predictor,
                weight: 1.0,
                max_concurrency: args.concurrency,
                model_version: Some("1".into()),
            }],
            None,
        )?;
        serving::router(gateway)
    };
    let listener = tokio::net::TcpListener::bind(&args.addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("installing a SIGTERM handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        })
        .await?;
    Ok(())
}
