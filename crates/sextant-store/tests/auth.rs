//! Conformance of the auth store (users, roles, grants, tokens): every test
//! runs against SQLite and PostgreSQL through `MetaStore::auth`.

#[macro_use]
mod support;

use sextant_core::Error;
use sextant_core::auth::{DEFAULT_WORKSPACE, NewApiToken, Permission, user_role_name};
use sextant_store::{AuthStore, StoreError};

use support::Fixture;

conformance!(
    users_are_created_found_and_unique,
    passwords_and_admin_flags_change,
    deleting_a_user_takes_what_hangs_off_them,
    roles_are_managed_by_workspace_and_name,
    role_grants_are_validated_and_unique,
    assignments_give_users_their_roles_grants,
    direct_grants_live_on_a_hidden_role,
    resource_grants_follow_renames_and_deletes,
    tokens_are_stored_by_hash_and_revoked,
    a_tokens_use_is_recorded_at_most_once_a_minute,
);

const HASH: &str = "scrypt:32768:8:1$salt$0123456789abcdef";

fn domain<T: std::fmt::Debug>(r: Result<T, StoreError>) -> Error {
    match r {
        Err(StoreError::Domain(e)) => e,
        other => panic!("expected a domain error, got {other:?}"),
    }
}

fn invalid<T: std::fmt::Debug>(r: Result<T, StoreError>) -> String {
    match domain(r) {
        Error::InvalidParameter(m) => m,
        e => panic!("expected InvalidParameter, got {e:?}"),
    }
}

fn not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) -> String {
    match domain(r) {
        Error::NotFound(m) => m,
        e => panic!("expected NotFound, got {e:?}"),
    }
}

fn exists<T: std::fmt::Debug>(r: Result<T, StoreError>) -> String {
    match domain(r) {
        Error::AlreadyExists(m) => m,
        e => panic!("expected AlreadyExists, got {e:?}"),
    }
}

fn user(a: &dyn AuthStore, name: &str) -> i64 {
    a.create_user(name, HASH, false).unwrap().id
}

fn new_token(user_id: i64, name: &str, sha: &str) -> NewApiToken {
    NewApiToken {
        user_id,
        name: name.into(),
        token_sha256: sha.into(),
        scopes: vec![],
        expires_ms: None,
    }
}

fn users_are_created_found_and_unique(f: &Fixture) {
    let a = f.store.auth();
    assert_eq!(a.count_users().unwrap(), 0);
    let bob = a.create_user("bob", HASH, false).unwrap();
    let alice = a.create_user("alice", "other-hash", true).unwrap();
    assert!(alice.is_admin && !bob.is_admin);
    assert_ne!(alice.id, bob.id);

    let got = a.get_user("alice").unwrap();
    assert_eq!(got.user, alice);
    assert_eq!(got.password_hash, "other-hash");
    assert_eq!(a.get_user_by_id(bob.id).unwrap().user, bob);
    assert_eq!(a.list_users().unwrap(), vec![alice.clone(), bob.clone()]);
    assert_eq!(a.count_users().unwrap(), 2);

    let msg = exists(a.create_user("bob", "secret-hash-value", true));
    assert_eq!(msg, "User (username=bob) already exists.");
    assert!(!msg.contains("secret-hash-value") && !msg.contains(HASH));
    assert_eq!(
        not_found(a.get_user("carol")),
        "User with username=carol not found"
    );
    not_found(a.get_user_by_id(alice.id + bob.id + 100));
    // Names are exact: no case folding, no trimming.
    not_found(a.get_user("Alice"));
    invalid(a.create_user("", HASH, false));
    invalid(a.create_user("a:b", HASH, false));
    assert_eq!(a.count_users().unwrap(), 2);
}

fn passwords_and_admin_flags_change(f: &Fixture) {
    let a = f.store.auth();
    user(a, "bob");
    a.set_password_hash("bob", "new-hash").unwrap();
    assert_eq!(a.get_user("bob").unwrap().password_hash, "new-hash");
    a.set_admin("bob", true).unwrap();
    assert!(a.get_user("bob").unwrap().user.is_admin);
    a.set_admin("bob", false).unwrap();
    assert!(!a.get_user("bob").unwrap().user.is_admin);
    not_found(a.set_password_hash("nobody", "h"));
    not_found(a.set_admin("nobody", true));
}

