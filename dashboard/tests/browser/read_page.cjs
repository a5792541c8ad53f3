// Opens the dashboard in Debian's headless Chromium (driven by playwright-core through
// `executablePath`; no browser is downloaded), waits until the page has rendered and then
// refreshed itself once more, and prints as JSON what a person would see: each metric panel's
// rows and overall value, whether its chart drew its series, the health tiles, the dead
// letters and the shards, and any errors the page logged. Saves a full-page screenshot.
//
// usage: NODE_PATH=<node_modules> INLET_CHROMIUM=/usr/bin/chromium node read_page.cjs URL PNG
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

const [url, screenshot] = process.argv.slice(2);
setTimeout(() => { console.error("gave up after 120 s"); process.exit(2); }, 120000).unref();

(async () => {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "inlet-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.INLET_CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1400, height: 1000 },
  });
  const errors = [];
  try {
    const page = context.pages()[0] || await context.newPage();
    page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(url);
    // Ready, and refreshed by its own timer at least once since.
    await page.waitForFunction(() => document.body.dataset.state !== "loading" && Number(document.body.dataset.refreshes) >= 2,
      null, { timeout: 60000 });
    const seen = await page.evaluate(() => {
      const num = (s) => (s === undefined || s === "" ? null : Number(s));
      // Pixels in a series colour (the swatches of the panel's table) on its chart's canvas:
      // lines or points were drawn, not only axes.
      const seriesPixels = (panel) => {
        const c = panel.querySelector("canvas");
        if (!c) return 0;
        const colours = [...panel.querySelectorAll(".swatch")].map((s) =>
          getComputedStyle(s).backgroundColor.match(/\d+/g).slice(0, 3).map(Number));
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) {
          if (d[i + 3] > 200 && colours.some(([r, g, b]) =>
            Math.abs(d[i] - r) < 8 && Math.abs(d[i + 1] - g) < 8 && Math.abs(d[i + 2] - b) < 8)) n++;
        }
        return n;
      };
      return {
        state: document.body.dataset.state,
        error: document.getElementById("error").hidden ? null : document.getElementById("error").textContent,
        from_ms: num(document.body.dataset.from),
        to_ms: num(document.body.dataset.to),
        metrics: [...document.querySelectorAll(".panel.metric")].map((p) => ({
          metric: p.dataset.metric,
          label: p.querySelector(".label").textContent,
          groups: num(p.dataset.groups),
          overall: num(p.querySelector(".overall").dataset.value),
          rows: [...p.querySelectorAll("tr[data-key]")].map((r) => [r.dataset.key, num(r.dataset.value)]),
          shown: [...p.querySelectorAll("tr[data-key] td.num")].map((td) => td.textContent),
          series_pixels: seriesPixels(p),
        })),
        tiles: Object.fromEntries([...document.querySelectorAll(".tile")].map((t) => [t.id, num(t.dataset.value)])),
        dead_letters: [...document.querySelectorAll("#dead-letters tr[data-kind]")]
          .map((r) => [r.dataset.kind, r.dataset.field || null, num(r.dataset.count)]),
        shards: [...document.querySelectorAll("#shards tr[data-shard]")]
          .map((r) => ({ shard: r.dataset.shard, state: r.dataset.state, checkpoint: r.dataset.checkpoint })),
      };
    });
    await page.screenshot({ path: screenshot, fullPage: true });
    seen.console_errors = errors;
    process.stdout.write(JSON.stringify(seen));
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
})().catch((e) => { console.error(e); process.exit(1); });
