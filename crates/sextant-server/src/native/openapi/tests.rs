//! The document checked against the route table and against itself.

use std::collections::BTreeSet;

use super::*;
use crate::routes::{Api, table};

/// Every operation of the native API must be in the document: a route
/// added to any table under `/api/v1` and not described fails here.
#[test]
fn document_and_route_table_list_the_same_operations() {
    let doc = spec();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = table()
        .into_iter()
        .filter(|r| r.api == Api::Native && r.path.starts_with("/api/v1/"))
        .map(|r| (r.method.to_string(), r.path))
        .collect();
    assert_eq!(documented, routed);
}

#[test]
fn every_state_changing_operation_says_how_the_guard_refuses_it() {
    let doc = spec();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            for status in ["401", "403", "429"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} lacks {status}"
                );
            }
            if matches!(method.as_str(), "post" | "put" | "patch" | "delete") {
                for status in ["403", "415"] {
                    assert!(
                        responses.contains_key(status),
                        "{method} {path} lacks {status}"
                    );
                }
            }
            if matches!(method.as_str(), "post" | "put" | "patch") {
                // The guard wants a Content-Type even without input.
                assert!(
                    op.get("requestBody").is_some(),
                    "{method} {path} has no body"
                );
            }
            if op.get("requestBody").is_some() || op.get("parameters").is_some() {
                assert!(responses.contains_key("400"), "{method} {path} lacks 400");
            }
        }
    }
}

#[test]
fn every_reference_resolves() {
    let doc = spec();
    let text = doc.to_string();
    for piece in text.split("\"#/components/schemas/").skip(1) {
        let name = &piece[..piece.find('"').unwrap()];
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "dangling $ref {name}"
        );
    }
}
