// A line-oriented driver for Debian's headless Chromium (playwright-core), used by the Rust
// end-to-end tests (tests/e2e/harness.rs, `Browser`).
//
// Reads one JSON command per line on stdin and answers each with one JSON line on stdout,
// `{"ok":true,"value":...}` or `{"ok":false,"error":"..."}`, in order:
//   {"cmd":"open","url":"...","width":390,"height":844}  loads the URL in the page (again: a reload)
//   {"cmd":"eval","js":"document.title"}                 the expression's value, as JSON
//   {"cmd":"wait","js":"expr","timeout_ms":5000}         until the expression is truthy
//   {"cmd":"screenshot","path":"/tmp/x.png","full_page":true}
//   {"cmd":"console"}                                    console messages and page errors so far
//   {"cmd":"close"}                                      closes Chromium and exits
// Exits (closing Chromium) when stdin closes. Usage: node driver.mjs
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync", "--disable-quic"],
});

const logs = [];
let context = null;
let page = null;

async function open({ url, width = 1280, height = 800 }) {
  if (!page) {
    context = await browser.newContext({ viewport: { width, height } });
    page = await context.newPage();
    page.on("console", (m) => logs.push(`[${m.type()}] ${m.text()}`));
    page.on("pageerror", (e) => logs.push(`[pageerror] ${e.message}`));
    page.on("requestfailed", (r) => logs.push(`[requestfailed] ${r.url()} ${r.failure()?.errorText ?? ""}`));
  } else {
    await page.setViewportSize({ width, height });
  }
  const resp = await page.goto(url, { waitUntil: "load", timeout: 15000 });
  return resp ? resp.status() : null;
}

function needPage() {
  if (!page) throw new Error("no page: send open first");
  return page;
}

const commands = {
  open,
  eval: async ({ js }) => {
    const v = await needPage().evaluate(js);
    return v === undefined ? null : v;
  },
  wait: async ({ js, timeout_ms = 5000 }) => {
    await needPage().waitForFunction(js, null, { timeout: timeout_ms, polling: 100 });
    return true;
  },
  screenshot: async ({ path, full_page = true }) => {
    await needPage().screenshot({ path, fullPage: full_page });
    return path;
  },
  console: async () => logs.slice(),
};

let closing = false;
async function shutdown(code) {
  if (closing) return;
  closing = true;
  await browser.close().catch(() => {});
  process.exit(code);
}

const reply = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

// Commands run one at a time, in order.
let queue = Promise.resolve();
const rl = createInterface({ input: process.stdin });
rl.on("line", (line) => {
  if (!line.trim()) return;
  queue = queue.then(async () => {
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (e) {
      reply({ ok: false, error: `not JSON: ${e.message}` });
      return;
    }
    if (cmd.cmd === "close") {
      reply({ ok: true, value: null });
      await shutdown(0);
      return;
    }
    const run = commands[cmd.cmd];
    if (!run) {
      reply({ ok: false, error: `unknown cmd ${JSON.stringify(cmd.cmd)}` });
      return;
    }
    try {
      reply({ ok: true, value: await run(cmd) });
    } catch (e) {
      reply({ ok: false, error: String(e && e.message ? e.message : e) });
    }
  });
});
rl.on("close", () => queue.then(() => shutdown(0)));
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => shutdown(0));
