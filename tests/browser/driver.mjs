// A line-oriented driver for Debian's headless Chromium or Firefox ESR (puppeteer-core: CDP for
// Chromium, WebDriver BiDi for Firefox), used by the Rust end-to-end tests
// (tests/e2e/harness/browser.rs, `Browser`). Same commands and answers for both browsers.
//
// First writes `{"ok":true,"value":{"engine":"...","pid":N}}` once the browser is up. Then reads
// one JSON command per line on stdin and answers each with one JSON line on stdout,
// `{"ok":true,"value":...}` or `{"ok":false,"error":"..."}`, in order:
//   {"cmd":"open","url":"...","width":390,"height":844}  loads the URL in the page (again: a reload)
//   {"cmd":"eval","js":"document.title"}                 the expression's value, as JSON
//   {"cmd":"wait","js":"expr","timeout_ms":5000}         until the expression is truthy
//   {"cmd":"screenshot","path":"/tmp/x.png","full_page":true}
//   {"cmd":"console"}                                    console messages, page errors, failed requests so far
//   {"cmd":"close"}                                      closes the browser and exits
// Exits (closing the browser) when stdin closes.
// Usage: node driver.mjs [chromium|firefox] [profile folder]
import puppeteer from "puppeteer-core";
import { createInterface } from "node:readline";

// Nothing on this machine may reach the internet, and nothing should try: a browser waiting on
// an absent network (an update check, telemetry, a blocklist) stalls or slows a test. Puppeteer's
// own Firefox profile defaults turn off updates, safe browsing and most reporting; these close the
// rest, and a proxy that is not there catches whatever is left. Under strace, a test's Firefox
// with these connects to 127.0.0.1 only and sends no DNS query (without them it looks up
// firefox.settings.services.mozilla.com). Each run gets a fresh profile folder: the harness's,
// which it removes, or puppeteer's temporary one.
const FIREFOX_PREFS = {
  "app.update.auto": false,
  "app.update.enabled": false,
  "app.update.staging.enabled": false,
  "app.normandy.enabled": false,
  "app.shield.optoutstudies.enabled": false,
  "browser.discovery.enabled": false,
  "browser.newtabpage.activity-stream.feeds.telemetry": false,
  "browser.newtabpage.activity-stream.telemetry": false,
  "browser.newtabpage.activity-stream.feeds.snippets": false,
  "browser.newtabpage.activity-stream.showSponsored": false,
  "browser.newtabpage.activity-stream.showSponsoredTopSites": false,
  "browser.ping-centre.telemetry": false,
  "browser.region.network.url": "",
  "browser.region.update.enabled": false,
  "browser.safebrowsing.provider.google.updateURL": "",
  "browser.safebrowsing.provider.google4.updateURL": "",
  "browser.safebrowsing.provider.mozilla.updateURL": "",
  "browser.safebrowsing.provider.mozilla.gethashURL": "",
  "browser.safebrowsing.update.enabled": false,
  "browser.search.geoip.url": "",
  "browser.topsites.contile.enabled": false,
  "captivedetect.canonicalURL": "",
  "datareporting.policy.dataSubmissionEnabled": false,
  "dom.push.connection.enabled": false,
  "dom.push.serverURL": "",
  "extensions.blocklist.enabled": false,
  "extensions.getAddons.discovery.api_url": "",
  "extensions.systemAddon.update.enabled": false,
  "extensions.systemAddon.update.url": "",
  "geo.provider.network.url": "",
  "identity.fxaccounts.enabled": false,
  "media.gmp-gmpopenh264.enabled": false,
  "messaging-system.rsexperimentloader.enabled": false,
  "network.captive-portal-service.enabled": false,
  "network.connectivity-service.enabled": false,
  "network.dns.disablePrefetch": true,
  // The catch-all for whatever the other prefs miss: anything not on loopback goes to a proxy
  // that is not there, refused at once and never looked up in DNS (Firefox never proxies
  // localhost or 127.0.0.1).
  "network.proxy.type": 1,
  "network.proxy.http": "127.0.0.1",
  "network.proxy.http_port": 9,
  "network.proxy.ssl": "127.0.0.1",
  "network.proxy.ssl_port": 9,
  "network.proxy.socks": "127.0.0.1",
  "network.proxy.socks_port": 9,
  "network.proxy.socks_remote_dns": true,
  "network.proxy.no_proxies_on": "",
  // Firefox's own requests would otherwise go direct when the proxy refuses them.
  "network.proxy.failover_direct": false,
  "network.prefetch-next": false,
  "network.trr.mode": 5,
  "security.OCSP.enabled": 0,
  "security.remote_settings.crlite_filters.enabled": false,
  "security.remote_settings.intermediates.enabled": false,
  // Remote settings (blocklists, certificate data) from nowhere; needs MOZ_REMOTE_SETTINGS_DEVTOOLS.
  "services.settings.server": "http://127.0.0.1:9/",
  "toolkit.telemetry.enabled": false,
  "toolkit.telemetry.unified": false,
  "toolkit.telemetry.archive.enabled": false,
  "toolkit.telemetry.server": "",
  "toolkit.telemetry.updatePing.enabled": false,
  "toolkit.telemetry.shutdownPingSender.enabled": false,
  "toolkit.telemetry.firstShutdownPing.enabled": false,
  "toolkit.telemetry.newProfilePing.enabled": false,
  "toolkit.telemetry.bhrPing.enabled": false,
};

