//! Conformance of the model registry and the events feed: every test runs
//! against SQLite and PostgreSQL through the public `MetaStore` trait.

#[macro_use]
mod support;

use sextant_core::Error;
use sextant_core::entities::{Metric, NewLoggedModel, NewRun, RunStatus, Tag};
use sextant_core::registry::{
    Approval, ApprovalSettings, ApprovalSettingsUpdate, ApprovalStatus, FourEyes, NewModelVersion,
    Stage,
};
use sextant_core::search::{SearchKind, parse_filter, parse_order_by};
use sextant_store::{MetaStore, ModelVersionSearch, RegisteredModelSearch, StoreError};

use support::Fixture;

conformance!(
    registered_model_lifecycle,
    rename_carries_versions_tags_and_aliases,
    version_numbers_are_never_reused,
    aliases,
    stages_and_latest_versions,
    search_registered_models,
    search_model_versions,
    sources_resolve_to_storage_locations,
    sources_outside_artifact_roots_are_refused,
    object_store_sources_are_recorded_as_given,
    approvals,
    a_decision_stands_unless_forced,
    a_pending_version_has_no_decider,
    approval_settings_default_on_and_change_one_at_a_time,
    events_name_the_actor_a_call_runs_as,
    events_record_each_lifecycle_change,
    concurrent_registrations_get_distinct_numbers,
);

fn domain(e: StoreError) -> Error {
    match e {
        StoreError::Domain(d) => d,
        other => panic!("expected a domain error, got {other:?}"),
    }
}

fn invalid(r: Result<impl std::fmt::Debug, StoreError>) -> String {
    match domain(r.unwrap_err()) {
        Error::InvalidParameter(m) => m,
        other => panic!("expected INVALID_PARAMETER_VALUE, got {other:?}"),
    }
}

fn new_run(store: &dyn MetaStore) -> String {
    store
        .create_run(&NewRun {
            experiment_id: 0,
            user_id: "ada".into(),
            start_time: Some(1000),
            ..NewRun::default()
        })
        .unwrap()
        .info
        .run_id
}

/// Registers `runs:/<run>/model` as a new version of `name`.
fn register(store: &dyn MetaStore, name: &str, run: &str) -> i64 {
    store
        .create_model_version(&NewModelVersion {
            name: name.into(),
            source: format!("runs:/{run}/model"),
            user_id: Some("ada".into()),
            ..NewModelVersion::default()
        })
        .unwrap()
        .version
}

fn models(store: &dyn MetaStore, filter: &str, order: &[&str], max: u64) -> Vec<String> {
    search_models(store, filter, order, max, 0).0
}

fn search_models(
    store: &dyn MetaStore,
    filter: &str,
    order: &[&str],
    max: u64,
    offset: u64,
) -> (Vec<String>, Option<u64>) {
    let page = store
        .search_registered_models(&RegisteredModelSearch {
            filter: parse_filter(SearchKind::RegisteredModels, filter).unwrap(),
            order_by: order
                .iter()
                .map(|o| parse_order_by(SearchKind::RegisteredModels, o).unwrap())
                .collect(),
            max_results: max,
            offset,
        })
        .unwrap();
    (
        page.items.into_iter().map(|m| m.name).collect(),
        page.next_offset,
    )
}

fn versions(store: &dyn MetaStore, filter: &str, order: &[&str]) -> Vec<(String, i64)> {
    store
        .search_model_versions(&ModelVersionSearch {
            filter: parse_filter(SearchKind::ModelVersions, filter).unwrap(),
            order_by: order
                .iter()
                .map(|o| parse_order_by(SearchKind::ModelVersions, o).unwrap())
                .collect(),
            max_results: 1000,
            offset: 0,
        })
        .unwrap()
        .items
        .into_iter()
        .map(|v| (v.name, v.version))
        .collect()
}

fn registered_model_lifecycle(f: &Fixture) {
    let s = f.store.as_ref();
    let m = s
        .create_registered_model("m", Some("first"), &[Tag::new("team", "a")])
        .unwrap();
    assert_eq!(m.name, "m");
    assert_eq!(m.description.as_deref(), Some("first"));
    assert_eq!(m.tags, vec![Tag::new("team", "a")]);
    assert!(m.latest_versions.is_empty() && m.aliases.is_empty());
    assert_eq!(
        domain(s.create_registered_model("m", None, &[]).unwrap_err()),
        Error::AlreadyExists("Registered Model (name=m) already exists.".into())
    );
    assert_eq!(
        domain(s.get_registered_model("nope").unwrap_err()),
        Error::not_found("Registered Model with name=nope not found")
    );
    assert!(invalid(s.create_registered_model("a/b", None, &[])).contains("Invalid model name"));

    let updated = s.update_registered_model("m", Some("second")).unwrap();
    assert_eq!(updated.description.as_deref(), Some("second"));
    assert!(updated.last_updated_timestamp >= m.last_updated_timestamp);

    s.set_registered_model_tag("m", &Tag::new("team", "b"))
        .unwrap();
    s.set_registered_model_tag("m", &Tag::new("owner", "ada"))
        .unwrap();
    assert_eq!(
        s.get_registered_model("m").unwrap().tags,
        vec![Tag::new("owner", "ada"), Tag::new("team", "b")]
    );
    s.delete_registered_model_tag("m", "owner").unwrap();
    // A missing tag is no error, as in MLflow.
    s.delete_registered_model_tag("m", "owner").unwrap();
    assert_eq!(
        s.get_registered_model("m").unwrap().tags,
        vec![Tag::new("team", "b")]
    );
    assert!(matches!(
        domain(
            s.set_registered_model_tag("nope", &Tag::new("k", "v"))
                .unwrap_err()
        ),
        Error::NotFound(_)
    ));

    let run = new_run(s);
    register(s, "m", &run);
    s.set_registered_model_alias("m", "champion", 1).unwrap();
    s.delete_registered_model("m").unwrap();
    assert!(matches!(
        domain(s.get_registered_model("m").unwrap_err()),
        Error::NotFound(_)
    ));
    assert!(matches!(
        domain(s.get_model_version("m", 1).unwrap_err()),
        Error::NotFound(_)
    ));
    // The name is free again, and numbering starts over for the new model.
    s.create_registered_model("m", None, &[]).unwrap();
    assert_eq!(register(s, "m", &run), 1);
    assert!(s.get_registered_model("m").unwrap().aliases.is_empty());
}

