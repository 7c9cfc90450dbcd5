// The events feed, live: the latest events, then a long-poll for the next ones. Filter by
// kind (on the server) and by the resource an event is about (its subject).
import { useEffect, useState } from "preact/hooks";
import { v1 } from "../api";
import { replaceQuery, type Location } from "../router";
import { ErrorBox, Time } from "../ui";

export interface Event {
  id: number;
  time: number;
  kind: string;
  subject: string;
  actor?: string | null;
  payload: Record<string, unknown>;
}
interface EventPage {
  events: Event[];
  cursor: number;
  has_more: boolean;
}

const SHOWN = 500;

export function EventsPage({ loc }: { loc: Location }) {
  const kinds = loc.query.get("kinds") ?? "";
  const subject = loc.query.get("subject") ?? "";
  const [kindText, setKindText] = useState(kinds);
  const [subjectText, setSubjectText] = useState(subject);
  const [events, setEvents] = useState<Event[]>([]);
  const [error, setError] = useState<unknown>();
  const [live, setLive] = useState(false);
  useEffect(() => {
    const ctl = new AbortController();
    setEvents([]);
    setError(undefined);
    (async () => {
      try {
        const head = await v1.get<EventPage>("events", { after: "latest" }, ctl.signal);
        let cursor = Math.max(0, head.cursor - SHOWN);
        // Catch up to the head, then wait for what comes next.
        for (;;) {
          const page = await v1.get<EventPage>("events", { after: cursor, kinds: kinds || undefined, limit: 1000, wait: cursor >= head.cursor ? 25 : 0 }, ctl.signal);
          if (ctl.signal.aborted) return;
          cursor = page.cursor;
          if (page.events.length) setEvents((old) => [...page.events.reverse(), ...old].slice(0, SHOWN));
          setLive(cursor >= head.cursor);
        }
      } catch (e) {
        if (!ctl.signal.aborted) setError(e);
      }
    })();
    return () => ctl.abort();
  }, [kinds]);
  const shown = subject ? events.filter((e) => e.subject.includes(subject)) : events;
  return (
    <>
      <h1>Events</h1>
      <form
        class="toolbar"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          replaceQuery(loc, { kinds: kindText.trim(), subject: subjectText.trim() });
        }}
      >
        <label>
          Kinds <input placeholder="model_version.approved,monitor.*" value={kindText} onInput={(e) => setKindText((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          Resource contains <input value={subjectText} onInput={(e) => setSubjectText((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit">Filter</button>
        <span role="status" class="muted">
          {live ? "live: new events appear as they happen" : "loading…"}
        </span>
      </form>
      {error !== undefined && <ErrorBox error={error} />}
      {!shown.length && live ? (
        <p class="muted">No events{kinds || subject ? " match this filter" : ""}.</p>
      ) : (
        <table class="grid events">
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">Time</th>
              <th scope="col">Kind</th>
              <th scope="col">Resource</th>
              <th scope="col">Actor</th>
              <th scope="col">Payload</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((e) => (
              <tr key={e.id}>
                <td class="num">{e.id}</td>
                <td>
                  <Time ms={e.time} />
                </td>
                <td>{e.kind}</td>
                <td class="mono">{e.subject}</td>
                <td>{e.actor ?? "—"}</td>
                <td class="mono payload">{JSON.stringify(e.payload)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
