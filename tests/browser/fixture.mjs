// The harness's own proof: checkPage must fail pages that break each rule it enforces and pass
// pages that keep them. Serves nothing; the pages are files under fixtures/. Each step reports
// { passed, summary } or { passed: false, error, axe, keyboard } for the Rust test to assert on.
import { pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkPage, main, PageCheckError, step } from './harness.mjs';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

/** Opens fixtures/`file` and checks it, reporting the outcome instead of throwing it. */
function outcome(file, heading, name) {
  return async ({ page }) => {
    await page.goto(pathToFileURL(join(fixtures, file)).href);
    try {
      return { passed: true, summary: await checkPage(page, { heading, name }) };
    } catch (e) {
      // Anything but a failed check (a crash in the harness itself) fails the whole script.
      if (!(e instanceof PageCheckError)) throw e;
      return { passed: false, error: e.message, ...e.failures };
    }
  };
}

await main([
  step('unlabelled', outcome('unlabelled.html', 'Fixture', 'fixture-unlabelled')),
  step('labelled', outcome('labelled.html', 'Fixture', 'fixture-labelled')),
  step('hidden focus', outcome('hidden-focus.html', 'Fixture', 'fixture-hidden-focus')),
  step('focus trap', outcome('focus-trap.html', 'Fixture', 'fixture-focus-trap')),
  step('strict csp', outcome('strict-csp.html', 'Fixture', 'fixture-strict-csp')),
  step('wrong heading', outcome('labelled.html', 'Caseload', 'fixture-wrong-heading')),
]);