fn rename_carries_versions_tags_and_aliases(f: &Fixture) {
    let s = f.store.as_ref();
    let run = new_run(s);
    s.create_registered_model("old", None, &[Tag::new("k", "v")])
        .unwrap();
    s.create_registered_model("taken", None, &[]).unwrap();
    register(s, "old", &run);
    register(s, "old", &run);
    s.set_model_version_tag("old", 2, &Tag::new("vk", "vv"))
        .unwrap();
    s.set_registered_model_alias("old", "champion", 2).unwrap();
    s.delete_model_version("old", 1).unwrap();

    assert_eq!(
        domain(s.rename_registered_model("old", "taken").unwrap_err()),
        Error::AlreadyExists("Registered Model (name=taken) already exists.".into())
    );
    assert!(matches!(
        domain(s.rename_registered_model("nope", "x").unwrap_err()),
        Error::NotFound(_)
    ));
    let m = s.rename_registered_model("old", "new").unwrap();
    assert_eq!(m.name, "new");
    assert_eq!(m.tags, vec![Tag::new("k", "v")]);
    assert_eq!(m.aliases.len(), 1);
    assert_eq!(m.latest_versions.len(), 1);
    assert_eq!(m.latest_versions[0].name, "new");
    let v = s.get_model_version("new", 2).unwrap();
    assert_eq!(v.tags, vec![Tag::new("vk", "vv")]);
    assert_eq!(v.aliases, vec!["champion".to_string()]);
    assert_eq!(
        s.get_model_version_by_alias("new", "champion")
            .unwrap()
            .version,
        2
    );
    assert!(matches!(
        domain(s.get_registered_model("old").unwrap_err()),
        Error::NotFound(_)
    ));
    // The deleted version moved too, so its number stays taken.
    assert_eq!(register(s, "new", &run), 3);
}

