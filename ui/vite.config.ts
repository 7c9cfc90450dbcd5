import { defineConfig } from "vite";

// The bundle is embedded into the `sextant` binary (crates/sextant-ui) and served under
// `/static/ui/`, a prefix no API uses; `index.html` itself is served at `/`.
export default defineConfig({
  base: "/static/ui/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: process.env.SEXTANT_UI_OUT ?? "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    target: "es2022",
    reportCompressedSize: false,
  },
  server: { proxy: { "/api": "http://127.0.0.1:5000", "/ajax-api": "http://127.0.0.1:5000", "/get-artifact": "http://127.0.0.1:5000" } },
});
