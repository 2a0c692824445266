// The JSON Schema that monitoring/grafana/tickwire.json is checked against, and the check itself
// (used by check-dashboard.mjs and its test). No Grafana server can be installed here, so the
// dashboard model comes from Grafana's own published types: the `Dashboard` type that
// `@grafana/schema` exports (dist/types/veneer/dashboard.types.d.ts, which extends the classic
// v1 model in dist/types/raw/dashboard/x/types.gen.d.ts), turned into a JSON Schema by
// ts-json-schema-generator and checked with ajv. What we add to or tighten in Grafana's schema is
// done in `tighten` below, each change with its reason.
import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import Ajv from "ajv";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
const require = createRequire(import.meta.url);

const GRAFANA_DIR = dirname(require.resolve("@grafana/schema/package.json"));
const GENERATOR_DIR = dirname(require.resolve("ts-json-schema-generator/package.json"));
// The exported `Dashboard` (what `import { Dashboard } from "@grafana/schema"` gives).
export const DASHBOARD_TYPE_FILE = join(GRAFANA_DIR, "dist/types/veneer/dashboard.types.d.ts");

const version = (dir) => JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).version;
// The versions the schema depends on: the cache is keyed by them.
export const VERSIONS = {
  grafanaSchema: version(GRAFANA_DIR),
  generator: version(GENERATOR_DIR),
  typescript: version(dirname(require.resolve("typescript/package.json", { paths: [GENERATOR_DIR] }))),
};

const GENERATOR_CONFIG = {
  path: DASHBOARD_TYPE_FILE,
  type: "Dashboard",
  // Everything inlined: `@grafana/schema` has two types named DataSourceRef (the dashboard's and
  // common's, which adds apiVersion), and named definitions would collide.
  expose: "none",
  topRef: true,
  // Descriptions are not needed to validate, and keep the cached file small.
  jsDoc: "none",
  // The generator's default, said out loud: an object type without an index signature is closed
  // (additionalProperties false), so an unknown or misspelled key is an error. Index signatures
  // (`Record<string, unknown>`: a panel's `options`, its `targets`, fieldConfig's `custom`) stay
  // open, as Grafana leaves those to each plugin.
  additionalProperties: false,
  // The .d.ts files are Grafana's published build output; type-checking them again only costs time.
  skipTypeCheck: true,
};

// Grafana's schema as the generator gives it, cached under target/ by the versions it depends on
// (3-4 s of CPU to generate on this machine; a check run spawns the checker more than once).
export function generatedSchema() {
  const key = createHash("sha256").update(JSON.stringify({ VERSIONS, GENERATOR_CONFIG })).digest("hex").slice(0, 12);
  const dir = join(ROOT, "target/grafana-schema");
  const file = join(dir, `dashboard-${VERSIONS.grafanaSchema}-${key}.json`);
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch {
    // Not cached yet (or a torn file): generate it.
  }
  // Loaded only here: it brings the TypeScript compiler, most of a cached run's time otherwise.
  const { createGenerator } = require("ts-json-schema-generator");
  const schema = createGenerator(GENERATOR_CONFIG).createSchema(GENERATOR_CONFIG.type);
  mkdirSync(dir, { recursive: true });
  // Written then renamed, so a checker running beside this one never reads half a file.
  const part = `${file}.${process.pid}.part`;
  writeFileSync(part, JSON.stringify(schema));
  renameSync(part, file);
  return schema;
}

// Export-only keys, which Grafana's "Export for sharing externally" writes and its import reads.
// They are not part of the dashboard model, so `@grafana/schema` does not know them; they are
// validated here rather than stripped because import depends on them (`__inputs` is what
// asks for the Prometheus data source). Shapes from Grafana's DashboardExporter (`Input`,
// `Requires`, `LibraryElementExport` in public/app/features/dashboard/components/DashExportModal/).
const EXPORT_KEYS = {
  __inputs: {
    type: "array",
    items: {
      type: "object",
      properties: {
        name: { type: "string", minLength: 1 },
        label: { type: "string" },
        description: { type: "string" },
        type: { enum: ["datasource", "constant"] },
        pluginId: { type: "string" },
        pluginName: { type: "string" },
        value: { type: "string" },
        usage: { type: "object" },
      },
      required: ["name", "label", "type"],
      additionalProperties: false,
      // A data source input must say which plugin it wants, or import offers every data source.
      if: { properties: { type: { const: "datasource" } } },
      then: { properties: { pluginId: { type: "string", minLength: 1 } }, required: ["pluginId"] },
    },
  },
  __requires: {
    type: "array",
    items: {
      type: "object",
      properties: {
        type: { enum: ["grafana", "datasource", "panel"] },
        id: { type: "string" },
        name: { type: "string" },
        version: { type: "string" },
      },
      required: ["type", "id", "name", "version"],
      additionalProperties: false,
    },
  },
  __elements: {
    type: "object",
    additionalProperties: {
      type: "object",
      properties: {
        name: { type: "string" },
        uid: { type: "string" },
        kind: { type: "number" },
        model: { type: "object" },
      },
      required: ["name", "uid", "kind", "model"],
      additionalProperties: false,
    },
  },
};

