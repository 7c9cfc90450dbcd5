//! Conformance of four-eyes approval (issue 17): the store refuses an
//! authenticated user approving a version they created, in the transaction
//! that records the decision, on SQLite and PostgreSQL.

#[macro_use]
mod support;

use std::time::{Duration, Instant};

use sextant_core::Error;
use sextant_core::entities::{NewRun, Tag};
use sextant_core::pipeline_runs::{NewPipelineRun, TriggerKind};
use sextant_core::registry::{
    Approval, ApprovalSettingsUpdate, ApprovalStatus, FourEyes, NewModelVersion,
};
use sextant_store::{MetaStore, StoreError};

use support::Fixture;

conformance!(
    a_creator_may_not_approve_their_version,
    a_pipeline_runs_user_counts_as_creator,
    approving_at_registration_is_checked_in_its_transaction,
    a_settings_change_waits_for_no_decision_in_flight,
    a_pipeline_gate_decides_only_while_the_model_allows_it,
);

fn new_run(s: &dyn MetaStore, tags: Vec<Tag>) -> String {
    s.create_run(&NewRun {
        experiment_id: 0,
        user_id: "ada".into(),
        start_time: Some(1000),
        tags,
        ..NewRun::default()
    })
    .unwrap()
    .info
    .run_id
}

/// Registers a version of `model` from `run` as `user`.
fn register(s: &dyn MetaStore, model: &str, run: &str, user: &str) -> i64 {
    s.create_model_version(&NewModelVersion {
        name: model.into(),
        source: format!("runs:/{run}/model"),
        user_id: Some(user.into()),
        ..NewModelVersion::default()
    })
    .unwrap()
    .version
}

fn decision(status: ApprovalStatus, actor: &str) -> Approval {
    Approval {
        status,
        actor: Some(actor.into()),
        time: None,
        comment: None,
    }
}

fn approve(s: &dyn MetaStore, v: i64, actor: &str, held: FourEyes) -> Result<(), StoreError> {
    s.set_model_version_approval(
        "m",
        v,
        &decision(ApprovalStatus::Approved, actor),
        false,
        held,
    )
    .map(|_| ())
}