fn version_numbers_are_never_reused(f: &Fixture) {
    let s = f.store.as_ref();
    let run = new_run(s);
    s.create_registered_model("m", None, &[]).unwrap();
    assert_eq!(
        (1..=3).map(|_| register(s, "m", &run)).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let v = s.get_model_version("m", 3).unwrap();
    assert_eq!(v.version, 3);
    assert_eq!(v.source, format!("runs:/{run}/model"));
    assert_eq!(v.run_id.as_deref(), Some(run.as_str()));
    assert_eq!(v.current_stage, Stage::None);
    assert_eq!(v.user_id.as_deref(), Some("ada"));

    s.set_registered_model_alias("m", "champion", 3).unwrap();
    s.set_registered_model_alias("m", "stable", 2).unwrap();
    s.delete_model_version("m", 3).unwrap();
    assert_eq!(
        domain(s.get_model_version("m", 3).unwrap_err()),
        Error::not_found("Model Version (name=m, version=3) not found")
    );
    assert!(matches!(
        domain(s.delete_model_version("m", 3).unwrap_err()),
        Error::NotFound(_)
    ));
    assert!(matches!(
        domain(s.update_model_version("m", 3, Some("x")).unwrap_err()),
        Error::NotFound(_)
    ));
    assert_eq!(register(s, "m", &run), 4);
    // Aliases to the deleted version went with it; others stay.
    let m = s.get_registered_model("m").unwrap();
    assert_eq!(
        m.aliases
            .iter()
            .map(|a| (a.alias.as_str(), a.version))
            .collect::<Vec<_>>(),
        vec![("stable", 2)]
    );
    assert_eq!(
        versions(s, "name = 'm'", &[])
            .into_iter()
            .map(|(_, v)| v)
            .collect::<Vec<_>>(),
        vec![4, 2, 1]
    );
    assert_eq!(s.get_latest_versions("m", &[]).unwrap()[0].version, 4);
    assert_eq!(
        s.get_model_version_by_alias("m", "latest").unwrap().version,
        4
    );

    let updated = s.update_model_version("m", 4, Some("better")).unwrap();
    assert_eq!(updated.description.as_deref(), Some("better"));
    s.set_model_version_tag("m", 4, &Tag::new("k", "v"))
        .unwrap();
    assert_eq!(
        s.get_model_version("m", 4).unwrap().tags,
        vec![Tag::new("k", "v")]
    );
    s.delete_model_version_tag("m", 4, "k").unwrap();
    s.delete_model_version_tag("m", 4, "k").unwrap();
    assert!(s.get_model_version("m", 4).unwrap().tags.is_empty());
    assert!(matches!(
        domain(
            s.set_model_version_tag("m", 3, &Tag::new("k", "v"))
                .unwrap_err()
        ),
        Error::NotFound(_)
    ));
    assert!(matches!(
        domain(
            s.create_model_version(&NewModelVersion {
                name: "nope".into(),
                source: format!("runs:/{run}/model"),
                ..NewModelVersion::default()
            })
            .unwrap_err()
        ),
        Error::NotFound(_)
    ));
}

fn aliases(f: &Fixture) {
    let s = f.store.as_ref();
    let run = new_run(s);
    s.create_registered_model("m", None, &[]).unwrap();
    register(s, "m", &run);
    register(s, "m", &run);
    s.set_registered_model_alias("m", "zeta", 1).unwrap();
    s.set_registered_model_alias("m", "alpha", 1).unwrap();
    s.set_registered_model_alias("m", "champion", 2).unwrap();
    // Upsert: the alias moves.
    s.set_registered_model_alias("m", "alpha", 2).unwrap();

    let m = s.get_registered_model("m").unwrap();
    assert_eq!(
        m.aliases
            .iter()
            .map(|a| (a.alias.as_str(), a.version))
            .collect::<Vec<_>>(),
        vec![("alpha", 2), ("champion", 2), ("zeta", 1)]
    );
    let v2 = s.get_model_version_by_alias("m", "champion").unwrap();
    assert_eq!(v2.version, 2);
    assert_eq!(v2.aliases, vec!["alpha".to_string(), "champion".into()]);
    assert_eq!(
        s.get_model_version_by_alias("m", "LATEST").unwrap().version,
        2
    );
    assert_eq!(
        invalid(s.get_model_version_by_alias("m", "nope")),
        "Registered model alias nope not found."
    );
    assert_eq!(
        invalid(s.set_registered_model_alias("m", "latest", 1)),
        "'latest' alias name (case insensitive) is reserved."
    );
    assert_eq!(
        invalid(s.set_registered_model_alias("m", "Latest", 1)),
        "'latest' alias name (case insensitive) is reserved."
    );
    assert_eq!(
        invalid(s.set_registered_model_alias("m", "v1", 1)),
        "Version alias name 'v1' is reserved."
    );
    assert!(invalid(s.set_registered_model_alias("m", "a b", 1)).contains("Invalid alias name"));
    assert_eq!(
        domain(s.set_registered_model_alias("m", "x", 9).unwrap_err()),
        Error::not_found("Model Version (name=m, version=9) not found")
    );

    s.delete_registered_model_alias("m", "zeta").unwrap();
    // Deleting an absent alias is no error, as in MLflow.
    s.delete_registered_model_alias("m", "zeta").unwrap();
    assert!(s.get_model_version("m", 1).unwrap().aliases.is_empty());
    assert!(matches!(
        domain(s.delete_registered_model_alias("nope", "x").unwrap_err()),
        Error::NotFound(_)
    ));

    s.create_registered_model("empty", None, &[]).unwrap();
    assert_eq!(
        invalid(s.get_model_version_by_alias("empty", "latest")),
        "Registered model alias latest not found."
    );
}

fn stages_and_latest_versions(f: &Fixture) {
    let s = f.store.as_ref();
    let run = new_run(s);
    s.create_registered_model("m", None, &[]).unwrap();
    for _ in 0..4 {
        register(s, "m", &run);
    }
    assert_eq!(
        invalid(s.transition_model_version_stage("m", 1, Stage::Archived, true)),
        "Model version transition cannot archive existing model versions because 'Archived' is \
         not an Active stage. Valid stages are ['Staging', 'Production']"
    );
    assert!(matches!(
        domain(
            s.transition_model_version_stage("m", 9, Stage::Staging, false)
                .unwrap_err()
        ),
        Error::NotFound(_)
    ));
    let v = s
        .transition_model_version_stage("m", 1, Stage::Production, false)
        .unwrap();
    assert_eq!(v.current_stage, Stage::Production);
    s.transition_model_version_stage("m", 2, Stage::Production, false)
        .unwrap();
    s.transition_model_version_stage("m", 3, Stage::Staging, false)
        .unwrap();

    let latest = s.get_latest_versions("m", &[]).unwrap();
    let pairs: Vec<(Stage, i64)> = latest
        .iter()
        .map(|v| (v.current_stage, v.version))
        .collect();
    // MLflow's order: stages by their lowest version.
    assert_eq!(
        pairs,
        vec![
            (Stage::Production, 2),
            (Stage::Staging, 3),
            (Stage::None, 4)
        ]
    );
    assert_eq!(
        s.get_registered_model("m")
            .unwrap()
            .latest_versions
            .iter()
            .map(|v| v.version)
            .collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    let staging = s.get_latest_versions("m", &[Stage::Staging]).unwrap();
    assert_eq!(staging.len(), 1);
    assert_eq!(staging[0].version, 3);

    // Archiving moves every other Production version to Archived.
    s.transition_model_version_stage("m", 4, Stage::Production, true)
        .unwrap();
    let stage_of = |v| s.get_model_version("m", v).unwrap().current_stage;
    assert_eq!(stage_of(1), Stage::Archived);
    assert_eq!(stage_of(2), Stage::Archived);
    assert_eq!(stage_of(3), Stage::Staging);
    assert_eq!(stage_of(4), Stage::Production);
    let prod = s
        .get_latest_versions("m", &[Stage::Production, Stage::Archived])
        .unwrap();
    assert_eq!(
        prod.iter()
            .map(|v| (v.current_stage, v.version))
            .collect::<Vec<_>>(),
        vec![(Stage::Archived, 2), (Stage::Production, 4)]
    );
    // A deleted version leaves the latest versions.
    s.delete_model_version("m", 4).unwrap();
    assert!(
        s.get_latest_versions("m", &[Stage::Production])
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        domain(s.get_latest_versions("nope", &[]).unwrap_err()),
        Error::NotFound(_)
    ));
}

fn search_registered_models(f: &Fixture) {
    let s = f.store.as_ref();
    for (name, tags) in [
        ("Alpha", vec![Tag::new("team", "red")]),
        ("alpha-2", vec![Tag::new("team", "blue")]),
        ("beta", vec![Tag::new("team", "red"), Tag::new("tier", "1")]),
        (
            "prompt-1",
            vec![Tag::new("mlflow.prompt.is_prompt", "true")],
        ),
        (
            "not-prompt",
            vec![Tag::new("mlflow.prompt.is_prompt", "false")],
        ),
    ] {
        s.create_registered_model(name, None, &tags).unwrap();
    }
    let all = ["Alpha", "alpha-2", "beta", "not-prompt"];
    // Prompts are excluded unless asked for; byte order puts uppercase first.
    assert_eq!(models(s, "", &[], 100), all);
    assert_eq!(
        models(s, "tags.`mlflow.prompt.is_prompt` != 'true'", &[], 100),
        all
    );
    assert_eq!(
        models(s, "tags.`mlflow.prompt.is_prompt` = 'false'", &[], 100),
        all
    );
    assert_eq!(
        models(s, "tags.`mlflow.prompt.is_prompt` = 'true'", &[], 100),
        ["prompt-1"]
    );
    assert_eq!(
        models(
            s,
            "name LIKE 'a%' AND tags.`mlflow.prompt.is_prompt` != 'true'",
            &[],
            100
        ),
        ["alpha-2"]
    );
    assert_eq!(models(s, "name = 'beta'", &[], 100), ["beta"]);
    assert_eq!(
        models(s, "name != 'beta'", &[], 100),
        ["Alpha", "alpha-2", "not-prompt"]
    );
    // LIKE is case-sensitive, ILIKE is not.
    assert_eq!(models(s, "name LIKE 'a%'", &[], 100), ["alpha-2"]);
    assert_eq!(models(s, "name ILIKE 'a%'", &[], 100), ["Alpha", "alpha-2"]);
    assert_eq!(models(s, "name LIKE '_lpha'", &[], 100), ["Alpha"]);
    assert_eq!(
        models(s, "name IN ('beta', 'Alpha', 'prompt-1')", &[], 100),
        ["Alpha", "beta"]
    );
    assert_eq!(
        models(s, "name NOT IN ('beta', 'Alpha')", &[], 100),
        ["alpha-2", "not-prompt"]
    );
    assert_eq!(models(s, "tags.team = 'red'", &[], 100), ["Alpha", "beta"]);
    assert_eq!(
        models(s, "tags.team = 'red' AND tags.tier = '1'", &[], 100),
        ["beta"]
    );
    assert_eq!(
        models(s, "tags.team LIKE 'R%'", &[], 100),
        Vec::<String>::new()
    );
    assert_eq!(
        models(s, "tags.team ILIKE 'R%'", &[], 100),
        ["Alpha", "beta"]
    );
    assert_eq!(models(s, "tags.team != 'red'", &[], 100), ["alpha-2"]);

    assert_eq!(
        models(s, "", &["name DESC"], 100),
        ["not-prompt", "beta", "alpha-2", "Alpha"]
    );
    s.update_registered_model("alpha-2", Some("touched"))
        .unwrap();
    assert_eq!(
        models(s, "", &["last_updated_timestamp DESC"], 100)[0],
        "alpha-2"
    );
    assert_eq!(models(s, "", &["timestamp DESC"], 100)[0], "alpha-2");

    // Pages of two, with MLflow's next-offset rule.
    let (p1, next) = search_models(s, "", &[], 2, 0);
    assert_eq!(
        (p1, next),
        (all[..2].iter().map(|n| n.to_string()).collect(), Some(2))
    );
    let (p2, next) = search_models(s, "", &[], 2, 2);
    assert_eq!(
        (p2, next),
        (all[2..].iter().map(|n| n.to_string()).collect(), None)
    );

    let err = s
        .search_registered_models(&RegisteredModelSearch {
            max_results: 1001,
            ..RegisteredModelSearch::default()
        })
        .unwrap_err();
    assert!(domain(err).to_string().contains("It must be at most 1000"));
}

fn search_model_versions(f: &Fixture) {
    let s = f.store.as_ref();
    let (r1, r2) = (new_run(s), new_run(s));
    s.create_registered_model("a", None, &[]).unwrap();
    s.create_registered_model("b", None, &[]).unwrap();
    s.create_registered_model("p", None, &[]).unwrap();
    register(s, "a", &r1);
    register(s, "a", &r2);
    register(s, "b", &r2);
    s.create_model_version(&NewModelVersion {
        name: "p".into(),
        source: "dummy-source".into(),
        tags: vec![
            Tag::new("mlflow.prompt.is_prompt", "true"),
            Tag::new("mlflow.prompt.text", "Hi {{name}}"),
        ],
        ..NewModelVersion::default()
    })
    .unwrap();
    s.set_model_version_tag("a", 2, &Tag::new("env", "Prod"))
        .unwrap();

    let all = versions(s, "", &["name ASC", "version_number ASC"]);
    assert_eq!(all, vec![("a".into(), 1), ("a".into(), 2), ("b".into(), 1)]);
    assert_eq!(
        versions(s, "tags.`mlflow.prompt.is_prompt` = 'true'", &[]),
        vec![("p".into(), 1)]
    );
    assert_eq!(
        versions(s, "name = 'a'", &[]),
        vec![("a".into(), 2), ("a".into(), 1)]
    );
    assert_eq!(
        versions(s, &format!("run_id = '{r2}'"), &["name ASC"]),
        vec![("a".into(), 2), ("b".into(), 1)]
    );
    assert_eq!(
        versions(s, &format!("run_id IN ('{r1}', 'zzz')"), &[]),
        vec![("a".into(), 1)]
    );
    assert_eq!(
        versions(s, "name IN ('b', 'p')", &[]),
        vec![("b".into(), 1)]
    );
    assert_eq!(
        versions(s, &format!("source_path = 'runs:/{r1}/model'"), &[]),
        vec![("a".into(), 1)]
    );
    assert_eq!(versions(s, "source_path LIKE 'runs:/%'", &[]).len(), 3);
    assert!(versions(s, "source_path LIKE 'RUNS:/%'", &[]).is_empty());
    assert_eq!(versions(s, "source_path ILIKE 'RUNS:/%'", &[]).len(), 3);
    assert_eq!(
        versions(s, "version_number > 1", &[]),
        vec![("a".into(), 2)]
    );
    assert_eq!(versions(s, "tags.env = 'Prod'", &[]), vec![("a".into(), 2)]);
    assert!(versions(s, "tags.env LIKE 'prod'", &[]).is_empty());
    assert_eq!(
        versions(s, "tags.env ILIKE 'prod'", &[]),
        vec![("a".into(), 2)]
    );

    // Default order: last update DESC, name ASC, version DESC.
    s.update_model_version("a", 1, Some("newest")).unwrap();
    assert_eq!(versions(s, "", &[])[0], ("a".into(), 1));
    s.delete_model_version("b", 1).unwrap();
    assert!(versions(s, "name = 'b'", &[]).is_empty());

    let page = |offset| {
        s.search_model_versions(&ModelVersionSearch {
            order_by: vec![
                parse_order_by(SearchKind::ModelVersions, "version_number ASC").unwrap(),
            ],
            max_results: 1,
            offset,
            ..ModelVersionSearch::default()
        })
        .unwrap()
    };
    let first = page(0);
    assert_eq!(first.items[0].version, 1);
    assert_eq!(first.next_offset, Some(1));
    let second = page(1);
    assert_eq!(second.items[0].version, 2);
    assert_eq!(second.next_offset, None);

    let dup = s
        .search_model_versions(&ModelVersionSearch {
            order_by: vec![
                parse_order_by(SearchKind::ModelVersions, "name ASC").unwrap(),
                parse_order_by(SearchKind::ModelVersions, "name DESC").unwrap(),
            ],
            max_results: 10,
            ..ModelVersionSearch::default()
        })
        .unwrap_err();
    assert!(
        domain(dup)
            .to_string()
            .contains("`order_by` contains duplicate fields")
    );
    let err = s
        .search_model_versions(&ModelVersionSearch::default())
        .unwrap_err();
    assert!(domain(err).to_string().contains("positive integer"));
}

fn sources_resolve_to_storage_locations(f: &Fixture) {
    let s = f.store.as_ref();
    let run = new_run(s);
    let run_root = format!("mlflow-artifacts:/0/{run}/artifacts");
    s.create_registered_model("m", None, &[]).unwrap();

    let v = s
        .create_model_version(&NewModelVersion {
            name: "m".into(),
            source: format!("runs:/{run}/model"),
            ..NewModelVersion::default()
        })
        .unwrap();
    assert_eq!(v.storage_location, format!("{run_root}/model"));

    let lm = s
        .create_logged_model(&NewLoggedModel {
            experiment_id: 0,
            name: Some("lm".into()),
            source_run_id: Some(run.clone()),
            ..NewLoggedModel::default()
        })
        .unwrap();
    for expected_version in [2, 3] {
        let v = s
            .create_model_version(&NewModelVersion {
                name: "m".into(),
                source: format!("models:/{}", lm.model_id),
                model_id: Some(lm.model_id.clone()),
                ..NewModelVersion::default()
            })
            .unwrap();
        assert_eq!(v.version, expected_version);
        assert_eq!(v.storage_location, lm.artifact_uri);
        assert_eq!(v.run_id.as_deref(), Some(run.as_str()));
        assert_eq!(v.model_id.as_deref(), Some(lm.model_id.as_str()));
    }
    let tag = s
        .get_logged_model(&lm.model_id, false)
        .unwrap()
        .tags
        .into_iter()
        .find(|t| t.key == "mlflow.modelVersions")
        .unwrap();
    assert_eq!(
        tag.value,
        r#"[{"name": "m", "version": 2}, {"name": "m", "version": 3}]"#
    );

    // A plain URI inside the run's root, or inside a logged model of its experiment.
    let inside = format!("{run_root}/model");
    let v = s
        .create_model_version(&NewModelVersion {
            name: "m".into(),
            source: inside.clone(),
            run_id: Some(run.clone()),
            ..NewModelVersion::default()
        })
        .unwrap();
    assert_eq!(v.storage_location, inside);
    s.create_model_version(&NewModelVersion {
        name: "m".into(),
        source: format!("{}/MLmodel", lm.artifact_uri),
        run_id: Some(run.clone()),
        ..NewModelVersion::default()
    })
    .unwrap();
    // A run whose root is a local directory: a local source is resolved
    // before it is confined, so `.` is the root and `..` cannot leave it.
    let exp = s
        .create_experiment("local-root", Some("/data/direct"), &[])
        .unwrap();
    let local_run = s
        .create_run(&NewRun {
            experiment_id: exp,
            ..NewRun::default()
        })
        .unwrap()
        .info;
    for source in [
        format!("{}/.", local_run.artifact_uri),
        format!("file://{}/model/./", local_run.artifact_uri),
        format!("{}/model/..", local_run.artifact_uri),
    ] {
        s.create_model_version(&NewModelVersion {
            name: "m".into(),
            source: source.clone(),
            run_id: Some(local_run.run_id.clone()),
            ..NewModelVersion::default()
        })
        .unwrap_or_else(|e| panic!("{source}: {e:?}"));
    }
    let m = invalid(s.create_model_version(&NewModelVersion {
        name: "m".into(),
        source: format!("{}/../../other", local_run.artifact_uri),
        run_id: Some(local_run.run_id.clone()),
        ..NewModelVersion::default()
    }));
    assert!(
        m.contains("To use a local path as a model version source"),
        "{m}"
    );
    // Without ids, inside some experiment's artifact location.
    let v = s
        .create_model_version(&NewModelVersion {
            name: "m".into(),
            source: "mlflow-artifacts:/0/elsewhere/model".into(),
            ..NewModelVersion::default()
        })
        .unwrap();
    assert_eq!(v.storage_location, "mlflow-artifacts:/0/elsewhere/model");
    // `models:/<name>/<version>` and `@alias` resolve to that version.
    s.set_registered_model_alias("m", "champion", 1).unwrap();
    for source in ["models:/m/1", "models:/m@champion"] {
        let v = s
            .create_model_version(&NewModelVersion {
                name: "m".into(),
                source: source.into(),
                ..NewModelVersion::default()
            })
            .unwrap();
        assert_eq!(v.storage_location, format!("{run_root}/model"));
        assert_eq!(v.run_id.as_deref(), Some(run.as_str()));
    }
    // A prompt keeps its placeholder source.
    s.create_registered_model("p", None, &[]).unwrap();
    let p = s
        .create_model_version(&NewModelVersion {
            name: "p".into(),
            source: "dummy-source".into(),
            tags: vec![Tag::new("mlflow.prompt.is_prompt", "true")],
            ..NewModelVersion::default()
        })
        .unwrap();
    assert_eq!(p.source, "dummy-source");
}

fn sources_outside_artifact_roots_are_refused(f: &Fixture) {
    let s = f.store.as_ref();
    let run = new_run(s);
    let other = new_run(s);
    let run_root = format!("mlflow-artifacts:/0/{run}/artifacts");
    s.create_registered_model("m", None, &[]).unwrap();
    let refused = |source: String, run_id: Option<&str>| {
        let r = s.create_model_version(&NewModelVersion {
            name: "m".into(),
            source: source.clone(),
            run_id: run_id.map(str::to_string),
            ..NewModelVersion::default()
        });
        match r {
            Err(StoreError::Domain(Error::InvalidParameter(m))) => {
                assert!(
                    m.contains("Invalid model version source") || m.contains("cannot use the"),
                    "{source}: {m}"
                )
            }
            other => panic!("{source} with run {run_id:?} was not refused: {other:?}"),
        }
    };
    for (source, with_run) in [
        ("/etc/passwd".to_string(), false),
        ("/etc/passwd".to_string(), true),
        ("file:///etc/passwd".to_string(), false),
        ("file:///etc/passwd".to_string(), true),
        ("etc/passwd".to_string(), true),
        ("./model".to_string(), true),
        (format!("{run_root}/../../../../etc"), true),
        (format!("{run_root}/%2e%2e/%2e%2e/%2e%2e/etc"), true),
        (format!("{run_root}/%252e%252e/%252e%252e/x"), true),
        (format!("{run_root}/..%2f..%2f..%2fetc"), false),
        (format!("{run_root}\\..\\..\\x"), true),
        (format!("{run_root}/model%00"), true),
        (format!("runs:/{run}/../../x"), false),
        (format!("runs:/{run}/%2e%2e/%2e%2e/x"), false),
        ("mlflow-artifacts:/0/../../etc".to_string(), false),
        (
            "http://host/api/2.0/mlflow-artifacts/artifacts/../../etc".to_string(),
            false,
        ),
        // Inside another run's root, or no artifact root at all.
        (format!("mlflow-artifacts:/0/{other}/artifacts/model"), true),
        (format!("{run_root}X/model"), true),
        // Schemes that name a host to connect to (MLflow 3.17 refuses them too).
        ("http://example.com/model".to_string(), true),
        ("https://example.com/model".to_string(), false),
        ("ftp://example.com/model".to_string(), true),
        ("hdfs://namenode/model".to_string(), false),
        ("s3://bucket/../../x".to_string(), true),
    ] {
        refused(source, with_run.then_some(run.as_str()));
    }
    let err = s
        .create_model_version(&NewModelVersion {
            name: "m".into(),
            source: format!("runs:/{other}/model"),
            run_id: Some(run.clone()),
            ..NewModelVersion::default()
        })
        .unwrap_err();
    assert!(matches!(domain(err), Error::InvalidParameter(_)));
    let err = s
        .create_model_version(&NewModelVersion {
            name: "m".into(),
            source: "runs:/nope/model".into(),
            ..NewModelVersion::default()
        })
        .unwrap_err();
    assert!(matches!(domain(err), Error::NotFound(_)));
    // A run that does not exist identifies nothing: MLflow's 400, naming the parameter.
    let m = invalid(s.create_model_version(&NewModelVersion {
        name: "m".into(),
        source: "mlflow-artifacts:/0/nope/artifacts/model".into(),
        run_id: Some("nope".into()),
        ..NewModelVersion::default()
    }));
    assert!(
        m.ends_with(
            "The run_id request parameter must identify the resource that contains the source."
        ),
        "{m}"
    );
    let err = s
        .create_model_version(&NewModelVersion {
            name: "m".into(),
            source: "/etc/passwd".into(),
            tags: vec![Tag::new("mlflow.prompt.is_prompt", "true")],
            ..NewModelVersion::default()
        })
        .unwrap_err();
    assert!(matches!(domain(err), Error::InvalidParameter(_)));
    // Nothing was registered.
    assert!(versions(s, "name = 'm'", &[]).is_empty());
}

/// `s3://`, `gs://` and other object stores Sextant never reads are recorded
/// as given, with or without a run id, and the run need not exist (MLflow
/// 3.17.2 does the same); so is a `runs:/` source whose run_id matches.
fn object_store_sources_are_recorded_as_given(f: &Fixture) {
    let s = f.store.as_ref();
    let run = new_run(s);
    s.create_registered_model("m", None, &[]).unwrap();
    let create = |source: &str, run_id: Option<&str>| {
        s.create_model_version(&NewModelVersion {
            name: "m".into(),
            source: source.into(),
            run_id: run_id.map(str::to_string),
            ..NewModelVersion::default()
        })
        .unwrap_or_else(|e| panic!("{source} with {run_id:?}: {e:?}"))
    };
    for (source, run_id) in [
        ("s3://bucket/model", None),
        ("s3://bucket/model", Some(run.as_str())),
        ("s3://bucket/path/model", Some("not-a-run-here")),
        ("gs://bucket/model", None),
        ("wasbs://c@acct.blob.core.windows.net/model", Some("r")),
        ("dbfs:/databricks/model", None),
    ] {
        let v = create(source, run_id);
        assert_eq!(v.source, source);
        assert_eq!(v.storage_location, source);
        assert_eq!(v.run_id.as_deref(), run_id);
    }
    let v = create("runs:/gone/model", Some("gone"));
    assert_eq!(v.storage_location, "runs:/gone/model");
    assert_eq!(v.run_id.as_deref(), Some("gone"));
    // A logged model named with an object-store source must exist; its run is the version's.
    let lm = s
        .create_logged_model(&NewLoggedModel {
            experiment_id: 0,
            name: Some("lm".into()),
            source_run_id: Some(run.clone()),
            ..NewLoggedModel::default()
        })
        .unwrap();
    let v = s
        .create_model_version(&NewModelVersion {
            name: "m".into(),
            source: "s3://bucket/lm".into(),
            model_id: Some(lm.model_id.clone()),
            ..NewModelVersion::default()
        })
        .unwrap();
    assert_eq!(v.run_id.as_deref(), Some(run.as_str()));
    let err = s
        .create_model_version(&NewModelVersion {
            name: "m".into(),
            source: "s3://bucket/lm".into(),
            model_id: Some("m-nope".into()),
            ..NewModelVersion::default()
        })
        .unwrap_err();
    assert!(matches!(domain(err), Error::NotFound(_)));
}

fn approvals(f: &Fixture) {
    let s = f.store.as_ref();
    let run = new_run(s);
    s.create_registered_model("m", None, &[]).unwrap();
    let v = s.get_model_version("m", register(s, "m", &run)).unwrap();
    assert_eq!(v.approval, Approval::default());

    let decided = s
        .set_model_version_approval(
            "m",
            1,
            &Approval {
                status: ApprovalStatus::Approved,
                actor: Some("grace".into()),
                time: None,
                comment: Some("looks good".into()),
            },
            false,
            FourEyes::Off,
        )
        .unwrap();
    assert_eq!(decided.approval.status, ApprovalStatus::Approved);
    assert_eq!(decided.approval.actor.as_deref(), Some("grace"));
    assert_eq!(decided.approval.comment.as_deref(), Some("looks good"));
    assert!(decided.approval.time.is_some());
    assert_eq!(
        s.get_model_version("m", 1).unwrap().approval,
        decided.approval
    );

    let pre = s
        .create_model_version(&NewModelVersion {
            name: "m".into(),
            source: format!("runs:/{run}/model"),
            approval: Some(Approval {
                status: ApprovalStatus::Rejected,
                actor: Some("bot".into()),
                time: Some(42),
                comment: None,
            }),
            ..NewModelVersion::default()
        })
        .unwrap();
    assert_eq!(pre.approval.status, ApprovalStatus::Rejected);
    assert_eq!(pre.approval.time, Some(42));
    assert!(matches!(
        domain(
            s.set_model_version_approval("m", 9, &Approval::default(), false, FourEyes::Off)
                .unwrap_err()
        ),
        Error::NotFound(_)
    ));
}

fn decide(status: ApprovalStatus, actor: &str, comment: &str) -> Approval {
    Approval {
        status,
        actor: Some(actor.into()),
        time: None,
        comment: Some(comment.into()),
    }
}

fn a_decision_stands_unless_forced(f: &Fixture) {
    let s = f.store.as_ref();
    let run = new_run(s);
    s.create_registered_model("m", None, &[]).unwrap();
    register(s, "m", &run);
    let first = s
        .set_model_version_approval(
            "m",
            1,
            &decide(ApprovalStatus::Approved, "grace", "ok"),
            false,
            FourEyes::Off,
        )
        .unwrap();
    let mark = s.last_event_id().unwrap();
    // Another decision, the same again, or a reset: refused, nothing changes.
    for status in [
        ApprovalStatus::Rejected,
        ApprovalStatus::Approved,
        ApprovalStatus::Pending,
    ] {
        let err = s
            .set_model_version_approval("m", 1, &decide(status, "alan", "no"), false, FourEyes::Off)
            .unwrap_err();
        match domain(err) {
            Error::InvalidState(m) => {
                assert!(m.contains("already approved by grace"), "{m}");
                assert!(m.contains("force"), "{m}");
            }
            other => panic!("expected InvalidState, got {other:?}"),
        }
    }
    assert_eq!(
        s.get_model_version("m", 1).unwrap().approval,
        first.approval
    );
    assert_eq!(s.last_event_id().unwrap(), mark);

    // Forced, the new decision replaces it; the feed keeps both.
    let forced = s
        .set_model_version_approval(
            "m",
            1,
            &decide(ApprovalStatus::Rejected, "alan", "leak"),
            true,
            FourEyes::Off,
        )
        .unwrap();
    assert_eq!(forced.approval.status, ApprovalStatus::Rejected);
    assert_eq!(forced.approval.actor.as_deref(), Some("alan"));
    let decisions: Vec<(String, Option<String>, serde_json::Value)> = s
        .events_after(
            0,
            &[
                "model_version.approved".into(),
                "model_version.rejected".into(),
            ],
            100,
        )
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.actor, serde_json::from_str(&e.payload).unwrap()))
        .collect();
    assert_eq!(decisions.len(), 2, "{decisions:?}");
    assert_eq!(decisions[0].0, "model_version.approved");
    assert_eq!(decisions[0].1.as_deref(), Some("grace"));
    assert_eq!(decisions[0].2["comment"], "ok");
    assert_eq!(decisions[1].0, "model_version.rejected");
    assert_eq!(decisions[1].2["previous_status"], "approved");
    assert_eq!(decisions[1].2["previous_actor"], "grace");
}