const LAUNCH = {
  chromium: {
    browser: "chrome",
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
      "--no-first-run", "--disable-sync", "--disable-quic",
      // Even so, strace shows lookups of Google's account and update hosts: no name but
      // localhost resolves here (the tests use 127.0.0.1), so none goes out.
      "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"],
  },
  firefox: {
    browser: "firefox",
    executablePath: "/usr/bin/firefox-esr",
    headless: true,
    extraPrefsFirefox: FIREFOX_PREFS,
    // A release build ignores services.settings.server unless this is set.
    env: { ...process.env, MOZ_REMOTE_SETTINGS_DEVTOOLS: "1" },
  },
};

const engine = process.argv[2] ?? "chromium";
// The profile folder (the harness makes and removes it, so nothing is left even if this
// process is killed); puppeteer's own temporary one otherwise.
const profile = process.argv[3];
if (!LAUNCH[engine]) {
  process.stderr.write(`driver.mjs: unknown browser ${JSON.stringify(engine)} (chromium or firefox)\n`);
  process.exit(2);
}
// The viewport is set per page by `open`; none from the launch.
const browser = await puppeteer.launch({
  ...LAUNCH[engine], defaultViewport: null, timeout: 60000, ...(profile ? { userDataDir: profile } : {}),
});

// Runs in every document before its scripts (Firefox): uncaught exceptions, script syntax
// errors and unhandled rejections, as Chromium's page errors. Reported as console errors with a
// mark (the console is the one channel every document has; a function exposed to the page could
// be missing from one, and its errors would then go unseen).
const PAGE_ERROR_MARK = "[driver-pageerror] ";
const REPORT_PAGE_ERRORS = `(() => {
  const report = (m) => console.error(${JSON.stringify(PAGE_ERROR_MARK)} + String(m));
  window.addEventListener("error", (e) => report(e.error && e.error.message !== undefined
    ? (e.error.name ? e.error.name + ": " : "") + e.error.message : e.message));
  window.addEventListener("unhandledrejection", (e) =>
    report("Uncaught (in promise) " + (e.reason && e.reason.message !== undefined ? e.reason.message : e.reason)));
})()`;

const logs = [];
let page = null;

async function open({ url, width = 1280, height = 800 }) {
  if (!page) {
    page = await browser.newPage();
    // Every open loads afresh: a reload is a 200, never a 304 from the cache.
    await page.setCacheEnabled(false);
    page.on("console", (m) => {
      const text = m.text();
      logs.push(text.startsWith(PAGE_ERROR_MARK) ? `[pageerror] ${text.slice(PAGE_ERROR_MARK.length)}` : `[${m.type()}] ${text}`);
    });
    if (engine === "firefox") {
      // Firefox reports the browser's own complaints (a refused WebSocket, a failed CORS fetch)
      // through the same channel as uncaught exceptions, and puppeteer calls all of them page
      // errors; Chromium reports those as console errors. So here they are console errors, and
      // page errors come from the page's own `error` and `unhandledrejection` events.
      page.on("pageerror", (e) => logs.push(`[error] ${e && e.message ? e.message : e}`));
      await page.evaluateOnNewDocument(REPORT_PAGE_ERRORS);
    } else {
      page.on("pageerror", (e) => logs.push(`[pageerror] ${e && e.message ? e.message : e}`));
    }
    page.on("requestfailed", (r) => logs.push(`[requestfailed] ${r.url()} ${r.failure()?.errorText ?? ""}`));
  }
  await page.setViewport({ width, height });
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
    await needPage().waitForFunction(js, { timeout: timeout_ms, polling: 100 });
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
// The first line says the browser is up, and its PID: the harness kills its process group if
// this driver cannot close it (puppeteer starts the browser in a group of its own).
reply({ ok: true, value: { engine, pid: browser.process()?.pid ?? null } });

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
// Stdin closed: the test is over, so close the browser now, not after a command still running.
rl.on("close", () => shutdown(0));
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => shutdown(0));