function shapeError(what) {
  const from = `@grafana/schema ${VERSIONS.grafanaSchema}`;
  return new Error(`${from}: the generated schema changed shape (${what}); revisit tighten()`);
}

// Our additions to Grafana's schema, each on purpose. Works on a copy.
export function tighten(generated) {
  const schema = structuredClone(generated);
  const dashboard = schema.definitions?.Dashboard;
  const branches = dashboard?.properties?.panels?.items?.anyOf;
  if (!Array.isArray(branches) || branches.length !== 2) throw shapeError("panels is not Panel | RowPanel");
  const row = branches.find((b) => b.properties?.type?.const === "row");
  const panel = branches.find((b) => b !== row);
  const nested = row?.properties?.panels?.items;
  const variable = dashboard.properties.templating?.properties?.list?.items;
  if (!row || !panel?.properties?.gridPos || !nested?.properties?.gridPos || !variable?.properties) {
    throw shapeError("no RowPanel, Panel, nested Panel or VariableModel where expected");
  }

  Object.assign(dashboard.properties, EXPORT_KEYS);

  // gridPos is optional in Grafana's type, but a panel without it gets PanelModel's default (6
  // columns by 3 rows at the top left): it lands above the first row, outside any row, and the
  // grid pushes everything else down, so the imported dashboard is not the one we designed. The
  // same for rows (a row is placed by its gridPos too) and for the panels inside collapsed rows.
  for (const p of [panel, row, nested]) p.required = [...new Set([...(p.required ?? []), "gridPos"])];
  // Grafana's classic model has no row inside a row; the type only says `type: string`.
  nested.properties.type = { ...nested.properties.type, not: { const: "row" } };

  // A panel is a row when its type is "row" (that is how Grafana tells them apart); choosing the
  // branch by it keeps errors to the one that applies, instead of anyOf's report of both.
  const isRow = { required: ["type"], properties: { type: { const: "row" } } };
  dashboard.properties.panels.items = { type: "object", if: isRow, then: row, else: panel };

  // `definition` (the query as text, shown in Grafana's variables list) is written by Grafana's
  // query variable editor and is in the same package's v2 model (QueryVariableSpec.definition in
  // dist/types/schema/dashboard/v2/types.spec.gen.d.ts), but not in the v1 VariableModel. The v1
  // model has one shape for every variable type, so it is allowed on any variable, as a string.
  variable.properties.definition = { type: "string" };
  return schema;
}

// Compiles the tightened schema. Strict mode in full (`strict: true`): an unknown keyword or a
// keyword that cannot apply to the declared type is a schema error rather than silently ignored,
// so the schema cannot quietly check less than it reads. allErrors so one run lists every problem;
// verbose so each error carries the offending value for the message.
export function compile(schema = tighten(generatedSchema())) {
  const ajv = new Ajv({ strict: true, allErrors: true, verbose: true });
  return ajv.compile(schema);
}

const pointer = (path) => (path === "" ? "(top level)" : path);

// The nearest panel's title for an error path, so "/panels/12/gridPos" can be found by eye.
function panelTitle(dashboard, path) {
  const m = /^\/panels\/(\d+)(?:\/panels\/(\d+))?/.exec(path);
  if (!m) return "";
  let p = dashboard.panels?.[Number(m[1])];
  if (m[2] !== undefined) p = p?.panels?.[Number(m[2])];
  return typeof p?.title === "string" ? ` (panel "${p.title}")` : "";
}

// One line per ajv error: the JSON pointer, the panel it is in, and what is wrong in words.
export function describe(errors, dashboard) {
  const lines = [];
  for (const e of errors ?? []) {
    // `if` only says which branch failed; that branch's own errors follow and say why.
    if (e.keyword === "if") continue;
    const at = pointer(e.instancePath) + panelTitle(dashboard, e.instancePath);
    let what;
    if (e.keyword === "additionalProperties") what = `unknown key "${e.params.additionalProperty}"`;
    else if (e.keyword === "required") what = `missing required key "${e.params.missingProperty}"`;
    else if (e.keyword === "type") what = `must be ${e.params.type}, got ${JSON.stringify(e.data)}`;
    else if (e.keyword === "not" && "const" in e.schema) what = `must not be ${JSON.stringify(e.schema.const)}`;
    else if (e.keyword === "enum") {
      what = `must be one of ${JSON.stringify(e.params.allowedValues)}, got ${JSON.stringify(e.data)}`;
    }
    else what = `${e.message}, got ${JSON.stringify(e.data)}`;
    lines.push(`${at}: ${what}`);
  }
  return lines;
}

// Checks a parsed dashboard: the list of problems, empty when it is valid.
export function check(validate, dashboard) {
  return validate(dashboard) ? [] : describe(validate.errors, dashboard);
}