fn a_pending_version_has_no_decider(f: &Fixture) {
    let s = f.store.as_ref();
    let run = new_run(s);
    s.create_registered_model("m", None, &[]).unwrap();
    // Registered pending by someone (a pipeline does this): no decider, no time.
    let v = s
        .create_model_version(&NewModelVersion {
            name: "m".into(),
            source: format!("runs:/{run}/model"),
            approval: Some(decide(ApprovalStatus::Pending, "pipeline", "registered")),
            ..NewModelVersion::default()
        })
        .unwrap();
    assert_eq!(v.approval.status, ApprovalStatus::Pending);
    assert_eq!((v.approval.actor, v.approval.time), (None, None));
    // A forced reset to pending drops the decider and time too.
    s.set_model_version_approval(
        "m",
        1,
        &decide(ApprovalStatus::Approved, "grace", "ok"),
        false,
        FourEyes::Off,
    )
    .unwrap();
    let reset = s
        .set_model_version_approval(
            "m",
            1,
            &decide(ApprovalStatus::Pending, "grace", "redo"),
            true,
            FourEyes::Off,
        )
        .unwrap();
    assert_eq!(reset.approval.status, ApprovalStatus::Pending);
    assert_eq!((reset.approval.actor, reset.approval.time), (None, None));
    // Deciding a pending version needs no force.
    s.set_model_version_approval(
        "m",
        1,
        &decide(ApprovalStatus::Rejected, "alan", "no"),
        false,
        FourEyes::Off,
    )
    .unwrap();
}

