// The screenshots of docs/dashboard.md: open a running `diffactor serve` in Debian's headless
// Chromium (playwright-core) and save the page's top (runs and curves), or the focused run's panel
// (samples, actor graph, spec, inputs, step diagram). How docs/img/dashboard/ was made:
//   npx diffactor serve /tmp/dash/live2 --port 8767 &            # a traced REPA run (docs/dashboard.md)
//   npx tsx scripts/dashboard-screenshots.ts http://127.0.0.1:8767/ top docs/img/dashboard/repa-run.png
//   npx tsx scripts/dashboard-screenshots.ts http://127.0.0.1:8767/ run docs/img/dashboard/actors.png
//   npx diffactor serve /tmp/dash/study --port 8768 &             # the study folder
//   npx tsx scripts/dashboard-screenshots.ts http://127.0.0.1:8768/ top docs/img/dashboard/study.png
// Look at each image before committing it.
import { chromium } from 'playwright-core';

const [url, what, out] = process.argv.slice(2);
if (!url || !out || (what !== 'top' && what !== 'run')) {
  console.error('usage: npx tsx scripts/dashboard-screenshots.ts URL top|run OUT.png');
  process.exit(2);
}
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  await page.goto(url);
  await page.waitForSelector('body[data-ready]');
  await page.waitForTimeout(2000); // the graph and the spec load after the page is ready
  if (what === 'top') await page.screenshot({ path: out });
  else await page.locator('#focus').screenshot({ path: out });
  console.error(`wrote ${out}`);
} finally {
  await browser.close();
}
