// Bundles the console into dist/: one module for the browser and its style sheet.
import { build } from "esbuild";
import { copyFile, mkdir } from "node:fs/promises";

await mkdir("dist", { recursive: true });
await build({
  entryPoints: ["src/main.jsx"],
  bundle: true,
  format: "esm",
  target: ["es2020"],
  minify: true,
  sourcemap: true,
  jsx: "automatic",
  jsxImportSource: "preact",
  outfile: "dist/app.js",
  logLevel: "warning",
});
await build({ entryPoints: ["src/style.css"], bundle: true, minify: true, outfile: "dist/app.css", logLevel: "warning" });
