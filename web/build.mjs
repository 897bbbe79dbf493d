// Builds the dashboard into the API's static folder (git-ignored): one ES module bundle,
// MapLibre's worker beside it (MapLibre finds it next to the module that loads it), the CSS
// and the page. Nothing is fetched at run time from anywhere but the API.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { createHash } from "node:crypto";

const out = "../src/fleetlink/api/static/dashboard";
const assets = `${out}/assets`;
rmSync(out, { recursive: true, force: true });
mkdirSync(assets, { recursive: true });

await build({
  entryPoints: ["src/main.ts"],
  bundle: true,
  format: "esm",
  minify: true,
  sourcemap: false,
  target: "es2022",
  outfile: `${assets}/main.js`,
  logLevel: "warning",
});
const maplibre = "node_modules/maplibre-gl/dist";
copyFileSync(`${maplibre}/maplibre-gl-worker.mjs`, `${assets}/maplibre-gl-worker.mjs`);
copyFileSync(`${maplibre}/maplibre-gl.css`, `${assets}/maplibre-gl.css`);
copyFileSync("src/style.css", `${assets}/style.css`);

// the page names its assets with a content hash, so a browser never mixes two builds
const version = createHash("sha256").update(readFileSync(`${assets}/main.js`)).digest("hex").slice(0, 12);
const page = readFileSync("src/index.html", "utf8").replaceAll("{{version}}", version);
writeFileSync(`${out}/index.html`, page);
console.log(`dashboard built: ${out} (${version})`);
