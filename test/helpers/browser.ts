// Headless Chromium for tests that look at a page as a person would: Debian's `chromium`
// driven by puppeteer-core (which never downloads a browser). Under CI=true a missing
// browser is a failure; locally the tests skip and say how to install it.
import { existsSync } from 'node:fs';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

export const INSTALL_CHROMIUM = 'apt-get install chromium';

/** The system browser: $CHROMIUM_PATH, or Debian's /usr/bin/chromium. */
export function findChromium(): string | null {
  const candidates = [process.env['CHROMIUM_PATH'], '/usr/bin/chromium', '/usr/bin/chromium-browser'];
  return candidates.find((p): p is string => Boolean(p) && existsSync(p!)) ?? null;
}

/** Whether browser tests run here: they skip only outside CI, with a message. */
export function browserTestsRun(): boolean {
  if (findChromium() || process.env['CI']) return true;
  console.warn(
    `browser tests skipped: no chromium found (install it with \`${INSTALL_CHROMIUM}\`, or set CHROMIUM_PATH)`,
  );
  return false;
}

export async function launchChromium(): Promise<Browser> {
  const executablePath = findChromium();
  if (!executablePath)
    throw new Error(
      `no chromium found for the browser tests (CI=${process.env['CI'] ?? ''}); install it with \`${INSTALL_CHROMIUM}\``,
    );
  return puppeteer.launch({ executablePath, args: ['--headless=new', '--no-sandbox', '--disable-gpu'] });
}

export interface OpenedPage {
  page: Page;
  /** Console errors and uncaught page errors, in order. */
  errors: string[];
  /** Every URL the page asked for (itself included). */
  requests: string[];
  loadMs: number;
}

export async function openFile(browser: Browser, file: string, width = 1280): Promise<OpenedPage> {
  const page = await browser.newPage();
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'assert') errors.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`page error: ${e instanceof Error ? e.message : String(e)}`));
  page.on('request', (r) => requests.push(r.url()));
  page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`));
  await page.setViewport({ width, height: 900 });
  const started = performance.now();
  await page.goto(`file://${file}`, { waitUntil: 'load' });
  return { page, errors, requests, loadMs: performance.now() - started };
}

/** Per canvas in the page: how many pixels are drawn, and how many have each given colour (hex). */
export async function canvasPixels(
  page: Page,
  selector: string,
  colours: string[] = [],
): Promise<{ drawn: number; colours: Record<string, number> }[]> {
  return page.$$eval(
    selector,
    (canvases, wanted) =>
      (canvases as HTMLCanvasElement[]).map((canvas) => {
        const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
        const rgb = wanted.map((hex) => [
          parseInt(hex.slice(1, 3), 16),
          parseInt(hex.slice(3, 5), 16),
          parseInt(hex.slice(5, 7), 16),
        ]);
        const counts = wanted.map(() => 0);
        let drawn = 0;
        for (let i = 0; i < data.length; i += 4) {
          if (data[i + 3] === 0) continue;
          drawn++;
          rgb.forEach(([r, g, b], k) => {
            if (
              data[i + 3]! > 200 &&
              Math.abs(data[i]! - r!) < 8 &&
              Math.abs(data[i + 1]! - g!) < 8 &&
              Math.abs(data[i + 2]! - b!) < 8
            )
              counts[k]!++;
          });
        }
        return { drawn, colours: Object.fromEntries(wanted.map((hex, k) => [hex, counts[k]!])) };
      }),
    colours,
  );
}
