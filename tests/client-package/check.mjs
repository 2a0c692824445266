// The client package's check (scripts/test runs it): packs a package folder (default
// static/client, or the folder given as the argument) with `npm pack`, installs the tarball into a
// scratch project (offline: it has no dependencies), and then
//   - imports it from Node and compares what the module exports at run time (names, kinds, the
//     constants, the client's properties, methods, options and events) with its declarations, read
//     with the TypeScript compiler API; the frame types, the library's own error codes and the
//     server's error codes (durable/src/wire/protocol.rs) with the declared unions; and finds no
//     `any` in the declarations;
//   - type-checks, with `tsc --noEmit`, strict, through the package's `exports`: exact-types.ts
//     (every exported name pinned in full with Equal<>, written from the run time; it must name
//     each one), use.ts (the whole API in use, misuse under @ts-expect-error); moduleResolution
//     nodenext without the DOM library, and bundler with it, plus dom.ts (the browser's WebSocket
//     and fetch fit) and readme.ts (the package README's TypeScript example, as written there);
//   - bundles the README's example with esbuild for the browser, the way an app's bundler
//     would: "@tickwire/client" resolved through the package's `exports`, one self-contained file;
//   - runs use.ts against the installed module.
// Exits 1 with what differs, or tsc's errors. The temporary folders are removed.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import ts from "typescript";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const source = path.resolve(process.argv[2] || path.join(root, "static/client"));
const tsc = path.join(root, "node_modules/.bin/tsc");
const NAME = "@tickwire/client";
const problems = [];
const expect = (ok, what) => ok || problems.push(what);

/** Runs a command; its output, or exit 1 with it (less the lines `quiet` matches) when it fails. */
function run(cmd, args, cwd, env = {}, quiet = /^$/) {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", env: { ...process.env, ...env } });
  if (r.status !== 0) {
    const said = `${r.stdout}${r.stderr}`.split("\n").filter((l) => !quiet.test(l)).join("\n");
    console.error(`check: ${cmd} ${args.join(" ")} (in ${cwd}) exited ${r.status ?? r.signal}\n${said}`);
    throw new Failed();
  }
  return r.stdout;
}
class Failed extends Error {}

const sameSet = (a, b) => a.length === b.length && [...a].sort().join() === [...b].sort().join();
const show = (a) => JSON.stringify([...a].sort());

