// Gzips every file of the bundle next to itself (`x.js` → `x.js.gz`), once at build time, so
// the server answers `Accept-Encoding: gzip` without compressing per request.
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync, constants } from "node:zlib";

const root = process.env.SEXTANT_UI_OUT ?? "dist";
let raw = 0;
let packed = 0;
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (!name.endsWith(".gz")) {
      const bytes = readFileSync(path);
      const gz = gzipSync(bytes, { level: constants.Z_BEST_COMPRESSION });
      if (/\.(js|css)$/.test(name)) {
        raw += bytes.length;
        packed += gz.length;
      }
      if (gz.length < bytes.length) writeFileSync(`${path}.gz`, gz);
    }
  }
}
walk(root);
console.log(`sextant-ui: JavaScript and CSS ${(raw / 1024).toFixed(1)} KiB, gzipped ${(packed / 1024).toFixed(1)} KiB`);
