// What every browser test script shares: Debian's Chromium driven by Playwright, and the checks
// each page must pass (its heading, axe-core's WCAG 2.2 AA rules, keyboard access, a screenshot).
//
// A script is a list of steps handed to `main`; the Rust side (`outpost_tests::browser::run`)
// passes its input as JSON in OUTPOST_BROWSER_INPUT and reads the one JSON line `main` prints:
//
//   import { main, step, checkPage } from './harness.mjs';
//   await main([
//     step('sign in', async ({ page, input }) => { await page.goto(`${input.base}/login`); ... }),
//     step('caseload', async ({ page }) => checkPage(page, { heading: 'Caseload', name: 'caseload' })),
//   ]);
//
// Each step's return value (if any) lands in `results` under the step's name.
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..');
// The npm tools live in scripts/tools (`npm ci --prefix scripts/tools`), not beside this file.
const tools = createRequire(join(repoRoot, 'scripts', 'tools', 'package.json'));
const { chromium } = tools('playwright-core');

const CHROMIUM = process.env.OUTPOST_CHROMIUM || '/usr/bin/chromium';
// Root has no user namespaces for Chromium's sandbox here; there is no GPU either.
const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
];
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];
const FOCUSABLE =
  'a[href], button, input:not([type=hidden]), select, textarea, [tabindex]:not([tabindex="-1"])';
const MAX_TABS = 200;
// Short enough that a missing element fails a step well inside the Rust side's 120 s limit.
const ACTION_TIMEOUT_MS = 15_000;

/** Where screenshots go: OUTPOST_SCREENSHOTS, or target/browser-screenshots when run by hand. */
export const SCREENSHOT_DIR =
  process.env.OUTPOST_SCREENSHOTS || join(repoRoot, 'target', 'browser-screenshots');

/** The script's input: the JSON in OUTPOST_BROWSER_INPUT, or {} when unset. */
export function readInput() {
  const raw = process.env.OUTPOST_BROWSER_INPUT;
  if (!raw) return {};
  try {
    return JSON.parse(raw);
  } catch (e) {
    throw new Error(`OUTPOST_BROWSER_INPUT is not JSON: ${e.message}`);
  }
}

/**
 * Starts Chromium and one context: HTTPS errors ignored (the test server's CA is made at test
 * time), a fixed 1280x900 viewport, reduced motion; cookies and storage from `storageState` (a
 * path or a state object) when given.
 */
export async function launch({ storageState } = {}) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const context = await browser.newContext({
      ignoreHTTPSErrors: true,
      viewport: { width: 1280, height: 900 },
      reducedMotion: 'reduce',
      ...(storageState ? { storageState } : {}),
    });
    context.setDefaultTimeout(ACTION_TIMEOUT_MS);
    return { browser, context };
  } catch (e) {
    await browser.close();
    throw e;
  }
}

/** Thrown by `checkPage`; `failures` says which checks failed, for scripts that expect it. */
export class PageCheckError extends Error {
  constructor(message, failures) {
    super(message);
    this.name = 'PageCheckError';
    this.failures = failures;
  }
}

/**
 * Checks the page as it is now: its one <h1> reads `heading` exactly (so an error page cannot
 * pass), then saves a full-page screenshot `${SCREENSHOT_DIR}/${name}.png` (before the other
 * checks, so a failing page leaves one too), then runs axe-core's WCAG 2.x A/AA rules and walks
 * the page with Tab. Throws a PageCheckError listing every axe violation and keyboard failure;
 * returns { heading, violations: 0, focusables, screenshot }.
 */
