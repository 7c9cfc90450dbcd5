// Admin pages (authentication on): users, API tokens and the audit log.
import { useState } from "preact/hooks";
import { mlflow, mlflow3, v1 } from "../api";
import { link } from "../router";
import { ActionButton, Empty, Loaded, Section, Time, useAsync } from "../ui";
import type { Session } from "./login";

const TABS: [string, string][] = [
  ["users", "Users"],
  ["roles", "Roles"],
  ["tokens", "Tokens"],
  ["audit", "Audit log"],
];

export function AdminPage({ tab, session }: { tab: string; session: Session }) {
  if (!session.auth) return <Empty>Authentication is off on this server: there are no users, tokens or audit log to manage. Start it with <code>--auth</code>.</Empty>;
  if (!session.user?.is_admin) return <Empty>The admin pages are for admins; ask one to grant what you need.</Empty>;
  return (
    <>
      <h1>Admin</h1>
      <nav class="tabs" aria-label="admin">
        {TABS.map(([k, label]) => (
          <a key={k} href={link("admin", k)} aria-current={tab === k ? "page" : undefined}>
            {label}
          </a>
        ))}
      </nav>
      {tab === "tokens" ? <Tokens /> : tab === "audit" ? <Audit /> : tab === "roles" ? <Roles /> : <Users />}
    </>
  );
}

interface User {
  id?: number;
  username: string;
  is_admin: boolean;
}

