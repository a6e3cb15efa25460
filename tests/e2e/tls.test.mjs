// End-to-end over TLS: the demo page served by signal-server itself over https:// (its [tls] with
// a test CA made now by the openssl command line), two headless Chromium tabs that trust that CA
// (its key pinned with --ignore-certificate-errors-spki-list), and a call through wss://.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { Server, Tab, launchBrowser, makeTestCA } from './lib.mjs';

let pki;
let server;
let browser;

before(async () => {
  pki = makeTestCA();
  const [s, b] = await Promise.allSettled([
    Server.start({ tls: pki }),
    launchBrowser([`--ignore-certificate-errors-spki-list=${pki.caSpki}`]),
  ]);
  server = s.value;
  browser = b.value;
  if (s.status === 'rejected') throw s.reason;
  if (b.status === 'rejected') throw b.reason;
}, { timeout: 30000 });

after(async () => {
  await browser?.close();
  if (server) {
    const status = await server.stop();
    server.cleanup();
    assert.deepEqual(status, { code: 0, signal: null }, 'the server exits cleanly on SIGTERM');
  }
  if (pki) rmSync(pki.dir, { recursive: true, force: true });
}, { timeout: 30000 });

test('https:// page and wss:// signaling: two tabs complete a call and chat both ways', async () => {
  const tabs = [];
  const sockets = [];
  try {
    for (let i = 0; i < 2; i++) {
      const context = await browser.newContext({ viewport: { width: 420, height: 860 } });
      const page = await context.newPage();
      page.on('websocket', (ws) => sockets.push(ws.url()));
      const t = new Tab(page);
      await page.goto(server.url);
      tabs.push(t);
    }
    const [a, b] = tabs;
    for (const t of tabs) assert.equal(await t.page.evaluate(() => location.protocol), 'https:');
    await Promise.all([a.goOnline('tls-A'), b.goOnline('tls-B')]);
    await a.dial('tls-B', { trickle: true });
    await b.accept('tls-A');
    await Promise.all([a.waitCallState('connected'), b.waitCallState('connected')]);
    await a.say('hello over wss');
    await b.waitChat('them', 'hello over wss');
    await b.say('and back');
    await a.waitChat('them', 'and back');

    assert.deepEqual(sockets.sort(), [`wss://127.0.0.1:${server.port}/ws/tls-A`,
      `wss://127.0.0.1:${server.port}/ws/tls-B`]);
    const [offer] = a.sentOf('offer');
    assert.equal(b.receivedOf('offer')[0].id, offer.id);
    assert.equal(a.receivedOf('answer')[0].id, offer.id);
    assert.ok(b.receivedOf('candidate').length > 0, 'candidates relayed over wss://');
    assert.deepEqual(tabs.flatMap((t) => t.errors), [], 'no script errors in the pages');
    assert.equal((await server.health()).domains, 2);
  } finally {
    await Promise.all(tabs.map((t) => t.page.context().close()));
  }
});

test('a Chromium that does not trust the test CA refuses the page: the certificate is checked', async () => {
  const untrusting = await launchBrowser();
  try {
    const page = await untrusting.newPage();
    await assert.rejects(page.goto(server.url), /ERR_CERT_AUTHORITY_INVALID/);
  } finally {
    await untrusting.close();
  }
});
