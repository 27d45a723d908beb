// The chat page in a real browser under `pef-ws serve --workers 4`: two Chromium pages served by
// different workers see each other's lines (the queue goes through the primary), and a page whose
// connection drops comes back with its last id and shows the lines it missed, in order, once: when
// it goes offline by its own button, and when the server drops it (its worker killed).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, skipWithoutChromium } from '../helpers/chromium.js';
import { serve } from '../helpers/serve.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const demo = join(root, 'examples', 'wstest');

/** The chat lines the page shows (not its notes), in order. */
const lines = (page: Page): Promise<string[]> => page.locator('#log div.line').allTextContents();

async function workerOf(page: Page): Promise<number> {
  await page.locator('#status', { hasText: 'served by worker' }).waitFor();
  return page.evaluate(() => (globalThis as unknown as { chat: { worker: number } }).chat.worker);
}

async function say(page: Page, text: string): Promise<void> {
  await page.fill('#text', text);
  await page.press('#text', 'Enter');
}

/**
 * Opens Ann's page, then Bob's, reloading Bob's until another worker serves it (the cluster hands
 * connections round); `prepare` runs on Ann's page before it loads.
 */
async function twoPagesOnTwoWorkers(browser: Browser, http: string, room: string, prepare?: (page: Page) => Promise<void>) {
  const ann = await browser.newPage();
  await prepare?.(ann);
  await ann.goto(`${http}chat.html?nick=ann&room=${room}`);
  const annWorker = await workerOf(ann);
  await ann.locator('#log div.line', { hasText: '* ann joined' }).waitFor();
  const bob = await browser.newPage();
  let bobWorker = annWorker;
  for (let attempt = 0; attempt < 20 && bobWorker === annWorker; attempt++) {
    await bob.goto(`${http}chat.html?nick=bob&room=${room}`);
    bobWorker = await workerOf(bob);
  }
  assert.notEqual(bobWorker, annWorker, 'the two pages are served by different workers');
  return { ann, annWorker, bob };
}

test('two chat pages on different workers see each other; a page that went away gets what it missed, in order', { skip: skipWithoutChromium }, async (t) => {
  const server = await serve([join(demo, 'app', 'WSTest', 'WebSocket'), '--static', join(demo, 'templates'), '--workers', '4']);
  t.after(() => server.stop());
  const browser = await launchChromium();
  t.after(() => browser.close());
  const { ann, bob } = await twoPagesOnTwoWorkers(browser, server.http, 'browser');
  await ann.locator('#log div.line', { hasText: '* bob joined' }).last().waitFor();

  await say(ann, 'hi bob, from ann');
  await bob.locator('#log div.line', { hasText: 'ann: hi bob, from ann' }).waitFor();
  await say(bob, 'hi ann <b>!</b>');
  await ann.locator('#log div.line', { hasText: 'bob: hi ann <b>!</b>' }).waitFor();

  // Ann goes away; Bob talks on; Ann comes back with her last id.
  await ann.click('#disconnect');
  await ann.locator('#status', { hasText: 'disconnected' }).waitFor();
  for (const text of ['missed one', 'missed two', 'missed three']) await say(bob, text);
  await bob.locator('#log div.line', { hasText: 'bob: missed three' }).waitFor();
  await ann.click('#connect');
  await ann.locator('#log div.line', { hasText: 'bob: missed three' }).waitFor();
  await say(bob, 'welcome back');
  await ann.locator('#log div.line', { hasText: 'bob: welcome back' }).waitFor();

  const expected = ['ann: hi bob, from ann', 'bob: hi ann <b>!</b>', 'bob: missed one', 'bob: missed two', 'bob: missed three', 'bob: welcome back'];
  const annLines = await lines(ann);
  // Every line once, in order, after the joins (Bob's page may have joined more than once).
  assert.deepEqual(annLines.filter((text) => !text.startsWith('* ')), expected);
  assert.deepEqual((await lines(bob)).filter((text) => !text.startsWith('* ')), expected);
  assert.equal(annLines[0], '* ann joined');
});

test('a page whose worker is killed (SIGKILL) reconnects by itself with its last id and shows the lines it missed, in order, once', { skip: skipWithoutChromium }, async (t) => {
  const server = await serve([join(demo, 'app', 'WSTest', 'WebSocket'), '--static', join(demo, 'templates'), '--workers', '2']);
  t.after(() => server.stop());
  const browser = await launchChromium();
  t.after(() => browser.close());
  // Ann's page runs on a clock the test moves: its reconnect (a 1 s timer after the drop) happens
  // only once the lines it is to miss have been said, whatever the machine's load.
  const { ann, annWorker, bob } = await twoPagesOnTwoWorkers(browser, server.http, 'killed', (page) => page.clock.install());
  await say(bob, 'before the drop');
  await ann.locator('#log div.line', { hasText: 'bob: before the drop' }).waitFor();

  // The server drops Ann: her worker dies. Her page sees 1006 (no Close frame) and waits to retry.
  process.kill(annWorker, 'SIGKILL');
  await ann.locator('#status', { hasText: 'disconnected (1006)' }).waitFor();
  for (const text of ['missed one', 'missed two', 'missed three']) await say(bob, text);
  await bob.locator('#log div.line', { hasText: 'bob: missed three' }).waitFor();
  assert.equal(await ann.locator('#log div.line', { hasText: 'missed' }).count(), 0, 'nothing reached Ann while she was away');

  await ann.clock.runFor(1000); // the page's retry timer fires: it reconnects with its last id
  const newWorker = await workerOf(ann);
  assert.notEqual(newWorker, annWorker, 'a live worker serves the reconnected page');
  await ann.locator('#log div.line', { hasText: 'bob: missed three' }).waitFor();
  await say(bob, 'welcome back');
  await ann.locator('#log div.line', { hasText: 'bob: welcome back' }).waitFor();

  const expected = ['bob: before the drop', 'bob: missed one', 'bob: missed two', 'bob: missed three', 'bob: welcome back'];
  assert.deepEqual((await lines(ann)).filter((text) => !text.startsWith('* ')), expected);
  assert.deepEqual((await lines(bob)).filter((text) => !text.startsWith('* ')), expected);
});