export async function checkPage(page, { heading, name }) {
  if (typeof heading !== 'string' || typeof name !== 'string') {
    throw new Error('checkPage needs { heading, name } strings');
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw new Error(`checkPage: "${name}" is not a plain file name for the screenshot`);
  }
  await page.waitForLoadState('load');

  const headings = await page.locator('h1').allInnerTexts();
  const found = headings.map((h) => h.replace(/\s+/g, ' ').trim());
  if (found.length !== 1 || found[0] !== heading) {
    const what = found.length === 0 ? 'no <h1>' : found.map((h) => JSON.stringify(h)).join(', ');
    throw new PageCheckError(
      `${name}: expected the page's one <h1> to be ${JSON.stringify(heading)}, found ${what} ` +
        `(at ${page.url()}, title ${JSON.stringify(await page.title())})`,
      { heading: found },
    );
  }

  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const screenshot = join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: screenshot, fullPage: true, animations: 'disabled' });

  const axe = await axeViolations(page);
  const keyboard = await keyboardFailures(page);
  const problems = [];
  if (axe.length > 0) {
    problems.push(
      `axe found ${axe.length} violation(s):\n` +
        axe.map((v) => `  - ${v.id} (${v.impact}): ${v.help} at ${v.targets.join(', ')}`).join('\n'),
    );
  }
  if (keyboard.failures.length > 0) {
    problems.push(`keyboard check failed:\n${keyboard.failures.map((f) => `  - ${f}`).join('\n')}`);
  }
  if (problems.length > 0) {
    throw new PageCheckError(`${name} (${page.url()}):\n${problems.join('\n')}`, {
      axe: axe.map((v) => v.id),
      keyboard: keyboard.failures,
    });
  }
  return { heading, violations: 0, focusables: keyboard.reached, screenshot };
}

let axeSource;

/** axe-core's violations of the WCAG tags, each { id, impact, help, targets }. */
async function axeViolations(page) {
  axeSource ??= readFileSync(tools.resolve('axe-core/axe.min.js'), 'utf8');
  // Evaluated through the DevTools protocol rather than a <script> tag, so the page's own
  // Content-Security-Policy (which should forbid inline scripts) does not block it.
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) {
    await page.evaluate(axeSource);
  }
  const result = await page.evaluate(
    (values) =>
      window.axe.run(document, { runOnly: { type: 'tag', values }, resultTypes: ['violations'] }),
    AXE_TAGS,
  );
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    targets: v.nodes.map((n) => n.target.join(' ')),
  }));
}

/**
 * Presses Tab from the top of the page until focus comes back round (or MAX_TABS presses),
 * recording each element focused and whether it showed a focus indicator then. Fails every
 * visible, enabled focusable element never reached and every focused element with no indicator.
 */
