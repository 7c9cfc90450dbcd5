// The shell: navigation, the signed-in user, and which page the hash names.
import { useEffect, useState } from "preact/hooks";
import { setCsrfToken, v1, whenUnauthenticated } from "./api";
import { link, useLocation, type Location } from "./router";
import { Experiments } from "./pages/experiments";
import { ExperimentPage } from "./pages/runs";
import { RunPage } from "./pages/run";
import { ComparePage } from "./pages/compare";
import { ModelPage, ModelsPage, VersionPage } from "./pages/models";
import { PipelineRunPage, PipelinePage, PipelinesPage } from "./pages/pipelines";
import { EndpointPage, EndpointsPage } from "./pages/endpoints";
import { MonitorPage, MonitorRunPage, MonitorsPage } from "./pages/monitors";
import { EventsPage } from "./pages/events";
import { LoginPage, type Session } from "./pages/login";
import { AdminPage } from "./pages/admin";

const NAV: [string, string][] = [
  ["experiments", "Experiments"],
  ["models", "Models"],
  ["pipelines", "Pipelines"],
  ["endpoints", "Endpoints"],
  ["monitors", "Monitors"],
  ["events", "Events"],
];

function page(loc: Location, session: Session) {
  const [a, b, c, d, e] = loc.path;
  switch (a) {
    case undefined:
    case "experiments":
      if (!b) return <Experiments loc={loc} />;
      if (c === "runs" && d) return <RunPage runId={d} />;
      return <ExperimentPage loc={loc} id={b} />;
    case "runs":
      return b ? <RunPage runId={b} /> : <Experiments loc={loc} />;
    case "compare":
    case "compare-runs":
      return <ComparePage loc={loc} />;
    case "models":
      if (!b) return <ModelsPage loc={loc} />;
      if (c === "versions" && d) return <VersionPage name={b} version={d} />;
      return <ModelPage name={b} />;
    case "pipelines":
      return b ? <PipelinePage name={b} /> : <PipelinesPage />;
    case "pipeline-runs":
      return b ? <PipelineRunPage id={b} /> : <PipelinesPage />;
    case "endpoints":
      return b ? <EndpointPage name={b} /> : <EndpointsPage />;
    case "monitors":
      return b ? <MonitorPage name={b} /> : <MonitorsPage />;
    case "monitor-runs":
      return b ? <MonitorRunPage id={b} /> : <MonitorsPage />;
    case "events":
      return <EventsPage loc={loc} />;
    case "admin":
      return <AdminPage tab={b ?? "users"} session={session} />;
    default:
      return (
        <p role="alert">
          No page at <code>#/{[a, b, c, d, e].filter(Boolean).join("/")}</code>. <a href={link("")}>Go to the experiments.</a>
        </p>
      );
  }
}

export function App() {
  const loc = useLocation();
  const [session, setSession] = useState<Session | null>(null);
  const [needLogin, setNeedLogin] = useState(false);
  useEffect(() => {
    whenUnauthenticated(() => setNeedLogin(true));
    v1.get<Session>("session").then(
      (s) => {
        setCsrfToken(s.csrf_token ?? null);
        setSession(s);
      },
      () => setNeedLogin(true),
    );
  }, []);
  if (needLogin)
    return (
      <LoginPage
        onLogin={(s) => {
          setCsrfToken(s.csrf_token ?? null);
          setSession(s);
          setNeedLogin(false);
        }}
      />
    );
  if (!session) return <p class="muted">Loading…</p>;
  const top = loc.path[0] ?? "experiments";
  const section = top === "runs" || top === "compare" || top === "compare-runs" ? "experiments" : top.replace(/-runs$/, "s");
  return (
    <>
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById("main")?.focus())}>
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href={link("")}>
          Sextant
        </a>
        <nav aria-label="sections">
          {NAV.map(([key, label]) => (
            <a key={key} href={link(key)} aria-current={section === key ? "page" : undefined}>
              {label}
            </a>
          ))}
          {session.user?.is_admin && (
            <a href={link("admin")} aria-current={section === "admin" ? "page" : undefined}>
              Admin
            </a>
          )}
        </nav>
        {session.user && <UserMenu session={session} />}
      </header>
      <main id="main" tabIndex={-1}>
        {page(loc, session)}
      </main>
    </>
  );
}

function UserMenu({ session }: { session: Session }) {
  return (
    <div class="user">
      <span>
        {session.user?.username}
        {session.user?.is_admin ? " (admin)" : ""}
      </span>
      {session.method === "session" && (
        <button
          type="button"
          onClick={async () => {
            await v1.del("session");
            setCsrfToken(null);
            window.location.reload();
          }}
        >
          Sign out
        </button>
      )}
    </div>
  );
}
