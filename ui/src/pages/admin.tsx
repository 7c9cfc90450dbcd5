// Admin pages (authentication on): users, API tokens and the audit log.
import { useState } from "preact/hooks";
import { mlflow, v1 } from "../api";
import { link } from "../router";
import { ActionButton, Empty, Loaded, Section, Time, useAsync } from "../ui";
import type { Session } from "./login";

const TABS: [string, string][] = [
  ["users", "Users"],
  ["tokens", "Tokens"],
  ["audit", "Audit log"],
];

export function AdminPage({ tab, session }: { tab: string; session: Session }) {
  if (!session.auth) return <Empty>Authentication is off on this server: there are no users, tokens or audit log to manage. Start it with <code>--auth</code>.</Empty>;
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
      {tab === "tokens" ? <Tokens /> : tab === "audit" ? <Audit /> : <Users />}
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
                      <td>{r.resource ?? "—"}</td>
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