fn deleting_a_user_takes_what_hangs_off_them(f: &Fixture) {
    let a = f.store.auth();
    let bob = user(a, "bob");
    let carol = user(a, "carol");
    let team = a.create_role(DEFAULT_WORKSPACE, "team", None).unwrap();
    a.add_role_permission(team.id, "experiment", "*", Permission::Read)
        .unwrap();
    a.assign_role(bob, team.id).unwrap();
    a.assign_role(carol, team.id).unwrap();
    a.grant_user_permission(bob, "experiment", "1", Permission::Manage)
        .unwrap();
    a.create_token(&new_token(bob, "ci", "sha-bob")).unwrap();

    a.delete_user("bob").unwrap();
    not_found(a.get_user("bob"));
    let names: Vec<String> = a
        .list_roles(None)
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["team"], "the hidden role goes with the user");
    let holders: Vec<i64> = a
        .role_assignments(team.id)
        .unwrap()
        .iter()
        .map(|x| x.user_id)
        .collect();
    assert_eq!(holders, [carol]);
    assert!(a.permissions_of_user(bob).unwrap().is_empty());
    assert!(a.list_tokens(bob).unwrap().is_empty());
    not_found(a.token_by_hash("sha-bob"));
    not_found(a.delete_user("bob"));

    // A new user of the same name starts clean.
    let bob2 = user(a, "bob");
    assert!(a.roles_of_user(bob2).unwrap().is_empty());
    assert!(a.permissions_of_user(bob2).unwrap().is_empty());
}

fn roles_are_managed_by_workspace_and_name(f: &Fixture) {
    let a = f.store.auth();
    let r = a
        .create_role("default", "readers", Some("can read"))
        .unwrap();
    assert_eq!(r.name, "readers");
    assert_eq!(r.workspace, "default");
    assert_eq!(r.description.as_deref(), Some("can read"));
    assert!(r.permissions.is_empty());
    assert_eq!(a.get_role(r.id).unwrap(), r);

    assert_eq!(
        exists(a.create_role("default", "readers", None)),
        "Role (name=readers, workspace=default) already exists."
    );
    let other = a.create_role("team-b", "readers", None).unwrap();
    assert_eq!(other.description, None);
    assert_eq!(
        invalid(a.create_role("default", "  ", None)),
        "Role name cannot be empty."
    );
    assert!(invalid(a.create_role("default", "__user_1__", None)).contains("reserved"));
    invalid(a.create_role("default", "__user_x", None));
    invalid(a.create_role("", "x", None));

    let all = a.list_roles(None).unwrap();
    let keys: Vec<(&str, &str)> = all
        .iter()
        .map(|r| (r.workspace.as_str(), r.name.as_str()))
        .collect();
    assert_eq!(keys, [("default", "readers"), ("team-b", "readers")]);
    let b = a.list_roles(Some(&["team-b".to_string()])).unwrap();
    assert_eq!(b, vec![other.clone()]);
    assert!(a.list_roles(Some(&[])).unwrap().is_empty());

    let renamed = a.update_role(r.id, Some("viewers"), None).unwrap();
    assert_eq!(renamed.name, "viewers");
    assert_eq!(renamed.description.as_deref(), Some("can read"));
    let cleared = a.update_role(r.id, None, Some("")).unwrap();
    assert_eq!(cleared.description, None);
    a.create_role("default", "writers", None).unwrap();
    assert_eq!(
        exists(a.update_role(r.id, Some("writers"), None)),
        "Role with name=writers already exists in workspace=default"
    );
    // Renaming to its own name is no conflict.
    a.update_role(r.id, Some("viewers"), None).unwrap();
    invalid(a.update_role(r.id, Some("__user_7__"), None));
    invalid(a.update_role(r.id, Some(""), None));
    not_found(a.update_role(r.id + 1000, Some("x"), None));

    let p = a
        .add_role_permission(r.id, "experiment", "*", Permission::Read)
        .unwrap();
    let bob = user(a, "bob");
    a.assign_role(bob, r.id).unwrap();
    a.delete_role(r.id).unwrap();
    assert_eq!(
        not_found(a.get_role(r.id)),
        format!("Role with id={} not found", r.id)
    );
    not_found(a.update_role_permission(p.id, Permission::Edit));
    assert!(a.roles_of_user(bob).unwrap().is_empty());
    not_found(a.delete_role(r.id));
}

