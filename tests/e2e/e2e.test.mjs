// End-to-end: the demo page (web/) in headless Chromium, web/signal-client.js inside it, and
// build/signal-server, all in the private network namespace that run.sh sets up. Each test
// drives the page like a user and asserts on what the pages observed: their connection and
// call states, chat lines, event log, and the signaling frames their WebSockets carried.
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, Server, Tab, launchBrowser } from './lib.mjs';
import { SeedPeer } from './seed-peer.mjs';
import wrtc from '@roamhq/wrtc';
import { SignalClient, decodeSdp, encodeSdp } from '../../web/signal-client.js';

let server;
let browser;
const tabs = [];

before(async () => {
  const [s, b] = await Promise.allSettled([Server.start(), launchBrowser()]);
  server = s.value;
  browser = b.value;
  if (s.status === 'rejected') throw s.reason;
  if (b.status === 'rejected') throw b.reason;
}, { timeout: 30000 });

after(async () => {
  await browser?.close();
  if (!server) return;
  const status = await server.stop();
  server.cleanup();
  assert.deepEqual(status, { code: 0, signal: null }, 'the server exits cleanly on SIGTERM');
}, { timeout: 30000 });

/**
 * A new tab showing the demo, in a browser context of its own: a separate window (so that it
 * renders and runs at full speed while the other tab has the focus) and a separate profile.
 */
async function tab() {
  const context = await browser.newContext({ viewport: { width: 420, height: 860 } });
  const t = await Tab.open(context, server.url);
  tabs.push(t);
  return t;
}

afterEach(async () => {
  const errors = tabs.flatMap((t) => t.errors);
  await Promise.all(tabs.splice(0).map((t) => t.page.context().close()));
  assert.deepEqual(errors, [], 'no script errors in the pages');
});

/** Registers two tabs, a calls b, b accepts; both see the call connected. */
async function connectedPair(names, { trickle, camera = false }) {
  const [a, b] = [await tab(), await tab()];
  await Promise.all([a.goOnline(names[0]), b.goOnline(names[1])]);
  await a.dial(names[1], { trickle, camera });
  await b.page.setChecked('#camera', camera);
  await b.accept(names[0]);
  await Promise.all([a.waitCallState('connected'), b.waitCallState('connected')]);
  return [a, b];
}

/** A message each way over the call's data channel, seen on the other page. */
async function chatBothWays(a, b) {
  await a.say('hello from A');
  await b.waitChat('them', 'hello from A');
  await b.say('héllo from B ✓');
  await a.waitChat('them', 'héllo from B ✓');
}

test("seed flow: A calls B with POST /offer, B answers over its WebSocket, chat both ways", async () => {
  const [a, b] = await connectedPair(['seed-A', 'seed-B'], { trickle: false });
  await chatBothWays(a, b);

  // A offered with POST /offer (SDP with its candidates, and the list), not over the WebSocket.
  assert.equal(a.posts.length, 1);
  assert.match(a.posts[0].url, /\/offer$/);
  const req = JSON.parse(a.posts[0].body);
  assert.equal(req.answer_domain, 'seed-B');
  assert.equal(req.offer_domain, 'seed-A');
  assert.ok(req.candidate.length > 0, 'the offer lists its candidates');
  assert.ok(req.candidate.every((c) => typeof JSON.parse(c).sdpMid === 'string'), 'candidates keep sdpMid');
  assert.match(Buffer.from(req.offer_sdp, 'base64').toString(), /^v=0\r\n[\s\S]*a=candidate:/);
  assert.deepEqual(a.sentOf('offer'), []);
  // B got the push, answered with the id and complete candidates; nobody trickled.
  const [push] = b.receivedOf('offer');
  assert.equal(push.offer_req.offer_domain, 'seed-A');
  const [answer] = b.sentOf('answer');
  assert.equal(answer.id, push.id);
  assert.ok(answer.answer_resp.candidate.length > 0, 'the answer lists its candidates');
  assert.deepEqual([...a.sentOf('candidate'), ...b.sentOf('candidate')], []);
  assert.equal(a.receivedOf('answer')[0].id, push.id);
});