fn refusal(r: Result<(), StoreError>) -> String {
    match r {
        Err(StoreError::Domain(Error::PermissionDenied(m))) => m,
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
}

fn distinct_approver(s: &dyn MetaStore, on: bool) {
    s.set_registered_model_approval_settings(
        "m",
        &ApprovalSettingsUpdate {
            require_distinct_approver: Some(on),
            allow_pipeline_approval: None,
        },
    )
    .unwrap();
}

/// The registrant is refused approving, with the message the API answers,
/// and nothing is written; rejecting, another user, a declared actor
/// (authentication off) and a model that turned four-eyes off all pass.
fn a_creator_may_not_approve_their_version(f: &Fixture) {
    let s = f.store.as_ref();
    s.create_registered_model("m", None, &[]).unwrap();
    let run = new_run(s, Vec::new());
    let v = register(s, "m", &run, "ada");
    let mark = s.last_event_id().unwrap();
    let m = refusal(approve(s, v, "ada", FourEyes::Held));
    assert_eq!(
        m,
        "four-eyes: ada may not approve version 1 of model 'm' because they created it \
         (registered it); another user with MANAGE on the model must approve it. To let \
         creators approve their own versions of this model, a user with MANAGE on it sets \
         require_distinct_approver to false (PATCH /api/v1/models/m/approval-settings)"
    );
    assert_eq!(
        s.get_model_version("m", v).unwrap().approval,
        Approval::default()
    );
    assert_eq!(
        s.last_event_id().unwrap(),
        mark,
        "a refusal appends nothing"
    );
    // Rejecting grants nothing: open to the creator.
    s.set_model_version_approval(
        "m",
        v,
        &decision(ApprovalStatus::Rejected, "ada"),
        false,
        FourEyes::Held,
    )
    .unwrap();
    let v2 = register(s, "m", &run, "ada");
    approve(s, v2, "grace", FourEyes::Held).unwrap();
    let v3 = register(s, "m", &run, "ada");
    approve(s, v3, "ada", FourEyes::Off).unwrap();
    let v4 = register(s, "m", &run, "ada");
    distinct_approver(s, false);
    approve(s, v4, "ada", FourEyes::Held).unwrap();
    assert!(matches!(
        approve(s, 99, "grace", FourEyes::Held),
        Err(StoreError::Domain(Error::NotFound(_)))
    ));
}

/// A version a pipeline run registered counts as created by the user the
/// run acts for, found through the version's tag or its run's.
fn a_pipeline_runs_user_counts_as_creator(f: &Fixture) {
    let s = f.store.as_ref();
    s.create_registered_model("m", None, &[]).unwrap();
    s.put_pipeline("p", "name: p\nsteps: {}\n", Some("carol"))
        .unwrap();
    let pr = s
        .create_pipeline_run_at(
            &NewPipelineRun {
                pipeline: "p".into(),
                params: "{}".into(),
                trigger_kind: TriggerKind::Manual,
                trigger_event: None,
                run_uuid: None,
                no_cache: false,
                started_by: Some("bob".into()),
            },
            sextant_core::clock::now_ms(),
        )
        .unwrap();
    // Through the run's tag (the version carries none).
    let run = new_run(s, vec![Tag::new("sextant.pipelineRun", pr.id.as_str())]);
    let v = register(s, "m", &run, "sextant");
    let m = refusal(approve(s, v, "bob", FourEyes::Held));
    assert!(
        m.contains(&format!(
            "(pipeline run {}, which registered it, acts for them)",
            pr.id
        )),
        "{m}"
    );
    // Through the version's own tag.
    let plain = new_run(s, Vec::new());
    let tagged = s
        .create_model_version(&NewModelVersion {
            name: "m".into(),
            source: format!("runs:/{plain}/model"),
            user_id: Some("sextant".into()),
            tags: vec![Tag::new("sextant.pipelineRun", pr.id.as_str())],
            ..NewModelVersion::default()
        })
        .unwrap();
    refusal(approve(s, tagged.version, "bob", FourEyes::Held));
    // A tag naming a pipeline run this store does not hold names nobody.
    let stray = new_run(s, vec![Tag::new("sextant.pipelineRun", "no-such-run")]);
    let v = register(s, "m", &stray, "sextant");
    approve(s, v, "bob", FourEyes::Held).unwrap();
    approve(s, tagged.version, "carol", FourEyes::Held).unwrap();
}

/// Approving a version at its registration is the registrant approving
/// their own version: refused while the model requires a distinct
/// approver, and then no version is created.
fn approving_at_registration_is_checked_in_its_transaction(f: &Fixture) {
    let s = f.store.as_ref();
    s.create_registered_model("m", None, &[]).unwrap();
    let run = new_run(s, Vec::new());
    let new = |status, held| NewModelVersion {
        name: "m".into(),
        source: format!("runs:/{run}/model"),
        user_id: Some("ada".into()),
        approval: Some(decision(status, "ada")),
        four_eyes: held,
        ..NewModelVersion::default()
    };
    let m = match s.create_model_version(&new(ApprovalStatus::Approved, FourEyes::Held)) {
        Err(StoreError::Domain(Error::PermissionDenied(m))) => m,
        other => panic!("expected PermissionDenied, got {other:?}"),
    };
    assert!(
        m.starts_with(
            "four-eyes: ada may not approve the version it registers of model 'm' because they \
             created it (they register it)"
        ),
        "{m}"
    );
    assert!(s.get_model_version("m", 1).is_err(), "nothing registered");
    // Rejected, or without four-eyes held (authentication off): registered.
    let rejected = s
        .create_model_version(&new(ApprovalStatus::Rejected, FourEyes::Held))
        .unwrap();
    assert_eq!(rejected.version, 1);
    s.create_model_version(&new(ApprovalStatus::Approved, FourEyes::Off))
        .unwrap();
    distinct_approver(s, false);
    let approved = s
        .create_model_version(&new(ApprovalStatus::Approved, FourEyes::Held))
        .unwrap();
    assert_eq!(approved.approval.status, ApprovalStatus::Approved);
    assert!(matches!(
        s.create_model_version(&NewModelVersion {
            name: "nope".into(),
            ..new(ApprovalStatus::Approved, FourEyes::Held)
        }),
        Err(StoreError::Domain(Error::NotFound(_)))
    ));
}

/// The race the check in the decision's transaction closes: a change
/// turning four-eyes on, still uncommitted when a creator's approval
/// starts, decides that approval once committed. On PostgreSQL the
/// decision waits on the model's row lock (seen in `pg_stat_activity`)
/// and then reads the new setting; on SQLite write transactions are
/// serialized whole, so the decision's transaction starts after the
/// change's and the same outcome follows.
fn a_settings_change_waits_for_no_decision_in_flight(f: &Fixture) {
    let s = f.store.as_ref();
    s.create_registered_model("m", None, &[]).unwrap();
    let run = new_run(s, Vec::new());
    let v = register(s, "m", &run, "ada");
    distinct_approver(s, false);
    if f.is_sqlite() {
        distinct_approver(s, true);
        refusal(approve(s, v, "ada", FourEyes::Held));
        return;
    }
    let mut change = f.postgres_client();
    let mut tx = change.transaction().unwrap();
    tx.execute(
        "UPDATE registered_models SET require_distinct_approver = 1 WHERE name = 'm'",
        &[],
    )
    .unwrap();
    let other = f.open_again();
    let deciding = std::thread::spawn(move || approve(other.as_ref(), v, "ada", FourEyes::Held));
    // Wait (with a deadline) until the decision is blocked on the lock.
    let mut watch = f.postgres_client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = watch
            .query_one(
                "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock'",
                &[],
            )
            .unwrap()
            .get(0);
        if waiting > 0 {
            break;
        }
        assert!(
            !deciding.is_finished(),
            "the decision did not wait for the settings change: {:?}",
            deciding.join().unwrap()
        );
        assert!(Instant::now() < deadline, "the decision never waited");
        std::thread::sleep(Duration::from_millis(5));
    }
    tx.commit().unwrap();
    refusal(deciding.join().unwrap());
    assert_eq!(
        s.get_model_version("m", v).unwrap().approval,
        Approval::default()
    );
}