/// A model's approval settings (issue 17): both on by default, changed one
/// at a time, carried by a rename, each change an event; an empty change
/// is no change.
fn approval_settings_default_on_and_change_one_at_a_time(f: &Fixture) {
    let s = f.store.as_ref();
    let m = s.create_registered_model("m", None, &[]).unwrap();
    assert_eq!(m.approval_settings, ApprovalSettings::default());
    assert!(m.approval_settings.require_distinct_approver);
    assert!(m.approval_settings.allow_pipeline_approval);
    let mark = s.last_event_id().unwrap();
    let off = s
        .set_registered_model_approval_settings(
            "m",
            &ApprovalSettingsUpdate {
                require_distinct_approver: Some(false),
                allow_pipeline_approval: None,
            },
        )
        .unwrap();
    assert_eq!(
        off.approval_settings,
        ApprovalSettings {
            require_distinct_approver: false,
            allow_pipeline_approval: true,
        }
    );
    let both = s
        .set_registered_model_approval_settings(
            "m",
            &ApprovalSettingsUpdate {
                require_distinct_approver: None,
                allow_pipeline_approval: Some(false),
            },
        )
        .unwrap();
    assert_eq!(
        both.approval_settings,
        ApprovalSettings {
            require_distinct_approver: false,
            allow_pipeline_approval: false,
        }
    );
    // Unchanged: no event.
    s.set_registered_model_approval_settings("m", &ApprovalSettingsUpdate::default())
        .unwrap();
    s.set_registered_model_approval_settings(
        "m",
        &ApprovalSettingsUpdate {
            require_distinct_approver: Some(false),
            allow_pipeline_approval: Some(false),
        },
    )
    .unwrap();
    let events = s
        .events_after(mark, &["registered_model.*".into()], 10)
        .unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        events
            .iter()
            .all(|e| e.kind == "registered_model.approval_settings_updated"
                && e.subject == "registered_model:m")
    );
    let last: serde_json::Value = serde_json::from_str(&events[1].payload).unwrap();
    assert_eq!(
        last,
        serde_json::json!({
            "name": "m", "require_distinct_approver": false, "allow_pipeline_approval": false
        })
    );
    // Read back through every path that lists models, and kept by a rename.
    s.create_registered_model("other", None, &[]).unwrap();
    s.rename_registered_model("m", "n").unwrap();
    assert_eq!(
        s.get_registered_model("n").unwrap().approval_settings,
        both.approval_settings
    );
    let listed = s
        .search_registered_models(&RegisteredModelSearch {
            max_results: 10,
            ..RegisteredModelSearch::default()
        })
        .unwrap()
        .items;
    let by_name = |n: &str| {
        listed
            .iter()
            .find(|m| m.name == n)
            .unwrap()
            .approval_settings
    };
    assert_eq!(by_name("n"), both.approval_settings);
    assert_eq!(by_name("other"), ApprovalSettings::default());
    assert!(matches!(
        domain(
            s.set_registered_model_approval_settings("nope", &ApprovalSettingsUpdate::default())
                .unwrap_err()
        ),
        Error::NotFound(_)
    ));
}

