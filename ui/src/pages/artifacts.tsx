// A run's artifact browser: a lazily expanded tree and a preview of the chosen file (text,
// JSON, YAML, CSV as a table, images, HTML in a sandboxed frame, MLmodel with its signature).
import { useState } from "preact/hooks";
import { artifactUrl, fetchText, mlflow, type FileInfo } from "../api";
import { Loaded, useAsync } from "../ui";

function list(runId: string, path: string, signal: AbortSignal) {
  return mlflow.get<{ files?: FileInfo[] }>("artifacts/list", { run_id: runId, path: path || undefined }, signal);
}

export function Artifacts({ runId }: { runId: string }) {
  const [chosen, setChosen] = useState<FileInfo>();
  return (
    <div class="artifacts">
      <nav class="tree" aria-label="artifacts">
        <Folder runId={runId} path="" chosen={chosen?.path} onChoose={setChosen} />
      </nav>
      <div class="preview">{chosen ? <Preview runId={runId} file={chosen} /> : <p class="muted">Choose a file to preview it.</p>}</div>
    </div>
  );
}

function Folder({ runId, path, chosen, onChoose }: { runId: string; path: string; chosen?: string; onChoose: (f: FileInfo) => void }) {
  const state = useAsync((signal) => list(runId, path, signal), [runId, path]);
  return (
    <Loaded state={state}>
      {(d) =>
        !d.files?.length && !path ? (
          <p class="muted">No artifacts.</p>
        ) : (
          <ul>
            {(d.files ?? []).map((f) => (f.is_dir ? <Dir key={f.path} runId={runId} file={f} chosen={chosen} onChoose={onChoose} /> : <File key={f.path} file={f} chosen={chosen} onChoose={onChoose} />))}
          </ul>
        )
      }
    </Loaded>
  );
}

function basename(path: string) {
  return path.split("/").pop() ?? path;
}

function Dir({ runId, file, chosen, onChoose }: { runId: string; file: FileInfo; chosen?: string; onChoose: (f: FileInfo) => void }) {
  const [open, setOpen] = useState(false);
  return (
    <li>
      <button type="button" class="link" aria-expanded={open} onClick={() => setOpen(!open)}>
        {open ? "▾" : "▸"} {basename(file.path)}/
      </button>
      {open && <Folder runId={runId} path={file.path} chosen={chosen} onChoose={onChoose} />}
    </li>
  );
}

function File({ file, chosen, onChoose }: { file: FileInfo; chosen?: string; onChoose: (f: FileInfo) => void }) {
  return (
    <li>
      <button type="button" class={`link${chosen === file.path ? " current" : ""}`} aria-current={chosen === file.path ? "true" : undefined} onClick={() => onChoose(file)}>
        {basename(file.path)}
      </button>{" "}
      <span class="muted">{size(file.file_size)}</span>
    </li>
  );
}

