// Tests of the Grafana dashboard check (scripts/test runs `node --test` on this file): the shipped
// monitoring/grafana/tickwire.json passes, and broken copies of it are rejected, each with a
// message naming the JSON pointer of what is wrong; the command-line checker exits 1 on them.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { check, compile, generatedSchema } from "./dashboard-schema.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const DASHBOARD = join(HERE, "../../monitoring/grafana/tickwire.json");
const CHECKER = join(HERE, "check-dashboard.mjs");
const shipped = JSON.parse(readFileSync(DASHBOARD, "utf8"));

// Where the broken copies make their change: a panel on the grid, and a collapsed row holding
// panels (so panels nested in rows are checked too, not only those at the top level).
const panelAt = shipped.panels.findIndex((p) => p.type !== "row" && p.description && p.fieldConfig?.defaults);
const rowAt = shipped.panels.findIndex((p) => p.type === "row" && p.collapsed && p.panels?.length > 0);
const panelTitle = shipped.panels[panelAt].title;
const rowTitle = shipped.panels[rowAt].title;
const nestedTitle = shipped.panels[rowAt].panels[0].title;

/// Each broken copy: what it changes, and exactly the problems the check must report.
const BROKEN = {
  "misspelled top-level key": [(d) => renameKey(d, "title", "titel"), ['(top level): unknown key "titel"']],
  "misspelled panel key": [
    (d) => renameKey(d.panels[panelAt], "description", "descripton"),
    [`/panels/${panelAt} (panel "${panelTitle}"): unknown key "descripton"`],
  ],
  "misspelled key deep in a panel": [
    (d) => (d.panels[panelAt].fieldConfig.defaults.unti = "s"),
    [`/panels/${panelAt}/fieldConfig/defaults (panel "${panelTitle}"): unknown key "unti"`],
  ],
  "panel without gridPos": [
    (d) => delete d.panels[panelAt].gridPos,
    [`/panels/${panelAt} (panel "${panelTitle}"): missing required key "gridPos"`],
  ],
  "panel without type (checked as a panel, not a row)": [
    (d) => delete d.panels[panelAt].type,
    [`/panels/${panelAt} (panel "${panelTitle}"): missing required key "type"`],
  ],
  "row without gridPos": [
    (d) => delete d.panels[rowAt].gridPos,
    [`/panels/${rowAt} (panel "${rowTitle}"): missing required key "gridPos"`],
  ],
  "panel in a collapsed row without gridPos": [
    (d) => delete d.panels[rowAt].panels[0].gridPos,
    [`/panels/${rowAt}/panels/0 (panel "${nestedTitle}"): missing required key "gridPos"`],
  ],
  "row inside a row": [
    (d) => (d.panels[rowAt].panels[0].type = "row"),
    [`/panels/${rowAt}/panels/0/type (panel "${nestedTitle}"): must not be "row"`],
  ],
  "schemaVersion as a string": [
    (d) => (d.schemaVersion = String(d.schemaVersion)),
    [`/schemaVersion: must be number, got "${shipped.schemaVersion}"`],
  ],
  "value outside an enum": [(d) => (d.graphTooltip = 5), ["/graphTooltip: must be one of [1,0,2], got 5"]],
  "misspelled variable key": [
    (d) => renameKey(d.templating.list[0], "multi", "multii"),
    ['/templating/list/0: unknown key "multii"'],
  ],
  "misspelled export-only key": [
    (d) => renameKey(d.__inputs[0], "pluginId", "pluginid"),
    ['/__inputs/0: missing required key "pluginId"', '/__inputs/0: unknown key "pluginid"'],
  ],
};

function renameKey(object, from, to) {
  assert.ok(from in object, `the shipped dashboard has no ${from} here`);
  object[to] = object[from];
  delete object[from];
}

function broken(change) {
  const copy = structuredClone(shipped);
  change(copy);
  return copy;
}

let validate;
let dir;
before(() => {
  validate = compile();
  dir = mkdtempSync(join(tmpdir(), "tickwire-grafana-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test("the shipped dashboard is valid against @grafana/schema's Dashboard", () => {
  assert.deepEqual(check(validate, shipped), []);
});

test("the places the broken copies change exist: a panel with fieldConfig, a collapsed row with panels", () => {
  assert.ok(panelAt >= 0 && rowAt >= 0, `panel at ${panelAt}, collapsed row at ${rowAt}`);
});

for (const [name, [change, expected]] of Object.entries(BROKEN)) {
  test(`rejected: ${name}`, () => {
    assert.deepEqual(check(validate, broken(change)), expected);
  });
}

test("gridPos is required by our tightening, not by Grafana's type (drop the tightening if that changes)", () => {
  const branches = generatedSchema().definitions.Dashboard.properties.panels.items.anyOf;
  for (const b of branches) assert.ok(!(b.required ?? []).includes("gridPos"), JSON.stringify(b.required));
});

test("the command-line check passes the shipped file and exits 1 on broken copies, naming file and path", async () => {
  const run = promisify(execFile);
  const ok = await run(process.execPath, [CHECKER, DASHBOARD]);
  assert.match(ok.stdout, /a valid Grafana dashboard \(@grafana\/schema \d+\.\d+\.\d+\)/);

  const files = Object.entries(BROKEN).map(([name, [change]], i) => {
    const file = join(dir, `broken-${i}.json`);
    writeFileSync(file, JSON.stringify(broken(change), null, 2));
    return [file, name];
  });
  const notJson = join(dir, "not-json.json");
  writeFileSync(notJson, "{ \"title\": ");
  const failed = await run(process.execPath, [CHECKER, ...files.map(([f]) => f), notJson]).then(
    () => assert.fail("the checker accepted broken dashboards"),
    (e) => e,
  );
  assert.equal(failed.code, 1, failed.stderr);
  for (const [file, name] of files) {
    const [, expected] = BROKEN[name];
    for (const line of expected) assert.ok(failed.stderr.includes(`  ${line}\n`), `${name}: ${line}\n${failed.stderr}`);
    assert.ok(failed.stderr.includes(`${file}: ${expected.length} problem(s)`), `${name}\n${failed.stderr}`);
  }
  assert.match(failed.stderr, new RegExp(`${notJson}: 1 problem\\(s\\)[^\\n]*\\n  not a JSON file: `));
});