test('trickle ICE: offer and candidates over the WebSocket, camera on, chat both ways', async () => {
  const [a, b] = await connectedPair(['alice', 'bob'], { trickle: true, camera: true });
  await chatBothWays(a, b);

  assert.deepEqual(a.posts, [], 'no POST /offer');
  const [offer] = a.sentOf('offer');
  assert.equal(offer.offer_req.answer_domain, 'bob');
  assert.deepEqual(offer.offer_req.candidate, []);
  const [answer] = b.sentOf('answer');
  assert.equal(answer.id, offer.id);
  assert.deepEqual(answer.answer_resp.candidate, []);
  // Candidates went both ways as JSON texts of RTCIceCandidateInit, relayed with `from`.
  for (const [from, to, name] of [[a, b, 'alice'], [b, a, 'bob']]) {
    const got = to.receivedOf('candidate');
    assert.ok(from.sentOf('candidate').length > 0);
    assert.ok(got.length > 0);
    for (const f of got) {
      assert.equal(f.from, name);
      assert.equal(f.id, offer.id);
      for (const c of f.candidate) assert.match(JSON.parse(c).candidate, /^candidate:/);
    }
  }
  // Both cameras' video reached the other side and plays.
  for (const t of [a, b]) {
    await t.waitLog('remote video track');
    await t.page.waitForFunction(() => ['remote-video', 'local-video'].every((v) => document.getElementById(v).videoWidth > 0),
      null, { timeout: 10000 });
  }

  // The screenshot for the docs: A's page in a connected call with a chat going.
  const shot = join(ROOT, 'build/e2e/demo.png');
  mkdirSync(join(ROOT, 'build/e2e'), { recursive: true });
  await a.page.screenshot({ path: shot, fullPage: true });
  if (process.env.SIG_E2E_UPDATE_SCREENSHOT === '1' || !existsSync(join(ROOT, 'docs/demo.png')))
    copyFileSync(shot, join(ROOT, 'docs/demo.png'));
});

test("B's tab closes mid-call: A gets bye (disconnected) and the page reports it", async () => {
  const [a, b] = await connectedPair(['close-A', 'close-B'], { trickle: true });
  await b.page.close();
  await a.waitCallState('closed');
  await a.waitChat('note', 'close-B went offline.');
  await a.waitLog('bye from close-B (disconnected)');
  const [bye] = a.receivedOf('bye');
  assert.equal(bye.from, 'close-B');
  assert.equal(bye.reason, 'disconnected');
  assert.equal(await a.text('#conn'), 'online as close-A', 'A stays registered');
});

test('server restart: both tabs re-register by themselves, then a new call succeeds', async () => {
  const [a, b] = [await tab(), await tab()];
  await Promise.all([a.goOnline('restart-A'), b.goOnline('restart-B')]);
  assert.deepEqual(await server.stop(), { code: 0, signal: null });
  await Promise.all([a.waitLog('reconnecting in'), b.waitLog('reconnecting in')]);
  await server.start();
  await Promise.all([a.waitLog('online again (re-registered)'), b.waitLog('online again (re-registered)')]);
  await Promise.all([a.waitConn('open'), b.waitConn('open')]);
  assert.equal((await server.health()).domains, 2);

  await a.dial('restart-B', { trickle: true });
  await b.accept('restart-A');
  await Promise.all([a.waitCallState('connected'), b.waitCallState('connected')]);
  await chatBothWays(a, b);
});

test('errors and declines: an offline name gets the server error (both flows); a declined call gets bye', async () => {
  const [a, b] = [await tab(), await tab()];
  await Promise.all([a.goOnline('err-A'), b.goOnline('err-B')]);
  // Over the WebSocket the field is named with its path in the message (offer_req.…).
  for (const [trickle, field] of [[true, 'offer_req.answer_domain'], [false, 'answer_domain']]) {
    await a.dial('nobody', { trickle });
    await a.waitCallState('closed');
    await a.waitChat('note', `Error: ${field}: 'nobody' is not connected`);
  }
  // Trickle: an error frame with the call's id; seed flow: the 404 Resp of POST /offer.
  const [err] = a.receivedOf('error');
  assert.equal(err.status, 404);
  assert.equal(err.id, a.sentOf('offer')[0].id);
  await a.waitLog("call error 404: answer_domain: 'nobody' is not connected"); /* the POST's */

  await a.dial('err-B', { trickle: false });
  await b.page.locator('#incoming', { hasText: 'err-A' }).waitFor();
  await b.page.click('#decline');
  await a.waitCallState('closed');
  await a.waitChat('note', 'err-B hung up.');
  assert.equal(a.receivedOf('bye')[0].reason, 'hangup');
});

