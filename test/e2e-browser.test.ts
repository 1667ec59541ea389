import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { type DemoEnvironment, PROJECT_ROOT } from '../src/devtools/demo/environment.js';
import { incidentsSince } from '../src/devtools/demo/outcomes.js';
import { startTestEnvironment } from './helpers/demo-env.js';
import { ensureDebianPackages } from './helpers/prometheus.js';
import { eventually } from './helpers/test-app.js';

/** where the screenshot is kept (gitignored; CI keeps it as an artefact) */
const ARTIFACTS = `${PROJECT_ROOT}test-artifacts`;

/**
 * A person in a real browser: the stand-in's page shows the incident card of a bad deploy, alice clicks Approve on
 * the rollback, and the card turns Resolved. Debian's Chromium, driven by playwright-core.
 */
describe('browser: approve a rollback in the Slack stand-in page', { timeout: 1_800_000 }, () => {
  let env: DemoEnvironment;
  let browser: Browser;

  before(
    async () => {
      ensureDebianPackages([{ binary: '/usr/bin/chromium', pkg: 'chromium' }]);
      env = await startTestEnvironment();
      browser = await chromium.launch({
        executablePath: '/usr/bin/chromium',
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
      });
    },
    { timeout: 900_000 },
  );

  after(
    async () => {
      await browser?.close();
      await env?.close();
    },
    { timeout: 120_000 },
  );

  it('sees the card, clicks Approve, sees it resolved', { timeout: 600_000 }, async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    // nothing but the stand-in: a request anywhere else fails the test
    const offsite: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(env.standin.pageUrl)) offsite.push(r.url());
    });
    await page.goto(env.standin.pageUrl);
    await page.waitForTimeout(12_000); // normal traffic first, so the 15-second rates have a baseline

    const since = new Date(Date.now() - 1_000);
    await env.sandbox.inject('bad-deploy');

    // the card appears in #incidents; the approval packet is in its thread, as in Slack
    const card = page
      .locator('[data-testid="message"]', { hasText: 'payment-service' })
      .filter({ hasText: /Status\s*Awaiting approval/ })
      .first();
    await card.waitFor({ timeout: 180_000 });
    await card.getByTestId('replies').click();
    const thread = page.getByTestId('thread');
    const approve = thread.getByRole('button', { name: 'Approve' }).first();
    await approve.waitFor({ state: 'visible', timeout: 30_000 });
    await approve.click();
    // the button carries a confirm object: Slack asks first, and so does the page
    await page.getByTestId('confirm-dialog').getByRole('button', { name: 'Approve' }).click();

    await page
      .locator('[data-testid="message"]', { hasText: 'payment-service' })
      .filter({ hasText: /Status\s*Resolved/ })
      .first()
      .waitFor({ timeout: 180_000 });
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: `${ARTIFACTS}/browser-approve-resolved.png`, fullPage: true });

    // the bot's record agrees with the page: alice approved the rollback, it verified, the incident resolved
    const incident = await eventually(
      'the rollback to finish verifying',
      async () =>
        (await incidentsSince(env.db, since)).find(
          (o) => o.service === 'payment-service' && o.steps.some((s) => s.status === 'verified'),
        ),
      120_000,
    );
    assert.equal(incident.status, 'resolved');
    const rollback = incident.steps.find((s) => s.action === 'rollback');
    assert.equal(rollback?.approval?.status, 'approved');
    assert.equal(rollback?.approval?.decidedBy, 'U0001');
    assert.equal(rollback?.status, 'verified');
    assert.deepEqual(offsite, []);
  });
});