/// A pipeline gate's decision (`FourEyes::Gate`) is kept while the model
/// allows pipeline approval, read in the registering transaction; with it
/// off the version is registered pending, the comment saying why. Held to
/// nothing else: the gate's actor is no user.
fn a_pipeline_gate_decides_only_while_the_model_allows_it(f: &Fixture) {
    let s = f.store.as_ref();
    s.create_registered_model("m", None, &[]).unwrap();
    let run = new_run(s, Vec::new());
    let gate = |status| NewModelVersion {
        name: "m".into(),
        source: format!("runs:/{run}/model"),
        user_id: Some("ada".into()),
        approval: Some(decision(status, "pipeline:trainer")),
        four_eyes: FourEyes::Gate,
        ..NewModelVersion::default()
    };
    let v = s
        .create_model_version(&gate(ApprovalStatus::Approved))
        .unwrap();
    assert_eq!(v.approval.status, ApprovalStatus::Approved);
    assert_eq!(v.approval.actor.as_deref(), Some("pipeline:trainer"));
    s.set_registered_model_approval_settings(
        "m",
        &ApprovalSettingsUpdate {
            require_distinct_approver: None,
            allow_pipeline_approval: Some(false),
        },
    )
    .unwrap();
    for status in [ApprovalStatus::Approved, ApprovalStatus::Rejected] {
        let v = s.create_model_version(&gate(status)).unwrap();
        let stored = s.get_model_version("m", v.version).unwrap();
        assert_eq!(stored.approval.status, ApprovalStatus::Pending);
        assert_eq!(stored.approval.actor, None);
        assert_eq!(
            stored.approval.comment.as_deref(),
            Some(
                format!(
                    "the version is left pending, not {status}: model 'm' does not take \
                     decisions from pipelines (allow_pipeline_approval is off); a user with \
                     MANAGE on it must decide"
                )
                .as_str()
            )
        );
    }
    // A pending registration is untouched.
    let v = s
        .create_model_version(&gate(ApprovalStatus::Pending))
        .unwrap();
    assert_eq!(v.approval.status, ApprovalStatus::Pending);
}
