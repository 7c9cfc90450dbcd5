// The login page of a server with authentication on: a session cookie (HttpOnly,
// SameSite=Strict) from `POST /api/v1/session`, and a CSRF token for every change after.
import { useState } from "preact/hooks";
import { v1 } from "../api";
import { ErrorBox } from "../ui";

export interface Session {
  auth: boolean;
  method: "none" | "basic" | "token" | "session";
  user?: { username: string; is_admin: boolean } | null;
  csrf_token?: string | null;
  expires_time?: number | null;
}

export function LoginPage({ onLogin }: { onLogin: (s: Session) => void }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  return (
    <main id="main" class="login">
      <h1>Sign in to Sextant</h1>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(undefined);
          try {
            onLogin(await v1.post<Session>("session", { username, password }));
          } catch (err) {
            setError(err);
          } finally {
            setBusy(false);
          }
        }}
      >
        <label class="block">
          User name
          <input name="username" autoComplete="username" required value={username} onInput={(e) => setUsername((e.target as HTMLInputElement).value)} />
        </label>
        <label class="block">
          Password
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
          />
        </label>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
        {error !== undefined && <ErrorBox error={error} />}
      </form>
    </main>
  );
}