fn role_grants_are_validated_and_unique(f: &Fixture) {
    let a = f.store.auth();
    let r = a.create_role("default", "r", None).unwrap();
    let p = a
        .add_role_permission(r.id, "registered_model", "m", Permission::Edit)
        .unwrap();
    assert_eq!(p.role_id, r.id);
    assert_eq!(
        (
            p.resource_type.as_str(),
            p.resource_pattern.as_str(),
            p.permission
        ),
        ("registered_model", "m", Permission::Edit)
    );
    assert_eq!(
        exists(a.add_role_permission(r.id, "registered_model", "m", Permission::Read)),
        format!(
            "Role permission (role_id={}, resource_type=registered_model, resource_pattern=m) \
             already exists.",
            r.id
        )
    );
    invalid(a.add_role_permission(r.id, "nonsense", "*", Permission::Read));
    invalid(a.add_role_permission(r.id, "run", "1", Permission::Read));
    invalid(a.add_role_permission(r.id, "experiment", "1", Permission::NoPermissions));
    invalid(a.add_role_permission(r.id, "workspace", "*", Permission::Edit));
    invalid(a.add_role_permission(r.id, "experiment", "", Permission::Read));
    not_found(a.add_role_permission(r.id + 1000, "experiment", "1", Permission::Read));
    let ws = a
        .add_role_permission(r.id, "workspace", "*", Permission::Manage)
        .unwrap();

    let up = a.update_role_permission(p.id, Permission::Deny).unwrap();
    assert_eq!(up.permission, Permission::Deny);
    invalid(a.update_role_permission(ws.id, Permission::Read));
    invalid(a.update_role_permission(p.id, Permission::NoPermissions));
    let role = a.get_role(r.id).unwrap();
    assert_eq!(role.permissions, vec![up.clone(), ws.clone()]);

    a.remove_role_permission(p.id).unwrap();
    assert_eq!(
        not_found(a.remove_role_permission(p.id)),
        format!("Role permission with id={} not found", p.id)
    );
    not_found(a.update_role_permission(p.id, Permission::Read));
    assert_eq!(a.get_role(r.id).unwrap().permissions, vec![ws]);
}

fn assignments_give_users_their_roles_grants(f: &Fixture) {
    let a = f.store.auth();
    let bob = user(a, "bob");
    let carol = user(a, "carol");
    let readers = a.create_role("default", "readers", None).unwrap();
    let editors = a.create_role("default", "editors", None).unwrap();
    let elsewhere = a.create_role("other", "admins", None).unwrap();
    a.add_role_permission(readers.id, "experiment", "*", Permission::Read)
        .unwrap();
    a.add_role_permission(editors.id, "experiment", "7", Permission::Edit)
        .unwrap();
    a.add_role_permission(editors.id, "registered_model", "m", Permission::Deny)
        .unwrap();
    a.add_role_permission(elsewhere.id, "workspace", "*", Permission::Manage)
        .unwrap();

    let x = a.assign_role(bob, readers.id).unwrap();
    assert_eq!((x.user_id, x.role_id), (bob, readers.id));
    a.assign_role(bob, editors.id).unwrap();
    a.assign_role(carol, elsewhere.id).unwrap();
    assert_eq!(
        exists(a.assign_role(bob, readers.id)),
        format!(
            "User role assignment (user_id={bob}, role_id={}) already exists",
            readers.id
        )
    );
    not_found(a.assign_role(bob + carol + 100, readers.id));
    not_found(a.assign_role(bob, readers.id + editors.id + elsewhere.id + 100));

    let rows = a.permissions_of_user(bob).unwrap();
    let got: Vec<(&str, &str, &str, Permission)> = rows
        .iter()
        .map(|p| {
            (
                p.role_name.as_str(),
                p.resource_type.as_str(),
                p.resource_pattern.as_str(),
                p.permission,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("editors", "experiment", "7", Permission::Edit),
            ("editors", "registered_model", "m", Permission::Deny),
            ("readers", "experiment", "*", Permission::Read),
        ]
    );
    assert!(rows.iter().all(|p| p.workspace == "default"));
    assert_eq!(rows[0].role_id, editors.id);
    let names: Vec<String> = a
        .roles_of_user(bob)
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["editors", "readers"]);
    assert_eq!(a.roles_of_user(bob).unwrap()[0].permissions.len(), 2);
    assert_eq!(a.role_assignments(readers.id).unwrap(), vec![x]);
    not_found(a.role_assignments(readers.id + editors.id + elsewhere.id + 100));

    a.unassign_role(bob, editors.id).unwrap();
    assert_eq!(
        not_found(a.unassign_role(bob, editors.id)),
        format!(
            "User role assignment (user_id={bob}, role_id={}) not found",
            editors.id
        )
    );
    assert_eq!(a.permissions_of_user(bob).unwrap().len(), 1);
    assert_eq!(a.permissions_of_user(carol).unwrap()[0].workspace, "other");
}