function size(n?: number | string): string {
  const b = Number(n ?? 0);
  if (!b) return "";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  let v = b;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i ? v.toFixed(1) : v} ${units[i]}`;
}

const IMAGE = /\.(png|jpe?g|gif|webp|svg|bmp)$/i;
const TEXT = /(\.(txt|log|py|md|yaml|yml|json|csv|tsv|toml|ini|cfg|sh|sql|r|ts|js|html?)|^MLmodel|requirements\.txt|Dockerfile)$/i;

function Preview({ runId, file }: { runId: string; file: FileInfo }) {
  const url = artifactUrl(runId, file.path);
  const name = basename(file.path);
  const download = (
    <a class="button" href={url} download={name}>
      Download {name}
    </a>
  );
  if (IMAGE.test(name)) {
    return (
      <>
        {download}
        <img src={url} alt={file.path} class="artifact-image" />
      </>
    );
  }
  if (/\.html?$/i.test(name)) {
    // No `allow-scripts`, no `allow-same-origin`: the page cannot act as the user.
    return (
      <>
        {download}
        <iframe sandbox="" src={url} title={file.path} class="artifact-frame" />
      </>
    );
  }
  if (!TEXT.test(name)) return <>{download}<p class="muted">No preview for this kind of file.</p></>;
  return (
    <>
      {download}
      <TextPreview url={url} name={name} />
    </>
  );
}

function TextPreview({ url, name }: { url: string; name: string }) {
  const state = useAsync(() => fetchText(url), [url]);
  return (
    <Loaded state={state}>
      {({ text, truncated }) => (
        <>
          {truncated && <p class="muted">Showing the first megabyte.</p>}
          {/\.(csv|tsv)$/i.test(name) ? (
            <CsvTable text={text} sep={/\.tsv$/i.test(name) ? "\t" : ","} />
          ) : name === "MLmodel" ? (
            <MlModel text={text} />
          ) : /\.json$/i.test(name) ? (
            <pre class="code" tabIndex={0}>{pretty(text)}</pre>
          ) : (
            <pre class="code" tabIndex={0}>{text}</pre>
          )}
        </>
      )}
    </Loaded>
  );
}

function pretty(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** RFC 4180 fields: quotes, doubled quotes and separators inside quotes. */
export function parseCsv(text: string, sep: string, maxRows: number): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length && rows.length < maxRows; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === sep) {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else field += c;
  }
  if ((field || row.length) && rows.length < maxRows) rows.push([...row, field]);
  return rows;
}

function CsvTable({ text, sep }: { text: string; sep: string }) {
  const rows = parseCsv(text, sep, 501);
  if (!rows.length) return <p class="muted">Empty file.</p>;
  const [head, ...body] = rows;
  return (
    <div class="scroll" tabIndex={0}>
      {rows.length > 500 && <p class="muted">Showing the first 500 rows.</p>}
      <table class="grid">
        <thead>
          <tr>
            {head.map((h, i) => (
              <th scope="col" key={i}>
                {h}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {body.slice(0, 499).map((r, i) => (
            <tr key={i}>
              {r.map((v, j) => (
                <td key={j}>{v}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

interface Column {
  name?: string;
  type?: string;
  tensor_spec?: { dtype?: string; shape?: number[] };
}

/** The `signature:` block of an MLmodel file: `inputs: '[…json…]'`, `outputs: '…'`. */
export function signature(text: string): { inputs?: Column[]; outputs?: Column[] } {
  const out: { inputs?: Column[]; outputs?: Column[] } = {};
  const block = text.split(/^signature:\s*$/m)[1];
  if (!block) return out;
  for (const which of ["inputs", "outputs"] as const) {
    const m = block.match(new RegExp(`^\\s+${which}:\\s*'(.*)'\\s*$`, "m"));
    if (!m) continue;
    try {
      out[which] = JSON.parse(m[1].replace(/''/g, "'"));
    } catch {
      // a signature this reader does not understand: the raw file is shown below anyway
    }
  }
  return out;
}

function MlModel({ text }: { text: string }) {
  const sig = signature(text);
  const cols = (c?: Column[]) =>
    c?.length ? (
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Type</th>
          </tr>
        </thead>
        <tbody>
          {c.map((x, i) => (
            <tr key={i}>
              <td>{x.name ?? "—"}</td>
              <td class="mono">{x.type === "tensor" ? `tensor ${x.tensor_spec?.dtype ?? ""} ${JSON.stringify(x.tensor_spec?.shape ?? [])}` : x.type}</td>
            </tr>
          ))}
        </tbody>
      </table>
    ) : (
      <p class="muted">None.</p>
    );
  return (
    <>
      <h3>Signature inputs</h3>
      {cols(sig.inputs)}
      <h3>Signature outputs</h3>
      {cols(sig.outputs)}
      <h3>MLmodel</h3>
      <pre class="code" tabIndex={0}>{text}</pre>
    </>
  );
}
