// Builds the sharing page into dist/ (served by the cloud's API at /share): src/page.js and everything it
// imports (Strophe.js, @noble/*) bundled into one share.js, with page/index.html and page/style.css beside it.
// Run with `npm run build` (scripts/setup.sh does) after `npm ci`.
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { build } from "esbuild";

const here = new URL(".", import.meta.url).pathname;
const dist = `${here}dist`;
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist);
await build({
  entryPoints: [`${here}src/page.js`],
  outfile: `${dist}/share.js`,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["chrome100", "edge100", "firefox100", "safari16"],
  minify: true,
  sourcemap: true,
  legalComments: "linked",
  logLevel: "warning",
});
for (const name of ["index.html", "style.css"]) copyFileSync(`${here}page/${name}`, `${dist}/${name}`);