fn direct_grants_live_on_a_hidden_role(f: &Fixture) {
    let a = f.store.auth();
    let bob = user(a, "bob");
    let carol = user(a, "carol");
    a.grant_user_permission(bob, "experiment", "1", Permission::Manage)
        .unwrap();
    a.grant_user_permission(bob, "registered_model", "m", Permission::Read)
        .unwrap();
    assert_eq!(
        exists(a.grant_user_permission(bob, "experiment", "1", Permission::Read)),
        "Permission for user=bob on resource_type=experiment, resource_id=1 already exists."
    );
    invalid(a.grant_user_permission(bob, "workspace", "*", Permission::Manage));
    invalid(a.grant_user_permission(bob, "run", "1", Permission::Read));
    invalid(a.grant_user_permission(bob, "experiment", "2", Permission::NoPermissions));
    not_found(a.grant_user_permission(bob + carol + 100, "experiment", "1", Permission::Read));

    let roles = a.roles_of_user(bob).unwrap();
    assert_eq!(roles.len(), 1, "one hidden role, created once");
    let hidden = &roles[0];
    assert_eq!(hidden.name, user_role_name(bob));
    assert_eq!(hidden.workspace, DEFAULT_WORKSPACE);
    assert_eq!(hidden.permissions.len(), 2);
    assert_eq!(a.permissions_of_user(bob).unwrap().len(), 2);
    assert!(a.permissions_of_user(carol).unwrap().is_empty());
    // Another user's hidden role is not theirs to hold.
    invalid(a.assign_role(carol, hidden.id));
    invalid(a.update_role(hidden.id, Some("plain"), None));

    a.revoke_user_permission(bob, "experiment", "1").unwrap();
    assert_eq!(
        not_found(a.revoke_user_permission(bob, "experiment", "1")),
        "Permission for user=bob on resource_type=experiment, resource_id=1 not found."
    );
    not_found(a.revoke_user_permission(carol, "registered_model", "m"));
    invalid(a.revoke_user_permission(bob, "workspace", "*"));
    invalid(a.revoke_user_permission(bob, "nonsense", "1"));
    let left = a.permissions_of_user(bob).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].resource_pattern, "m");

    // Granting again after a revoke is fine; a change is revoke + grant.
    a.grant_user_permission(bob, "experiment", "1", Permission::Read)
        .unwrap();
    assert_eq!(a.roles_of_user(bob).unwrap().len(), 1);
}

fn resource_grants_follow_renames_and_deletes(f: &Fixture) {
    let a = f.store.auth();
    let bob = user(a, "bob");
    let carol = user(a, "carol");
    let admin_role = a.create_role("default", "model-owners", None).unwrap();
    a.add_role_permission(admin_role.id, "registered_model", "old", Permission::Manage)
        .unwrap();
    a.grant_user_permission(bob, "registered_model", "old", Permission::Manage)
        .unwrap();
    a.grant_user_permission(carol, "registered_model", "old", Permission::Read)
        .unwrap();
    // A stale grant on the new name collides with bob's renamed one.
    a.grant_user_permission(bob, "registered_model", "new", Permission::Deny)
        .unwrap();
    a.grant_user_permission(bob, "prompt", "old", Permission::Read)
        .unwrap();

    a.rename_resource_grants("registered_model", "old", "new")
        .unwrap();
    let on = |user: i64| -> Vec<(String, String, Permission)> {
        a.permissions_of_user(user)
            .unwrap()
            .into_iter()
            .filter(|p| p.role_name.starts_with("__user_"))
            .map(|p| (p.resource_type, p.resource_pattern, p.permission))
            .collect()
    };
    let mut bobs = on(bob);
    bobs.sort();
    assert_eq!(
        bobs,
        [
            ("prompt".into(), "old".into(), Permission::Read),
            ("registered_model".into(), "new".into(), Permission::Manage),
        ]
    );
    assert_eq!(
        on(carol),
        [("registered_model".into(), "new".into(), Permission::Read)]
    );
    let kept = &a.get_role(admin_role.id).unwrap().permissions[0];
    assert_eq!(
        kept.resource_pattern, "old",
        "admin-written roles keep their pattern"
    );

    a.delete_resource_grants("registered_model", "new").unwrap();
    assert_eq!(on(bob), [("prompt".into(), "old".into(), Permission::Read)]);
    assert!(on(carol).is_empty());
    assert_eq!(a.get_role(admin_role.id).unwrap().permissions.len(), 1);
    // Deleting what no one holds is no error.
    a.delete_resource_grants("registered_model", "gone")
        .unwrap();
}