async function keyboardFailures(page) {
  await page.evaluate(() => {
    // A short, readable name for an element, for the failure messages.
    window.__outpostDescribe = (el) => {
      let text = el.tagName.toLowerCase();
      if (el.id) text += `#${el.id}`;
      for (const attr of ['type', 'name', 'href']) {
        const value = el.getAttribute(attr);
        if (value !== null) text += `[${attr}="${value}"]`;
      }
      const label =
        el.getAttribute('aria-label') || el.labels?.[0]?.innerText || el.innerText || el.value || '';
      const short = label.replace(/\s+/g, ' ').trim().slice(0, 60);
      return short ? `${text} "${short}"` : text;
    };
    // Focusing <body> also moves Chromium's sequential-focus starting point back to the top,
    // which a click or a #fragment may have moved.
    window.scrollTo(0, 0);
    const body = document.body;
    const tabindex = body.getAttribute('tabindex');
    body.setAttribute('tabindex', '-1');
    body.focus();
    if (tabindex === null) body.removeAttribute('tabindex');
    else body.setAttribute('tabindex', tabindex);
    window.__outpostFocused = [];
  });

  const unindicated = [];
  for (let presses = 0; presses < MAX_TABS; presses++) {
    await page.keyboard.press('Tab');
    const seen = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body || el === document.documentElement) return { done: true };
      // A date input takes several presses (day, month, year) while staying the active element.
      if (window.__outpostFocused.at(-1) === el) return { done: false, indicated: true, again: true };
      if (window.__outpostFocused.includes(el)) return { done: true };
      window.__outpostFocused.push(el);
      const style = getComputedStyle(el);
      const transparent = (color) => /^(transparent|rgba\(.*,\s*0\))$/.test(color);
      const outline =
        style.outlineStyle !== 'none' &&
        parseFloat(style.outlineWidth) > 0 &&
        !transparent(style.outlineColor);
      const shadow = style.boxShadow !== 'none' && style.boxShadow !== '';
      return { done: false, indicated: outline || shadow, what: window.__outpostDescribe(el) };
    });
    if (seen.done) break;
    if (!seen.indicated) unindicated.push(seen.what);
  }

  const { reached, unreached } = await page.evaluate((selector) => {
    const focused = window.__outpostFocused;
    const candidates = [...document.querySelectorAll(selector)].filter(
      (el) =>
        el.tabIndex >= 0 &&
        !el.matches(':disabled') &&
        !el.closest('[inert]') &&
        el.getClientRects().length > 0 &&
        el.checkVisibility({ visibilityProperty: true }),
    );
    // Tab visits one radio button per group; the arrow keys move within it.
    const group = (el) =>
      el.matches('input[type=radio][name]')
        ? candidates.filter(
            (o) => o.matches('input[type=radio]') && o.name === el.name && o.form === el.form,
          )
        : [el];
    const missed = candidates.filter((el) => !group(el).some((o) => focused.includes(o)));
    return { reached: focused.length, unreached: missed.map((el) => window.__outpostDescribe(el)) };
  }, FOCUSABLE);

  const failures = [
    ...unreached.map((d) => `never reached with Tab: ${d}`),
    ...unindicated.map((d) => `no visible focus indicator (outline or box-shadow): ${d}`),
  ];
  return { reached, failures };
}

/** A named step for `main`: `fn(ctx)` gets { input, browser, context, page, results }. */
export function step(name, fn) {
  return { name, fn };
}

/**
 * Runs `steps` in order with one browser, context and page, then prints one JSON line:
 * {"ok":true,"results":{...}} or {"ok":false,"error":"...","step":"..."} (and exits 1). With
 * `state` in the input, cookies and storage are loaded from that file when it exists and saved
 * to it after the last step, so a Rust test can run several scripts as one session.
 */
export async function main(steps) {
  let current = 'input';
  let browser;
  const results = {};
  try {
    const input = readInput();
    current = 'launch';
    const state = input.state;
    const launched = await launch({ storageState: state && existsSync(state) ? state : undefined });
    browser = launched.browser;
    const { context } = launched;
    const page = await context.newPage();
    for (const { name, fn } of steps) {
      current = name;
      const value = await fn({ input, browser, context, page, results });
      if (value !== undefined) results[name] = value;
    }
    current = 'save state';
    if (state) {
      mkdirSync(dirname(state), { recursive: true });
      await context.storageState({ path: state });
    }
    console.log(JSON.stringify({ ok: true, results }));
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    const failure = { ok: false, error, step: current };
    const screenshot = await failureScreenshot(browser, current);
    if (screenshot) failure.screenshot = screenshot;
    console.log(JSON.stringify(failure));
    if (e instanceof Error && e.stack) console.error(e.stack);
    process.exitCode = 1;
  } finally {
    await browser?.close().catch(() => {});
  }
}

/** A screenshot of the page a step failed on, named after the script and step; null if none. */
async function failureScreenshot(browser, stepName) {
  const page = browser?.contexts()[0]?.pages()[0];
  if (!page) return null;
  try {
    const script = basename(process.argv[1] ?? 'script', '.mjs');
    const safe = `${script}-failed-${stepName}`.replace(/[^A-Za-z0-9._-]+/g, '-');
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    const path = join(SCREENSHOT_DIR, `${safe}.png`);
    await page.screenshot({ path, fullPage: true, timeout: 5_000 });
    return path;
  } catch {
    return null;
  }
}
