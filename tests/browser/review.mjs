// A team lead's review in Chromium, one phase per run (the Rust test syncs devices between
// them; `state` carries the session across). Every page is checked by `checkPage`: its own
// heading, axe-core's WCAG 2.2 AA rules, every control reachable by Tab with visible focus, and
// a screenshot. Signing in and deciding are done with the keyboard alone.
//
// Input: { base, username, password, visit, person, personName, phase, state, comment }.
// Phases: "return" (sign in, queue, visit and its authorship, return with a comment, person
// page, caseload, a missing record), "approve", "changed" (changed since approval, sign out, and
// the pages refuse the old session).
import { checkPage as check, main, step } from './harness.mjs';

/** Every page checked in this run, reported by the last step. */
const checked = [];
async function checkPage(page, expected) {
  const result = await check(page, expected);
  checked.push(result);
  return result;
}

const visitHeading = (input) => `Visit to ${input.personName}`;

async function expectText(page, text) {
  const body = await page.locator('main').innerText();
  if (!body.includes(text)) throw new Error(`expected ${JSON.stringify(text)} on ${page.url()}`);
}

/** Tabs forward until the focused element matches `selector`, then returns. */
async function tabTo(page, selector, limit = 80) {
  for (let i = 0; i < limit; i++) {
    await page.keyboard.press('Tab');
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return;
  }
  throw new Error(`Tab never reached ${selector} on ${page.url()}`);
}

/** Opens the visit from the queue by keyboard: Tab to its link, Enter. */
async function openVisitFromQueue(page, input) {
  await page.goto(`${input.base}/review`);
  await checkPage(page, { heading: 'Review queue', name: `queue-${input.phase}` });
  await page.locator('body').focus();
  await tabTo(page, `a[href="/review/visits/${input.visit}"]`);
  await Promise.all([page.waitForURL((url) => url.pathname === `/review/visits/${input.visit}`), page.keyboard.press('Enter')]);
  return checkPage(page, { heading: visitHeading(input), name: `visit-${input.phase}` });
}

/** Decides by keyboard: the comment typed, then Tab to the button and Enter. */
async function decide(page, input, button, comment) {
  if (comment) {
    await page.locator('body').focus();
    await tabTo(page, '#comment');
    await page.keyboard.type(comment);
  }
  await tabTo(page, `button[value="${button}"]`);
  await Promise.all([page.waitForURL((url) => url.searchParams.get('decided') === button), page.keyboard.press('Enter')]);
  await checkPage(page, { heading: visitHeading(input), name: `visit-after-${button}` });
}