const tmp = mkdtempSync(path.join(tmpdir(), "tickwire-client-package-"));
let failed = false;
try {
  // npm stays offline and keeps its cache in the temporary folder.
  const npmEnv = {
    npm_config_cache: path.join(tmp, "npm-cache"), npm_config_offline: "true", npm_config_audit: "false",
    npm_config_fund: "false", npm_config_update_notifier: "false", npm_config_loglevel: "error",
  };
  const [packed] = JSON.parse(run("npm", ["pack", source, "--pack-destination", tmp, "--json"], tmp, npmEnv));
  expect(
    sameSet(packed.files.map((f) => f.path), ["LICENSE", "README.md", "package.json", "tickwire-client.d.ts", "tickwire-client.js"]),
    `the tarball holds ${show(packed.files.map((f) => f.path))}, not the module, its declarations, README, LICENSE and package.json`,
  );
  const app = path.join(tmp, "app");
  mkdirSync(app);
  writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "scratch-app", private: true, type: "module" }));
  run("npm", ["install", "--no-audit", "--no-fund", "--offline", path.join(tmp, packed.filename)], app, npmEnv);
  const installed = path.join(app, "node_modules", ...NAME.split("/"));
  const manifest = JSON.parse(readFileSync(path.join(installed, "package.json"), "utf8"));
  expect(!manifest.dependencies && !manifest.peerDependencies, "the package has no dependencies");
  expect(sameSet(readdirSync(path.join(app, "node_modules")).filter((n) => !n.startsWith(".")), ["@tickwire"]), "nothing else was installed");

  // ---- What the module exports at run time
  writeFileSync(path.join(app, "probe.mjs"), `
    import * as m from "${NAME}";
    const tw = new m.TickwireClient("http://127.0.0.1:9");
    const proto = m.TickwireClient.prototype;
    const own = Object.getOwnPropertyNames(proto).filter((n) => n !== "constructor" && !n.startsWith("_"));
    console.log(JSON.stringify({
      resolved: import.meta.resolve("${NAME}"),
      kinds: Object.fromEntries(Object.keys(m).map((k) => [k, typeof m[k]])),
      constants: { BUILTIN_CHANNELS: m.BUILTIN_CHANNELS, EVERY_MS: m.EVERY_MS },
      properties: Object.keys(tw).filter((k) => !k.startsWith("_")),
      methods: own.filter((n) => typeof Object.getOwnPropertyDescriptor(proto, n).value === "function"),
      getters: own.filter((n) => Object.getOwnPropertyDescriptor(proto, n).get),
      options: Object.keys(tw.options),
      events: Object.keys(tw._listeners), // the runtime's event table (not exported)
    }));`);
  const live = JSON.parse(run(process.execPath, ["probe.mjs"], app));
  expect(live.resolved.endsWith("/node_modules/@tickwire/client/tickwire-client.js"), `${NAME} resolves to ${live.resolved}`);

  // ---- What the declarations say
  const dts = path.join(installed, "tickwire-client.d.ts");
  const program = ts.createProgram([dts], { strict: true, noEmit: true, types: [], lib: ["lib.es2022.d.ts"] });
  const checker = program.getTypeChecker();
  const exported = checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(dts)));
  const declared = (name) => exported.find((s) => s.name === name) ?? (problems.push(`no declaration of ${name}`), undefined);
  const names = (type) => checker.getPropertiesOfType(type).map((s) => s.name);
  const unionValues = (name) => {
    const s = declared(name);
    const t = s && checker.getDeclaredTypeOfSymbol(s);
    return t ? (t.isUnion() ? t.types : [t]).map((u) => u.value) : [];
  };

  // No `any` anywhere: it would switch type-checking off for whatever an app does with it.
  const anys = [];
  const walk = (node) => (node.kind === ts.SyntaxKind.AnyKeyword ? anys.push(node) : ts.forEachChild(node, walk));
  walk(program.getSourceFile(dts));
  for (const node of anys) {
    const { line } = node.getSourceFile().getLineAndCharacterOfPosition(node.getStart());
    problems.push(`tickwire-client.d.ts:${line + 1} declares \`any\`: ${node.parent.getText().slice(0, 80)}`);
  }

  const values = exported.filter((s) => s.flags & ts.SymbolFlags.Value);
  expect(sameSet(values.map((s) => s.name), Object.keys(live.kinds)), `exports: declared ${show(values.map((s) => s.name))}, the module has ${show(Object.keys(live.kinds))}`);
  for (const s of values) {
    const kind = s.flags & (ts.SymbolFlags.Function | ts.SymbolFlags.Class) ? "function" : "object";
    expect(!live.kinds[s.name] || live.kinds[s.name] === kind, `${s.name} is declared a ${kind}, the module's is a ${live.kinds[s.name]}`);
    const t = checker.getTypeOfSymbol(s);
    if (s.flags & ts.SymbolFlags.Variable && checker.isTupleType(t)) {
      const tuple = checker.getTypeArguments(t).map((e) => e.value);
      expect(JSON.stringify(tuple) === JSON.stringify(live.constants[s.name]), `${s.name}: declared ${JSON.stringify(tuple)}, the module's is ${JSON.stringify(live.constants[s.name])}`);
    }
  }
  const client = declared("TickwireClient");
  if (client) {
    const members = checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(client));
    const of = (flag) => members.filter((m) => m.flags & flag).map((m) => m.name);
    expect(sameSet(of(ts.SymbolFlags.Property), live.properties), `client properties: declared ${show(of(ts.SymbolFlags.Property))}, the module's ${show(live.properties)}`);
    expect(sameSet(of(ts.SymbolFlags.Method), live.methods), `client methods: declared ${show(of(ts.SymbolFlags.Method))}, the module's ${show(live.methods)}`);
    expect(sameSet(of(ts.SymbolFlags.GetAccessor), live.getters), `client getters: declared ${show(of(ts.SymbolFlags.GetAccessor))}, the module's ${show(live.getters)}`);
  }
  const events = declared("ClientEvents");
  if (events) {
    const listed = names(checker.getDeclaredTypeOfSymbol(events));
    expect(sameSet(listed, live.events), `events: declared ${show(listed)}, the module's ${show(live.events)}`);
  }
  const options = declared("ClientOptions");
  if (options) {
    // The module's defaults, plus `every` (read but not defaulted) and a callback per event.
    const want = [...live.options, "every", ...live.events.map((e) => `on${e[0].toUpperCase()}${e.slice(1)}`)];
    const listed = names(checker.getDeclaredTypeOfSymbol(options));
    expect(sameSet(listed, want), `options: declared ${show(listed)}, the module reads ${show(want)}`);
  }
  const module = readFileSync(path.join(installed, "tickwire-client.js"), "utf8");
  const handled = [...new Set([...module.matchAll(/f\.type === "([a-z_]+)"/g)].map((m) => m[1]))];
  expect(sameSet(unionValues("ServerFrameType"), handled), `frame types: declared ${show(unionValues("ServerFrameType"))}, the module handles ${show(handled)}`);
  const own = [...new Set([...module.matchAll(/codedError\("([a-z_]+)"/g)].map((m) => m[1]))];
  expect(sameSet(unionValues("ClientErrorCode"), own), `the library's error codes: declared ${show(unionValues("ClientErrorCode"))}, the module's ${show(own)}`);
  const protocol = readFileSync(path.join(root, "durable/src/wire/protocol.rs"), "utf8");
  const server = [...protocol.matchAll(/ErrorCode::\w+ => "([a-z_]+)"/g)].map((m) => m[1]);
  expect(server.length > 0 && sameSet(unionValues("ServerErrorCode"), server), `server error codes: declared ${show(unionValues("ServerErrorCode"))}, protocol.rs has ${show(server)}`);

  // exact-types.ts must pin every declared name: each is named on the left of some Equal<>.
  const pins = ts.createSourceFile("exact-types.ts", readFileSync(path.join(here, "exact-types.ts"), "utf8"), ts.ScriptTarget.ES2022);
  const pinned = new Set();
  const collect = (node) => {
    if (ts.isIdentifier(node)) pinned.add(node.text);
    else ts.forEachChild(node, collect); // (a callback that returns a value would stop forEachChild)
  };
  const equals = (node) => {
    if (ts.isTypeReferenceNode(node) && node.typeName.getText(pins) === "Equal" && node.typeArguments?.length === 2) collect(node.typeArguments[0]);
    ts.forEachChild(node, equals);
  };
  equals(pins);
  const unpinned = exported.map((s) => s.name).filter((n) => !pinned.has(n));
  expect(unpinned.length === 0, `exact-types.ts pins no Equal<> on ${show(unpinned)}`);

  // The package README's TypeScript example, type-checked as an app would paste it.
  const readme = readFileSync(path.join(installed, "README.md"), "utf8");
  const examples = [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]);
  expect(examples.length === 1, `the package README has ${examples.length} \`\`\`ts examples, not one`);
  writeFileSync(path.join(app, "readme.ts"), `${examples.join("\n")}\nexport {};\n`);

  // ---- The typed app: type-checked twice, then run
  for (const f of ["exact-types.ts", "use.ts", "dom.ts"]) copyFileSync(path.join(here, f), path.join(app, f));
  const strict = { strict: true, noEmit: true, skipLibCheck: false, target: "es2022", types: [], noUnusedLocals: true };
  const configs = {
    "tsconfig.nodenext.json": {
      compilerOptions: { ...strict, module: "nodenext", moduleResolution: "nodenext", lib: ["es2022"], exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true },
      files: ["exact-types.ts", "use.ts"],
    },
    "tsconfig.bundler.json": {
      compilerOptions: { ...strict, module: "esnext", moduleResolution: "bundler", lib: ["es2022", "dom", "dom.iterable"] },
      files: ["exact-types.ts", "use.ts", "dom.ts", "readme.ts"],
    },
  };
  for (const [file, config] of Object.entries(configs)) {
    writeFileSync(path.join(app, file), JSON.stringify(config, null, 2));
    const listed = run(tsc, ["-p", file, "--listFiles"], app, {}, /^\/.*\.ts$/); // errors, not the file list
    expect(listed.includes(dts), `${file}: tsc did not read the package's declarations through its exports`);
  }
  // ---- A bundler: esbuild (what Vite and wrangler use), browser platform, ES module out.
  const bundled = await esbuild.build({
    entryPoints: [path.join(app, "readme.ts")], absWorkingDir: app, bundle: true, format: "esm",
    platform: "browser", write: false, logLevel: "silent", metafile: true,
  }).catch((e) => {
    problems.push(`esbuild could not bundle the README's example: ${e.message}`);
    return null;
  });
  if (bundled) {
    const [output] = Object.values(bundled.metafile.outputs);
    const taken = Object.entries(output.inputs).find(([i]) => i.endsWith(`${NAME}/tickwire-client.js`));
    expect(taken && taken[1].bytesInOutput > 10_000, `the bundle holds ${JSON.stringify(Object.keys(output.inputs))}, not the package's module`);
    expect(!/\bfrom\s*["']|\bimport\s*\(/.test(bundled.outputFiles[0].text), "the bundle still imports something: not self-contained");
  }
  if (problems.length === 0) {
    const said = run(process.execPath, ["use.ts"], app);
    expect(said.includes("the typed app ran"), `use.ts said: ${said}`);
  }
} catch (e) {
  if (!(e instanceof Failed)) throw e;
  failed = true;
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
for (const p of problems) console.error(`check: ${p}`);
if (failed || problems.length) process.exit(1);
console.log(`client package: packed, installed, exports match the declarations, exact-types.ts, use.ts and the README's example type-check (nodenext, bundler), the example bundles (esbuild), use.ts runs`);