function Users() {
  const state = useAsync((signal) => mlflow.get<{ users?: User[] }>("users/list", undefined, signal), []);
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  return (
    <>
      <Section title="Users">
        <Loaded state={state}>
          {(d) => (
            <table class="grid">
              <thead>
                <tr>
                  <th scope="col">User</th>
                  <th scope="col">Admin</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {(d.users ?? []).map((u) => (
                  <tr key={u.username}>
                    <td>{u.username}</td>
                    <td>{u.is_admin ? "yes" : "no"}</td>
                    <td>
                      <ActionButton
                        label={u.is_admin ? "Revoke admin" : "Make admin"}
                        run={() => mlflow.patch("users/update-admin", { username: u.username, is_admin: !u.is_admin }).then(state.reload)}
                      />
                      <ActionButton label="Delete" kind="danger" confirm={`Delete user ${u.username}?`} run={() => deleteUser(u.username).then(state.reload)} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Loaded>
      </Section>
      <Section title="New user">
        <div class="toolbar">
          <label>
            User name <input value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
          </label>
          <label>
            Password <input type="password" autoComplete="new-password" value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />
          </label>
          <ActionButton
            label="Create"
            kind="primary"
            run={() =>
              mlflow.post("users/create", { username: name, password }).then(() => {
                setName("");
                setPassword("");
                state.reload();
              })
            }
          />
        </div>
      </Section>
    </>
  );
}

function deleteUser(username: string) {
  return mlflow.del("users/delete", { username });
}

interface Token {
  id: number;
  name: string;
  scopes: string[];
  created_time: number;
  expires_time?: number | null;
  revoked_time?: number | null;
  /** When it last authenticated a request, to within a minute. */
  last_used_time?: number | null;
}

function Tokens() {
  const state = useAsync((signal) => v1.get<{ tokens: Token[] }>("tokens", undefined, signal), []);
  const [name, setName] = useState("");
  const [secret, setSecret] = useState<string>();
  return (
    <>
      <Section title="Your API tokens">
        <Loaded state={state}>
          {(d) =>
            !d.tokens.length ? (
              <p class="muted">No tokens.</p>
            ) : (
              <table class="grid">
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    <th scope="col">Scopes</th>
                    <th scope="col">Created</th>
                    <th scope="col">Expires</th>
                    <th scope="col">Last used</th>
                    <th scope="col">Actions</th>
                  </tr>
                </thead>
                <tbody>
                  {d.tokens.map((t) => (
                    <tr key={t.id}>
                      <td>{t.name}</td>
                      <td>{t.scopes.length ? t.scopes.join(", ") : "all of yours"}</td>
                      <td>
                        <Time ms={t.created_time} />
                      </td>
                      <td>
                        <Time ms={t.expires_time} />
                      </td>
                      <td>{t.last_used_time ? <Time ms={t.last_used_time} /> : <span class="muted">never</span>}</td>
                      <td>
                        {t.revoked_time ? (
                          <>
                            revoked <Time ms={t.revoked_time} />
                          </>
                        ) : (
                          <ActionButton label="Revoke" kind="danger" confirm={`Revoke token ${t.name}?`} run={() => v1.del(`tokens/${t.id}`).then(state.reload)} />
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )
          }
        </Loaded>
      </Section>
      <Section title="New token">
        <div class="toolbar">
          <label>
            Name <input value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
          </label>
          <ActionButton
            label="Create"
            kind="primary"
            run={() =>
              v1.post<{ token: { token: string } }>("tokens", { name }).then((t) => {
                setSecret(t.token.token);
                setName("");
                state.reload();
              })
            }
          />
        </div>
        {secret && (
          <p role="status">
            The new token (shown once): <code class="mono">{secret}</code>
          </p>
        )}
      </Section>
    </>
  );
}

interface AuditRow {
  seq: number;
  time_ms: number;
  actor?: string | null;
  auth_method?: string | null;
  source?: string | null;
  method: string;
  route: string;
  resource?: string | null;
  status: number;
  count: number;
  /** What the row records beyond its request: login, token.create, permission.grant, … */
  action?: string | null;
}
interface AuditReport {
  ok: boolean;
  rows: number;
  sealed: number;
  unsealed_tail: number;
  first_bad?: { seq: number; reason: string } | null;
  head?: { seq: number; hash: string } | null;
}

const AUDIT_SHOWN = 200;

function Audit() {
  // The report's head says where the chain ends: the page shown is its last rows.
  const state = useAsync(async (signal) => {
    const report = await v1.get<AuditReport>("audit/verify", undefined, signal);
    const last = (report.head?.seq ?? 0) + report.unsealed_tail;
    const page = await v1.get<{ rows: AuditRow[] }>("audit", { after: Math.max(0, last - AUDIT_SHOWN), limit: AUDIT_SHOWN + 50 }, signal);
    return { report, rows: [...page.rows].reverse() };
  }, []);
  return (
    <Loaded state={state}>
      {({ report, rows }) => (
        <>
          <Section title="Chain">
            <p role="status" class={report.ok ? undefined : "error"}>
              {report.ok
                ? `Intact: ${report.rows} rows, ${report.sealed} sealed, ${report.unsealed_tail} waiting for the sealer.`
                : `Broken at row ${report.first_bad?.seq}: ${report.first_bad?.reason}`}
            </p>
            {report.head && (
              <p class="muted">
                Head: row {report.head.seq}, <span class="mono">{report.head.hash}</span>
              </p>
            )}
          </Section>
          <Section title="Latest entries">
            {!rows.length ? (
              <p class="muted">The audit log is empty.</p>
            ) : (
              <table class="grid">
                <thead>
                  <tr>
                    <th scope="col">#</th>
                    <th scope="col">Time</th>
                    <th scope="col">Actor</th>
                    <th scope="col">Request</th>
                    <th scope="col">Resource</th>
                    <th scope="col">Status</th>
                    <th scope="col">Source</th>
                  </tr>
                </thead>
                <tbody>
                  {rows.map((r) => (
                    <tr key={r.seq}>
                      <td class="num">{r.seq}</td>
                      <td>
                        <Time ms={r.time_ms} />
                      </td>
                      <td>
                        {r.actor ?? "anonymous"}
                        {r.auth_method ? ` (${r.auth_method})` : ""}
                      </td>
                      <td class="mono">
                        {r.method} {r.route}
                        {r.count > 1 ? ` ×${r.count}` : ""}
                      </td>
                      <td>
                        {r.action ? <strong>{r.action} </strong> : null}
                        {r.resource ?? (r.action ? "" : "—")}
                      </td>
                      <td class="num">{r.status}</td>
                      <td class="mono">{r.source ?? "—"}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </Section>
        </>
      )}
    </Loaded>
  );
}

interface Grant {
  id?: number;
  resource_type: string;
  resource_pattern: string;
  permission: string;
}
interface Role {
  id: number;
  name: string;
  description?: string | null;
  permissions: Grant[];
}

/** What a role may name: MLflow's resource types and Sextant's own. */
const RESOURCE_TYPES = ["experiment", "registered_model", "registered_model_version", "run", "logged_model", "pipeline", "endpoint", "monitor", "webhook", "workspace"];
const LEVELS = ["READ", "USE", "EDIT", "MANAGE", "DENY", "NO_PERMISSIONS"];

function Roles() {
  const state = useAsync((signal) => mlflow3.get<{ roles?: Role[] }>("roles/list", undefined, signal), []);
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  return (
    <>
      <Section title="Roles">
        <Loaded state={state}>
          {(d) =>
            !d.roles?.length ? (
              <p class="muted">No roles yet.</p>
            ) : (
              <>
                {d.roles.map((r) => (
                  <RoleCard key={r.id} role={r} onChange={state.reload} />
                ))}
              </>
            )
          }
        </Loaded>
      </Section>
      <Section title="New role">
        <div class="toolbar">
          <label>
            Role name <input value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
          </label>
          <label>
            Description <input value={description} onInput={(e) => setDescription((e.target as HTMLInputElement).value)} />
          </label>
          <ActionButton
            label="Create role"
            kind="primary"
            run={() =>
              mlflow3.post("roles/create", { name, description: description || undefined }).then(() => {
                setName("");
                setDescription("");
                state.reload();
              })
            }
          />
        </div>
      </Section>
    </>
  );
}

function RoleCard({ role, onChange }: { role: Role; onChange: () => void }) {
  const [kind, setKind] = useState(RESOURCE_TYPES[0]);
  const [pattern, setPattern] = useState("*");
  const [level, setLevel] = useState("READ");
  const [user, setUser] = useState("");
  // MLflow answers a role's assignments by user id; the names come from the user list.
  const members = useAsync(async (signal) => {
    const [a, u] = await Promise.all([
      mlflow3.get<{ assignments?: { user_id: number }[] }>("roles/users/list", { role_id: role.id }, signal),
      mlflow.get<{ users?: User[] }>("users/list", undefined, signal),
    ]);
    const names = new Map((u.users ?? []).map((x) => [x.id, x.username]));
    return (a.assignments ?? []).map((x) => names.get(x.user_id) ?? `user ${x.user_id}`);
  }, [role.id]);
  return (
    <section class="card" aria-label={`role ${role.name}`}>
      <h3>
        {role.name} {role.description ? <span class="muted">— {role.description}</span> : null}
      </h3>
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Resource type</th>
            <th scope="col">Pattern</th>
            <th scope="col">Permission</th>
          </tr>
        </thead>
        <tbody>
          {role.permissions.map((p, i) => (
            <tr key={i}>
              <td>{p.resource_type}</td>
              <td class="mono">{p.resource_pattern}</td>
              <td>{p.permission}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <div class="toolbar">
        <label>
          Resource type{" "}
          <select value={kind} onChange={(e) => setKind((e.target as HTMLSelectElement).value)}>
            {RESOURCE_TYPES.map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
        </label>
        <label>
          Pattern <input class="mono" value={pattern} onInput={(e) => setPattern((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          Permission{" "}
          <select value={level} onChange={(e) => setLevel((e.target as HTMLSelectElement).value)}>
            {LEVELS.map((l) => (
              <option key={l}>{l}</option>
            ))}
          </select>
        </label>
        <ActionButton
          label="Add permission"
          run={() => mlflow3.post("roles/permissions/add", { role_id: role.id, resource_type: kind, resource_pattern: pattern, permission: level }).then(onChange)}
        />
      </div>
      <Loaded state={members}>
        {(m) => <p>Members: {m.length ? m.join(", ") : <span class="muted">none</span>}</p>}
      </Loaded>
      <div class="toolbar">
        <label>
          Assign to user <input value={user} onInput={(e) => setUser((e.target as HTMLInputElement).value)} />
        </label>
        <ActionButton label="Assign" run={() => mlflow3.post("roles/assign", { username: user, role_id: role.id }).then(members.reload)} />
      </div>
    </section>
  );
}
