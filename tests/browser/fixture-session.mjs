// Proves a session survives between scripts: with `state` in the input, a cookie set in one run
// is there in the next. Input: { state, remember?: value to set, expect?: value to require }.
import { main, step } from './harness.mjs';

const SITE = 'https://outpost.test';
const COOKIE = 'outpost-fixture';

await main([
  step('remember', async ({ context, input }) => {
    if (input.remember !== undefined) {
      await context.addCookies([{ name: COOKIE, value: input.remember, url: SITE }]);
    }
  }),
  step('recall', async ({ context, input }) => {
    const cookie = (await context.cookies(SITE)).find((c) => c.name === COOKIE)?.value ?? null;
    if (input.expect !== undefined && cookie !== input.expect) {
      throw new Error(`expected cookie ${JSON.stringify(input.expect)}, found ${JSON.stringify(cookie)}`);
    }
    return { cookie };
  }),
]);