const returnPhase = [
  step('sign in by keyboard', async ({ page, input }) => {
    await page.goto(`${input.base}/review`);
    if (!page.url().includes('/login?next=/review')) throw new Error(`not sent to sign in: ${page.url()}`);
    await checkPage(page, { heading: 'Sign in', name: 'sign-in' });
    await page.locator('body').focus();
    await tabTo(page, '#username');
    await page.keyboard.type(input.username);
    await page.keyboard.press('Tab');
    await page.keyboard.type(input.password);
    await Promise.all([page.waitForURL((url) => url.pathname === '/review'), page.keyboard.press('Enter')]);
    return checkPage(page, { heading: 'Review queue', name: 'queue-signed-in' });
  }),
  step('find the visit', async ({ page, input }) => {
    const row = page.locator('tbody tr', { has: page.locator(`a[href="/review/visits/${input.visit}"]`) });
    if ((await row.count()) !== 1) throw new Error('the submitted visit is not in the queue');
    const text = await row.innerText();
    if (!text.includes(input.personName) || !text.includes('Submitted')) throw new Error(`row reads ${text}`);
    return openVisitFromQueue(page, input);
  }),
  step('read its authorship', async ({ page }) => {
    const authors = await page.locator('ol.authors li').allInnerTexts();
    const marks = await page.locator('.text .who').allInnerTexts();
    const attention = await page.locator('#attention + ul').innerText();
    return { authors, marks: [...new Set(marks)], attention };
  }),
  step('return it with a comment', async ({ page, input }) => {
    await decide(page, input, 'return', input.comment);
    await expectText(page, 'Returned with your comment');
    await expectText(page, input.comment);
  }),
  step('person page', async ({ page, input }) => {
    await page.goto(`${input.base}/review/people/${input.person}`);
    return checkPage(page, { heading: input.personName, name: 'person' });
  }),
  step('caseload', async ({ page, input }) => {
    await page.goto(`${input.base}/review/caseload`);
    await expectText(page, 'People by risk tier');
    return checkPage(page, { heading: 'Caseload', name: 'caseload' });
  }),
  step('filters', async ({ page, input }) => {
    await page.goto(`${input.base}/review?state=returned&person=${encodeURIComponent(input.personName.slice(0, 4))}`);
    await checkPage(page, { heading: 'Review queue', name: 'queue-filtered' });
    await expectText(page, '1 visit,');
  }),
  step('a bad filter', async ({ page, input }) => {
    const response = await page.goto(`${input.base}/review?from=31%2F12%2F2026`);
    if (response.status() !== 400) throw new Error(`status ${response.status()}`);
    await expectText(page, 'from date');
    return checkPage(page, { heading: 'Something in the request was wrong', name: 'bad-request' });
  }),
  step('on a tablet', async ({ page, input }) => {
    await page.setViewportSize({ width: 820, height: 1180 });
    await page.goto(`${input.base}/review/visits/${input.visit}`);
    const result = await checkPage(page, { heading: visitHeading(input), name: 'visit-tablet' });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
    if (overflow) throw new Error('the visit page scrolls sideways on a tablet');
    await page.setViewportSize({ width: 1280, height: 900 });
    return result;
  }),
  step('a record that is not there', async ({ page, input }) => {
    const response = await page.goto(`${input.base}/review/visits/not-a-visit`);
    if (response.status() !== 404) throw new Error(`status ${response.status()}`);
    return checkPage(page, { heading: 'Not found', name: 'not-found' });
  }),
];

const approvePhase = [
  step('approve', async ({ page, input }) => {
    await openVisitFromQueue(page, input);
    await decide(page, input, 'approve');
    await expectText(page, 'Approved.');
  }),
];

const changedPhase = [
  step('changed since approval', async ({ page, input }) => {
    await page.goto(`${input.base}/review`);
    const row = page.locator('tbody tr', { has: page.locator(`a[href="/review/visits/${input.visit}"]`) });
    if (!(await row.innerText()).includes('Changed since approval')) throw new Error('not back in the queue as changed');
    await openVisitFromQueue(page, input);
    const banner = await page.locator('section[aria-labelledby="changed"]').innerText();
    return { banner };
  }),
  step('sign out', async ({ page, context, input }) => {
    const before = await context.cookies(input.base);
    await page.locator('body').focus();
    await tabTo(page, 'form.sign-out button');
    await Promise.all([page.waitForURL((url) => url.searchParams.has('signed_out')), page.keyboard.press('Enter')]);
    await checkPage(page, { heading: 'Sign in', name: 'signed-out' });
    await expectText(page, 'You have signed out.');
    for (const path of ['/review', `/review/visits/${input.visit}`, `/review/people/${input.person}`]) {
      await page.goto(`${input.base}${path}`);
      if (!page.url().includes('/login')) throw new Error(`${path} was shown after signing out`);
    }
    // The old session cookie, presented again, is refused too: it ended on the server.
    await context.addCookies(before);
    await page.goto(`${input.base}/review`);
    if (!page.url().includes('/login')) throw new Error('the ended session still opened the queue');
    return { refused: true };
  }),
];

const phases = { return: returnPhase, approve: approvePhase, changed: changedPhase };
const chosen = phases[JSON.parse(process.env.OUTPOST_BROWSER_INPUT ?? '{}').phase];
if (!chosen) throw new Error('phase must be one of return, approve, changed');
await main([...chosen, step('pages checked', () => checked)]);
