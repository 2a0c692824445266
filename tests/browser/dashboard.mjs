// Opens the dashboard in Debian's headless Chromium and checks that the live BTC price appears,
// then (after the test publishes a new one and writes a line to stdin) that it updates live.
// Usage: node dashboard.mjs BASE_URL SCREENSHOT_PATH
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";

const [base, shot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--no-first-run", "--disable-sync", "--disable-quic"],
});
try {
  const page = await browser.newPage({ viewport: { width: 390, height: 720 } });
  const logs = [];
  page.on("console", (m) => logs.push(m.text()));
  await page.goto(base + "/");
  const price = page.locator("#btc-price");
  await page.waitForFunction(() => document.getElementById("btc-price").textContent.startsWith("$"), null, { timeout: 5000 });
  console.log("first " + (await price.textContent()));
  await page.waitForFunction(() => document.getElementById("status").dataset.state === "live", null, { timeout: 5000 });
  const rl = createInterface({ input: process.stdin });
  await new Promise((resolve) => rl.once("line", resolve));
  rl.close();
  await page.waitForFunction(() => document.getElementById("btc-price").textContent === "$65,432.10", null, { timeout: 5000 })
    .catch(async (e) => { throw new Error(`price did not update: ${await price.textContent()} (${logs.join("; ")})`); });
  console.log("live " + (await price.textContent()));
  await page.screenshot({ path: shot, fullPage: true });
} finally {
  await browser.close();
}
