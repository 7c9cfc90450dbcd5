//! Prometheus text exposition (format 0.0.4) of gateways' counters, written by hand: a
//! handful of families with `endpoint` and `variant` labels need no metrics crate.

use std::fmt::Write;

use super::gateway::{Gateway, GatewayStats};
use super::stats::{LATENCY_BUCKETS, VariantSnapshot};

/// A family's name, help text and how to read its value.
type Family<T> = (&'static str, &'static str, fn(&T) -> u64);

/// The exposition of every gateway in `gateways`, each family written once.
pub fn render(gateways: &[&Gateway]) -> String {
    let all: Vec<(GatewayStats, Vec<(String, f64)>)> = gateways
        .iter()
        .map(|g| (g.stats(), g.load_times().into_iter().collect()))
        .collect();
    let instances: Vec<(String, Vec<(String, usize)>)> = gateways
        .iter()
        .map(|g| (g.name().to_string(), g.instances()))
        .collect();
    let mut out = String::new();
    let counters: [Family<VariantSnapshot>; 4] = [
        (
            "sextant_serving_requests_total",
            "Requests routed to a variant.",
            |v| v.requests,
        ),
        (
            "sextant_serving_errors_total",
            "Requests a variant failed: 5xx answers, timeouts, model failures (not rejections).",
            |v| v.errors,
        ),
        (
            "sextant_serving_client_errors_total",
            "Requests answered 4xx (the client's mistake).",
            |v| v.client_errors,
        ),
        (
            "sextant_serving_rejected_requests_total",
            "Requests refused with 503 because the variant was at its concurrency limit (not errors).",
            |v| v.rejected,
        ),
    ];
    for (name, help, value) in counters {
        header(&mut out, name, help, "counter");
        for (stats, _) in &all {
            for v in &stats.variants {
                let _ = writeln!(out, "{name}{} {}", labels(stats, v), value(v));
            }
        }
    }
    header(
        &mut out,
        "sextant_serving_in_flight_requests",
        "Requests a variant is running now.",
        "gauge",
    );
    for (stats, _) in &all {
        for v in &stats.variants {
            let _ = writeln!(
                out,
                "sextant_serving_in_flight_requests{} {}",
                labels(stats, v),
                v.in_flight
            );
        }
    }
    let hist = "sextant_serving_request_duration_seconds";
    header(
        &mut out,
        hist,
        "Time from a variant taking a request to its answer being encoded.",
        "histogram",
    );
    for (stats, _) in &all {
        for v in &stats.variants {
            let base = format!(
                "endpoint=\"{}\",variant=\"{}\"",
                escape(&stats.endpoint),
                escape(&v.name)
            );
            let mut cumulative = 0;
            for (i, count) in v.latency.counts.iter().enumerate() {
                cumulative += count;
                let le = LATENCY_BUCKETS
                    .get(i)
                    .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
                let _ = writeln!(out, "{hist}_bucket{{{base},le=\"{le}\"}} {cumulative}");
            }
            let _ = writeln!(out, "{hist}_sum{{{base}}} {}", v.latency.sum_seconds);
            let _ = writeln!(out, "{hist}_count{{{base}}} {cumulative}");
        }
    }
    header(
        &mut out,
        "sextant_serving_model_load_seconds",
        "Seconds the variant's model took to load.",
        "gauge",
    );
    for (stats, loads) in &all {
        for (variant, secs) in loads {
            let _ = writeln!(
                out,
                "sextant_serving_model_load_seconds{{endpoint=\"{}\",variant=\"{}\"}} {secs}",
                escape(&stats.endpoint),
                escape(variant)
            );
        }
    }
    header(
        &mut out,
        "sextant_serving_instances",
        "Runtime instances serving the variant now (autoscaled between its min and max).",
        "gauge",
    );
    for (endpoint, variants) in &instances {
        for (variant, n) in variants {
            let _ = writeln!(
                out,
                "sextant_serving_instances{{endpoint=\"{}\",variant=\"{}\"}} {n}",
                escape(endpoint),
                escape(variant)
            );
        }
    }
    let endpoint_counters: [Family<GatewayStats>; 2] = [
        (
            "sextant_serving_capture_dropped_records_total",
            "Capture records dropped because the capture buffer was full.",
            |s| s.capture_dropped,
        ),
        (
            "sextant_serving_shadow_dropped_requests_total",
            "Shadow copies dropped because the shadow variant was saturated.",
            |s| s.shadow_dropped,
        ),
    ];
    for (name, help, value) in endpoint_counters {
        header(&mut out, name, help, "counter");
        for (stats, _) in &all {
            let _ = writeln!(
                out,
                "{name}{{endpoint=\"{}\"}} {}",
                escape(&stats.endpoint),
                value(stats)
            );
        }
    }
    out
}

fn header(out: &mut String, name: &str, help: &str, kind: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn labels(stats: &GatewayStats, v: &VariantSnapshot) -> String {
    format!(
        "{{endpoint=\"{}\",variant=\"{}\",shadow=\"{}\"}}",
        escape(&stats.endpoint),
        escape(&v.name),
        v.shadow
    )
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