/// A store call made inside `actor::acting_as` (the server does it for an
/// authenticated request) appends events naming that actor, whatever the
/// call itself declares; outside one, the declared actor stays.
fn events_name_the_actor_a_call_runs_as(f: &Fixture) {
    let store: std::sync::Arc<dyn MetaStore> = std::sync::Arc::from(f.open_again());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let declared = NewRun {
        experiment_id: 0,
        user_id: "mallory".into(),
        ..NewRun::default()
    };
    let new = declared.clone();
    rt.block_on(sextant_store::actor::acting_as(
        "alice".into(),
        sextant_store::call(&store, move |s| s.create_run(&new)),
    ))
    .unwrap();
    let new = declared.clone();
    rt.block_on(sextant_store::call(&store, move |s| s.create_run(&new)))
        .unwrap();
    let actors: Vec<Option<String>> = store
        .events_after(0, &["run.created".into()], 10)
        .unwrap()
        .into_iter()
        .map(|e| e.actor)
        .collect();
    assert_eq!(
        actors,
        [Some("alice".to_string()), Some("mallory".to_string())]
    );
}

fn events_record_each_lifecycle_change(f: &Fixture) {
    let s = f.store.as_ref();
    assert_eq!(s.last_event_id().unwrap(), 0);
    let exp = s.create_experiment("e", None, &[]).unwrap();
    s.rename_experiment(exp, "e2").unwrap();
    let run = s
        .create_run(&NewRun {
            experiment_id: exp,
            user_id: "ada".into(),
            ..NewRun::default()
        })
        .unwrap()
        .info
        .run_id;
    let mark = s.last_event_id().unwrap();
    // Logging and tags are not lifecycle changes.
    s.log_batch(
        &run,
        &[Metric::new("m", 1.0, 1, 0)],
        &[Tag::new("p", "1")],
        &[Tag::new("t", "1")],
    )
    .unwrap();
    s.set_experiment_tag(exp, &Tag::new("k", "v")).unwrap();
    s.update_run(&run, None, Some(5), Some("renamed")).unwrap();
    assert_eq!(s.last_event_id().unwrap(), mark);
    s.update_run(&run, Some(RunStatus::Finished), Some(6), None)
        .unwrap();
    // The same status again is no change.
    s.update_run(&run, Some(RunStatus::Finished), None, None)
        .unwrap();
    let lm = s
        .create_logged_model(&NewLoggedModel {
            experiment_id: exp,
            source_run_id: Some(run.clone()),
            ..NewLoggedModel::default()
        })
        .unwrap();
    s.finalize_logged_model(
        &lm.model_id,
        sextant_core::entities::LoggedModelStatus::Ready,
    )
    .unwrap();
    s.create_registered_model("m", None, &[]).unwrap();
    s.set_registered_model_tag("m", &Tag::new("k", "v"))
        .unwrap();
    s.create_model_version(&NewModelVersion {
        name: "m".into(),
        source: format!("models:/{}", lm.model_id),
        user_id: Some("ada".into()),
        ..NewModelVersion::default()
    })
    .unwrap();
    s.set_model_version_tag("m", 1, &Tag::new("k", "v"))
        .unwrap();
    s.update_model_version("m", 1, Some("d")).unwrap();
    s.transition_model_version_stage("m", 1, Stage::Staging, false)
        .unwrap();
    s.set_registered_model_alias("m", "champion", 1).unwrap();
    s.set_registered_model_alias("m", "champion", 1).unwrap();
    s.set_model_version_approval(
        "m",
        1,
        &Approval {
            status: ApprovalStatus::Approved,
            actor: Some("grace".into()),
            ..Approval::default()
        },
        false,
        FourEyes::Off,
    )
    .unwrap();
    s.update_registered_model("m", Some("x")).unwrap();
    s.rename_registered_model("m", "n").unwrap();
    s.delete_model_version("n", 1).unwrap();
    s.delete_registered_model("n").unwrap();
    s.delete_logged_model(&lm.model_id).unwrap();
    s.delete_run(&run).unwrap();
    s.restore_run(&run).unwrap();
    s.delete_experiment(exp).unwrap();
    s.restore_experiment(exp).unwrap();

    let events = s.events_after(0, &[], 1000).unwrap();
    let got: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.kind.as_str(), e.subject.as_str()))
        .collect();
    let e = format!("experiment:{exp}");
    let r = format!("run:{run}");
    let l = format!("logged_model:{}", lm.model_id);
    let want: Vec<(&str, &str)> = vec![
        ("experiment.created", &e),
        ("experiment.renamed", &e),
        ("run.created", &r),
        ("run.status_changed", &r),
        ("logged_model.created", &l),
        ("logged_model.finalized", &l),
        ("registered_model.created", "registered_model:m"),
        ("model_version.created", "model_version:m/1"),
        ("model_version.tag_set", "model_version:m/1"),
        ("model_version.updated", "model_version:m/1"),
        ("model_version.stage_changed", "model_version:m/1"),
        ("model_version.alias_set", "registered_model:m"),
        ("model_version.approved", "model_version:m/1"),
        ("registered_model.updated", "registered_model:m"),
        ("registered_model.renamed", "registered_model:n"),
        ("model_version.alias_deleted", "registered_model:n"),
        ("model_version.deleted", "model_version:n/1"),
        ("registered_model.deleted", "registered_model:n"),
        ("logged_model.deleted", &l),
        ("run.deleted", &r),
        ("run.restored", &r),
        ("experiment.deleted", &e),
        ("experiment.restored", &e),
    ];
    assert_eq!(got, want);
    assert!(events.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(s.last_event_id().unwrap(), events.last().unwrap().id);

    let status: serde_json::Value = serde_json::from_str(&events[3].payload).unwrap();
    assert_eq!(status["old_status"], "RUNNING");
    assert_eq!(status["new_status"], "FINISHED");
    assert_eq!(events[3].actor.as_deref(), Some("ada"));
    assert_eq!(events[7].actor.as_deref(), Some("ada"));
    assert_eq!(events[12].actor.as_deref(), Some("grace"));
    assert_eq!(events[0].actor, None);
    let created: serde_json::Value = serde_json::from_str(&events[7].payload).unwrap();
    assert_eq!(created["version"], 1);
    assert_eq!(created["model_id"], lm.model_id.as_str());

    // Kind filters: exact or prefix; paging with `after` and `limit`.
    let runs = s.events_after(0, &["run.*".to_string()], 100).unwrap();
    assert_eq!(runs.len(), 4);
    assert!(runs.iter().all(|e| e.kind.starts_with("run.")));
    let two = s
        .events_after(
            0,
            &["experiment.created".to_string(), "model_version.*".into()],
            100,
        )
        .unwrap();
    assert_eq!(two.len(), 9);
    let after = s.events_after(events[5].id, &[], 2).unwrap();
    assert_eq!(
        after.iter().map(|e| e.id).collect::<Vec<_>>(),
        vec![events[6].id, events[7].id]
    );
    assert!(
        s.events_after(s.last_event_id().unwrap(), &[], 10)
            .unwrap()
            .is_empty()
    );
}

fn concurrent_registrations_get_distinct_numbers(f: &Fixture) {
    let s = f.store.as_ref();
    let run = new_run(s);
    s.create_registered_model("m", None, &[]).unwrap();
    let before = s.last_event_id().unwrap();
    let mut numbers: Vec<i64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| (0..5).map(|_| register(s, "m", &run)).collect::<Vec<_>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=20).collect::<Vec<_>>());
    // One creation event per version, committed in id order.
    let events = s.events_after(before, &[], 100).unwrap();
    assert_eq!(events.len(), 20);
    let mut seen: Vec<i64> = events
        .iter()
        .map(|e| {
            let p: serde_json::Value = serde_json::from_str(&e.payload).unwrap();
            p["version"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(seen, (1..=20).collect::<Vec<_>>());
    seen.dedup();
    assert_eq!(seen.len(), 20);
}