fn tokens_are_stored_by_hash_and_revoked(f: &Fixture) {
    let a = f.store.auth();
    let bob = user(a, "bob");
    let carol = user(a, "carol");
    let first = a
        .create_token(&NewApiToken {
            scopes: vec!["worker".into()],
            expires_ms: Some(4_000_000_000_000),
            ..new_token(bob, "ci", "sha-1")
        })
        .unwrap();
    assert_eq!(first.user_id, bob);
    assert_eq!(first.name, "ci");
    assert_eq!(first.scopes, ["worker"]);
    assert_eq!(first.expires_ms, Some(4_000_000_000_000));
    assert_eq!(first.revoked_ms, None);
    assert!(first.created_ms > 0);
    let second = a.create_token(&new_token(bob, "laptop", "sha-2")).unwrap();
    assert!(second.scopes.is_empty());
    let msg = exists(a.create_token(&new_token(carol, "x", "sha-1")));
    assert!(!msg.contains("sha-1"), "{msg}");
    not_found(a.create_token(&new_token(bob + carol + 100, "x", "sha-3")));
    invalid(a.create_token(&new_token(bob, " ", "sha-4")));

    let (t, u) = a.token_by_hash("sha-1").unwrap();
    assert_eq!(t, first);
    assert_eq!(u.user.username, "bob");
    assert_eq!(u.password_hash, HASH);
    not_found(a.token_by_hash("sha-unknown"));

    let ids: Vec<i64> = a.list_tokens(bob).unwrap().iter().map(|t| t.id).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&first.id) && ids.contains(&second.id));
    let listed = a.list_tokens(bob).unwrap();
    assert!(listed[0].created_ms >= listed[1].created_ms, "newest first");
    assert!(a.list_tokens(carol).unwrap().is_empty());

    not_found(a.revoke_token(carol, first.id));
    assert_eq!(a.token_by_hash("sha-1").unwrap().0.revoked_ms, None);
    a.revoke_token(bob, first.id).unwrap();
    let revoked = a.token_by_hash("sha-1").unwrap().0.revoked_ms;
    assert!(revoked.is_some(), "a revoked token is still found, marked");
    a.revoke_token(bob, first.id).unwrap();
    assert_eq!(a.token_by_hash("sha-1").unwrap().0.revoked_ms, revoked);
    not_found(a.revoke_token(bob, first.id + second.id + 100));
}

const MINUTE_MS: i64 = 60_000;

/// A token's last use (V8): recorded on first use, then only once the
/// last recorded use is a minute old, whichever store handle (server)
/// asks; listed with the token.
fn a_tokens_use_is_recorded_at_most_once_a_minute(f: &Fixture) {
    let a = f.store.auth();
    let bob = user(a, "bob");
    let t = a.create_token(&new_token(bob, "ci", "sha-1")).unwrap();
    let other = a.create_token(&new_token(bob, "idle", "sha-2")).unwrap();
    assert_eq!(t.last_used_ms, None);
    let t0 = 1_700_000_000_000;
    assert!(a.record_token_use(t.id, t0, MINUTE_MS).unwrap());
    let last = |id: i64| {
        a.list_tokens(bob)
            .unwrap()
            .into_iter()
            .find(|t| t.id == id)
            .unwrap()
            .last_used_ms
    };
    assert_eq!(last(t.id), Some(t0));
    assert_eq!(a.token_by_hash("sha-1").unwrap().0.last_used_ms, Some(t0));
    // Another server of the same store, half a minute later: no write.
    let again = f.open_again();
    assert!(
        !again
            .auth()
            .record_token_use(t.id, t0 + MINUTE_MS / 2, MINUTE_MS)
            .unwrap()
    );
    assert_eq!(last(t.id), Some(t0));
    assert!(a.record_token_use(t.id, t0 + MINUTE_MS, MINUTE_MS).unwrap());
    assert_eq!(last(t.id), Some(t0 + MINUTE_MS));
    assert_eq!(last(other.id), None, "only the token used");
    // An unknown token writes nothing.
    assert!(
        !a.record_token_use(t.id + other.id + 100, t0, MINUTE_MS)
            .unwrap()
    );
}
