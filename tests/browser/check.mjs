// Opens the status page in Debian's chromium (headless, over CDP with playwright-core)
// at two widths and prints one JSON object of measurements for tests/it/browser.rs to
// assert on. Usage: node check.mjs URL OUT_DIR
import { chromium } from 'playwright-core';

const [url, outDir] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // Without these, chromium dials Google at start and the closed network refuses it.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const result = {};
try {
  for (const [name, width, height] of [['wide', 1400, 900], ['narrow', 420, 900]]) {
    const page = await browser.newPage({ viewport: { width, height } });
    await page.goto(url, { waitUntil: 'load' });
    await page.screenshot({ path: `${outDir}/status-${width}.png` });
    result[name] = await page.evaluate(() => {
      const doc = document.documentElement;
      const rows = [...document.querySelectorAll('tr.edge')];
      const visible = (el) => {
        if (!el) return false;
        const r = el.getBoundingClientRect();
        const s = getComputedStyle(el);
        return r.width > 0 && r.height > 0 && s.display !== 'none' && s.visibility !== 'hidden'
          && r.left >= 0 && r.right <= doc.clientWidth + 0.5;
      };
      const lineHeight = (el) => parseFloat(getComputedStyle(el).lineHeight) || 20;
      return {
        viewport: { width: doc.clientWidth, height: window.innerHeight },
        scrollWidth: doc.scrollWidth,
        rows: rows.map((tr) => {
          const r = tr.getBoundingClientRect();
          const target = tr.querySelector('td.target');
          return {
            name: target ? target.getAttribute('title') : null,
            failing: tr.classList.contains('fail') || tr.classList.contains('violation'),
            top: r.top,
            bottom: r.bottom,
            height: r.height,
            lines: target ? Math.round(r.height / lineHeight(target)) : 0,
            stateVisible: visible(tr.querySelector('td.state')),
            targetVisible: visible(target),
            reasonVisible: visible(tr.querySelector('td.reason')),
            // A name cut mid-word by wrapping shows as a target cell taller than a line.
            targetOneLine: target ? target.getBoundingClientRect().height < 2 * lineHeight(target) : false,
          };
        }),
        namespaces: document.querySelectorAll('section.ns .chip').length,
      };
    });
    await page.close();
  }
  // The runbook, opened at a reason's anchor, scrolls to that section.
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const base = new URL(url);
  await page.goto(new URL('docs/runbook#cert_expired', base).href, { waitUntil: 'load' });
  result.runbook = await page.evaluate(() => {
    const h = document.getElementById('cert_expired');
    return { found: !!h, top: h ? h.getBoundingClientRect().top : null, scrollY: window.scrollY };
  });
  await page.screenshot({ path: `${outDir}/runbook.png` });
  await page.close();
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
