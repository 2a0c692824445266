// Checks Grafana dashboard files against the JSON Schema generated from @grafana/schema's
// `Dashboard` type (see dashboard-schema.mjs): unknown keys, wrong types, missing panel geometry.
//   node tests/grafana/check-dashboard.mjs [file...]   (default: monitoring/grafana/tickwire.json)
// Prints one line per problem, naming the file and the JSON pointer; exits 1 if any file has one.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { VERSIONS, check, compile } from "./dashboard-schema.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
const files = process.argv.slice(2);
if (files.length === 0) files.push(join(ROOT, "monitoring/grafana/tickwire.json"));

const validate = compile();
let failed = 0;
for (const file of files) {
  let problems;
  try {
    problems = check(validate, JSON.parse(readFileSync(file, "utf8")));
  } catch (e) {
    problems = [`not a JSON file: ${e.message}`];
  }
  if (problems.length === 0) {
    console.log(`${file}: a valid Grafana dashboard (@grafana/schema ${VERSIONS.grafanaSchema})`);
    continue;
  }
  failed += 1;
  const against = `@grafana/schema ${VERSIONS.grafanaSchema}'s Dashboard`;
  console.error(`${file}: ${problems.length} problem(s) against ${against}:`);
  for (const p of problems) console.error(`  ${p}`);
}
process.exit(failed === 0 ? 0 : 1);