test('a second tab under the same name takes it over; the first stops without fighting back', async () => {
  const a = await tab();
  await a.goOnline('dup');
  const b = await tab();
  await b.goOnline('dup');
  await a.waitConn('closed');
  assert.equal(await a.text('#register-note'), 'Another tab or device took the name dup.');
  const [close] = await a.page.$$eval('#log li', (l) => l.map((li) => li.textContent).filter((t) => t.includes('closed')));
  assert.match(close, /server connection closed: 4000 replaced$/);
  await new Promise((r) => setTimeout(r, 1000)); // longer than the first re-registration delay
  assert.equal(await a.page.locator('#log li', { hasText: 'reconnecting' }).count(), 0);
  assert.equal(await b.text('#conn'), 'online as dup');
  assert.equal((await server.health()).domains, 1);
});

test('a seed-protocol peer in Node (@roamhq/wrtc) calls a browser tab', async () => {
  const b = await tab();
  await b.goOnline('browser-B');
  const node = new SeedPeer(server.url, 'node-A');
  try {
    await node.register();
    const calling = node.call('browser-B');
    await b.accept('node-A');
    await calling;
    await b.waitCallState('connected');
    // The browser answered a seed offer in kind: complete SDP and plain candidate lines.
    assert.ok(node.answer.answer_resp.candidate.length > 0);
    for (const c of node.answer.answer_resp.candidate) assert.match(c, /^candidate:/);
    assert.equal(node.answer.id, node.offerResp.data.id);
    node.channel.send('hello from node');
    await b.waitChat('them', 'hello from node');
    await b.say('hello from chromium');
    const deadline = Date.now() + 10000;
    while (!node.messages.includes('hello from chromium') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(node.messages, ['hello from chromium']);
  } finally {
    node.close();
  }
});

test('signal-client.js outside the browser: Node (@roamhq/wrtc) calls a browser tab, trickle ICE', async () => {
  const b = await tab();
  await b.goOnline('browser-C');
  const client = new SignalClient({ url: server.url, domain: 'node-C', RTCPeerConnection: wrtc.RTCPeerConnection });
  try {
    await client.connect();
    const call = client.call('browser-C', { dataChannel: 'chat' });
    const states = [];
    call.addEventListener('statechange', () => states.push(call.state));
    const got = new Promise((resolve) => {
      call.addEventListener('datachannel', (e) => { e.channel.onmessage = (m) => resolve(String(m.data)); });
    });
    await b.accept('node-C');
    await b.waitCallState('connected');
    await b.say('hello, node');
    assert.equal(await got, 'hello, node');
    assert.equal(call.state, 'connected');
    assert.deepEqual(states, ['connecting', 'connected']);
    assert.ok(b.receivedOf('candidate').length > 0, 'the Node side trickled');
    call.channel.send('hello, tab');
    await b.waitChat('them', 'hello, tab');
    call.hangup();
    await b.waitChat('note', 'node-C hung up.');
    assert.equal(call.endReason, 'hangup');
  } finally {
    client.close();
  }
});

test('SDP base64 is UTF-8 safe', () => {
  const sdp = 'v=0\r\ns=Grüße ☎ 通话\r\n';
  const b64 = encodeSdp(sdp);
  assert.equal(b64, Buffer.from(sdp, 'utf8').toString('base64'));
  assert.equal(decodeSdp(b64), sdp);
  assert.throws(() => decodeSdp(Buffer.from([0x76, 0x3d, 0xff]).toString('base64')));
});
