// Bundles the console into dist/: one module for the browser and its style sheet.
import { build } from "esbuild";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";

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

// Compressed once here, so the hub serves them without compressing on every request.
for (const name of ["app.js", "app.css"]) {
  await writeFile(`dist/${name}.gz`, gzipSync(await readFile(`dist/${name}`), { level: 9 }));
}
