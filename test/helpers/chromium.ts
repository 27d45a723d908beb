// Debian's Chromium, driven by playwright-core, for the tests that use a real browser. The flags
// keep it off the network this machine does not have (background services, QUIC, updates).

import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Where `apt-get install chromium` puts it; never a browser downloaded by a test tool. */
export const CHROMIUM = '/usr/bin/chromium';

/** false when Chromium is there, else the reason a browser test is skipped. */
export const skipWithoutChromium: false | string = existsSync(CHROMIUM)
  ? false
  : `no Chromium at ${CHROMIUM} (apt-get install chromium): the browser test did not run`;

/** Starts headless Chromium. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
