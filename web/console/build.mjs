// Bundles src/ into dist/: hashed assets under dist/assets (served at /console/) and an
// index.html that loads them, with no inline script or style (the console's CSP allows none).
import { build } from "esbuild";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";

const out = "dist";
await rm(out, { recursive: true, force: true });
const result = await build({
  entryPoints: ["src/main.jsx"],
  bundle: true,
  minify: true,
  sourcemap: false,
  format: "esm",
  target: ["chrome110", "firefox110", "safari16"],
  jsx: "automatic",
  jsxImportSource: "preact",
  entryNames: "[name]-[hash]",
  outdir: path.join(out, "assets"),
  metafile: true,
  legalComments: "linked",
  logLevel: "warning",
});
const outputs = Object.keys(result.metafile.outputs).map((file) => path.basename(file));
const script = outputs.find((name) => name.endsWith(".js"));
const style = outputs.find((name) => name.endsWith(".css"));
if (!script || !style) throw new Error(`the bundle lacks a script or a stylesheet: ${outputs}`);
const page = (await readFile("index.html", "utf8"))
  .replace("%SCRIPT%", `/console/${script}`)
  .replace("%STYLE%", `/console/${style}`);
await mkdir(out, { recursive: true });
await writeFile(path.join(out, "index.html"), page);
console.log(`built ${out}/index.html with ${outputs.join(", ")}`);
