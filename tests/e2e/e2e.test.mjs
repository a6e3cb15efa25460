// End-to-end: the demo page (web/) in headless Chromium, web/signal-client.js inside it, and
// build/signal-server, all in the private network namespace that run.sh sets up. Each test
// drives the page like a user and asserts on what the pages observed: their connection and
// call states, chat lines, event log, and the signaling frames their WebSockets carried.
import { after, afterEach, before, test as nodeTest } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, Server, Tab, launchBrowser } from './lib.mjs';
import { SeedPeer } from './seed-peer.mjs';
import wrtc from '@roamhq/wrtc';
import { CLOSE, SignalClient, decodeSdp, encodeSdp } from '../../web/signal-client.js';

/* One minute per test; run.sh's --test-timeout bounds the whole file. */
const test = (name, fn) => nodeTest(name, { timeout: 60000 }, fn);

let server;
let authServer; /* the same binary with JWT auth on */
let browser;
const tabs = [];

before(async () => {
  const [s, a, b] = await Promise.allSettled([Server.start(), Server.start({ auth: true }), launchBrowser()]);
  [server, authServer, browser] = [s.value, a.value, b.value];
  for (const r of [s, a, b]) if (r.status === 'rejected') throw r.reason;
}, { timeout: 30000 });

after(async () => {
  await browser?.close();
  for (const srv of [server, authServer]) {
    if (!srv) continue;
    const status = await srv.stop();
    srv.cleanup();
    assert.deepEqual(status, { code: 0, signal: null }, 'the server exits cleanly on SIGTERM');
  }
}, { timeout: 30000 });

/**
 * A new tab showing the demo, in a browser context of its own: a separate window (so that it
 * renders and runs at full speed while the other tab has the focus) and a separate profile.
 */
async function tab(srv = server) {
  const context = await browser.newContext({ viewport: { width: 420, height: 860 } });
  const t = await Tab.open(context, srv.url);
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

/** ws://…/ws/{domain}?access_token=… as the client opens it on srv. */
function wsUrl(srv, domain, token) {
  return `ws://127.0.0.1:${srv.port}/ws/${domain}?access_token=${encodeURIComponent(token)}`;
}

test('auth: two tabs with their own tokens complete a call; the calls claim limits whom a token calls', async () => {
  const [tokenA, tokenB] = await Promise.all([authServer.token('auth-A', { calls: ['auth-B*'] }), authServer.token('auth-B')]);
  const [a, b] = [await tab(authServer), await tab(authServer)];
  await Promise.all([a.goOnline('auth-A', tokenA), b.goOnline('auth-B', tokenB)]);
  assert.deepEqual(a.sockets, [wsUrl(authServer, 'auth-A', tokenA)]);
  assert.deepEqual(b.sockets, [wsUrl(authServer, 'auth-B', tokenB)]);
  assert.equal((await authServer.health()).domains, 2);

  // The seed flow: the offer is a POST /offer carrying the token.
  await a.dial('auth-B', { trickle: false });
  await b.accept('auth-A');
  await Promise.all([a.waitCallState('connected'), b.waitCallState('connected')]);
  await chatBothWays(a, b);
  assert.equal(a.posts.length, 1);
  assert.equal(a.posts[0].authorization, `Bearer ${tokenA}`);
  await a.page.click('#hangup');
  await b.waitChat('note', 'auth-A hung up.');

  // A's token allows calling auth-B* only: refused over the WebSocket and by POST /offer alike.
  for (const [trickle, field] of [[true, 'offer_req.answer_domain'], [false, 'answer_domain']]) {
    await a.dial('auth-C', { trickle });
    await a.waitChat('note', `Error: ${field}: your token does not allow calling 'auth-C'`);
  }
  assert.equal(a.receivedOf('error')[0].status, 403);
  await a.waitLog("call error 403: answer_domain: your token does not allow calling 'auth-C'"); /* the POST's */
  assert.equal(await a.text('#conn'), 'online as auth-A');
});

test("auth: a tab with another domain's token is refused (4403), one without a valid token too (4401); the page says why", async () => {
  const tokenB = await authServer.token('auth-B2');
  const t = await tab(authServer);
  const attempts = [
    [tokenB, 'The server refused auth-X: 4403 token is not for this domain.'],
    ['', 'The server refused auth-X: 4401 token missing. It needs a valid token for this name.'],
    [`${tokenB}x`, 'The server refused auth-X: 4401 token invalid. It needs a valid token for this name.'],
  ];
  for (const [token, note] of attempts) {
    await t.page.fill('#domain', 'auth-X');
    await t.page.fill('#token', token);
    await t.page.click('#register');
    await t.page.locator('#register-note', { hasText: note }).waitFor({ state: 'visible', timeout: 10000 });
    await t.waitConn('closed');
    assert.equal(await t.page.textContent('#register'), 'Go online');
  }
  const closes = await t.page.$$eval('#log li', (l) => l.map((li) => li.textContent)
    .filter((x) => x.includes('server connection closed')).map((x) => x.slice(x.indexOf('server connection closed'))));
  assert.deepEqual(closes, [
    'server connection closed: 4403 token is not for this domain',
    'server connection closed: 4401 token missing',
    'server connection closed: 4401 token invalid',
  ]);
  // Each refusal stopped the client at once: one WebSocket per press, no retry scheduled.
  assert.deepEqual(t.sockets, [wsUrl(authServer, 'auth-X', tokenB), `ws://127.0.0.1:${authServer.port}/ws/auth-X`,
    wsUrl(authServer, 'auth-X', `${tokenB}x`)]);
  assert.equal(await t.page.locator('#log li', { hasText: 'reconnecting' }).count(), 0);
  assert.equal((await authServer.health()).domains, 0);
});

/** Resolves with the next event of type on target for which pred holds. */
function next(target, type, pred = () => true) {
  return new Promise((resolve) => {
    const on = (e) => { if (pred(e)) { target.removeEventListener(type, on); resolve(e); } };
    target.addEventListener(type, on);
  });
}

test('signal-client.js token function: a fresh token for every connection; a refusal gets one more try, a second stops', async () => {
  const urls = [];
  class RecordingWebSocket extends WebSocket {
    constructor(url, protocols) {
      urls.push(url);
      super(url, protocols);
    }
  }
  const clients = [];
  const client = (options) => {
    const c = new SignalClient({ url: authServer.url, WebSocket: RecordingWebSocket, reconnect: { minDelay: 50, maxDelay: 400 }, ...options });
    c.closes = [];
    c.addEventListener('close', (e) => c.closes.push([e.code, e.reason, e.reconnect]));
    clients.push(c);
    return c;
  };
  try {
    /* The first token is garbage (4401 token invalid); later ones are good, each different (ttl). */
    const issued = [];
    const a = client({ domain: 'fn-A', token: async () => {
      const t = issued.length === 0 ? 'garbage' : await authServer.token('fn-A', { ttl: 3600 + issued.length });
      issued.push(t);
      return t;
    } });
    const reopened = next(a, 'open', () => a.closes.length === 1);
    await a.connect(); /* resolves at the refused connection's open: the server refuses right after the upgrade */
    await reopened;
    assert.deepEqual(a.closes, [[CLOSE.UNAUTHORIZED, 'token invalid', true]]);
    assert.equal(issued.length, 2);
    assert.equal((await authServer.health()).domains, 1, 'the second token registered fn-A');

    // A server restart: every attempt to re-register asks for a token of its own.
    const dropped = next(a, 'reconnecting');
    assert.deepEqual(await authServer.stop(), { code: 0, signal: null });
    await dropped;
    const back = next(a, 'open');
    await authServer.start();
    assert.equal((await back).reconnected, true);
    assert.equal((await authServer.health()).domains, 1);
    assert.ok(issued.length >= 3);
    assert.equal(new Set(issued).size, issued.length, 'every token is new');
    assert.deepEqual(urls, issued.map((t) => wsUrl(authServer, 'fn-A', t)));
    a.close();

    // A function whose tokens are always refused: two tries, then the client stops for good.
    let calls = 0;
    const b = client({ domain: 'fn-B', token: () => { calls++; return 'garbage'; } });
    const stopped = next(b, 'close', (e) => !e.reconnect || b.closes.length > 2);
    b.connect().catch(() => {});
    await stopped;
    assert.deepEqual(b.closes, [[CLOSE.UNAUTHORIZED, 'token invalid', true], [CLOSE.UNAUTHORIZED, 'token invalid', false]]);
    assert.equal(calls, 2);
    assert.equal(b.state, 'closed');

    // A token string for another domain: refused once (4403), never retried.
    const before = urls.length;
    const tokenForA = await authServer.token('fn-A');
    const c = client({ domain: 'fn-C', token: tokenForA });
    const forbidden = next(c, 'close');
    c.connect().catch(() => {});
    await forbidden;
    assert.deepEqual(c.closes, [[CLOSE.FORBIDDEN, 'token is not for this domain', false]]);
    assert.equal(c.state, 'closed');
    assert.deepEqual(urls.slice(before), [wsUrl(authServer, 'fn-C', tokenForA)]);
  } finally {
    for (const c of clients) c.close();
  }
});

test('signal-client.js token function after a key rotation: a refused POST /offer (401) is sent again with a fresh token', async () => {
  const authorizations = [];
  const recordingFetch = (url, init) => {
    /* the POST /offer requests (the client also asks GET /turn-credentials before a call) */
    if (init.method === 'POST') authorizations.push([init.headers.Authorization, url]);
    return fetch(url, init);
  };
  let a;
  let b;
  try {
    const tokenA = await authServer.token('rot-A');
    /* tokenA to register; once a POST /offer went out, a fresh one (with whatever key is current). */
    const options = { url: authServer.url, RTCPeerConnection: wrtc.RTCPeerConnection };
    a = new SignalClient({ ...options, domain: 'rot-A', fetch: recordingFetch, trickle: false,
      token: async () => (authorizations.length ? authServer.token('rot-A', { ttl: 600 }) : tokenA) });
    /* The callee is a browser tab: two @roamhq/wrtc ends of one call in this process crash it
       at exit now and then (a SIGSEGV in the addon's teardown, after every test passed). */
    b = await tab(authServer);
    await Promise.all([a.connect(), b.goOnline('rot-B', await authServer.token('rot-B'))]);

    // A new key: registered connections stay, tokens signed with the old key no longer pass.
    writeFileSync(join(authServer.dir, 'secret.key'), randomBytes(48));
    authServer.proc.kill('SIGHUP');
    const postWithTokenA = async () => {
      const r = await fetch(new URL('offer', authServer.url), { method: 'POST', headers: { Authorization: `Bearer ${tokenA}` }, body: '{}' });
      await r.arrayBuffer();
      return r.status;
    };
    const deadline = Date.now() + 5000;
    while ((await postWithTokenA()) !== 401) { /* 400 (the empty body) while the old key holds */
      assert.ok(Date.now() < deadline, 'the server reads the new key within 5 s of SIGHUP');
      await new Promise((r) => setTimeout(r, 50));
    }

    const call = a.call('rot-B', { dataChannel: 'chat' });
    const errors = [];
    call.addEventListener('error', (e) => errors.push(e.error.message));
    await b.accept('rot-A');
    await next(call, 'statechange', () => call.state === 'connected' || call.state === 'closed');
    assert.deepEqual(errors, []);
    assert.equal(call.state, 'connected');
    assert.equal(authorizations.length, 2);
    assert.deepEqual(authorizations[0], [`Bearer ${tokenA}`, a.offerUrl]);
    assert.notEqual(authorizations[1][0], authorizations[0][0]);
    assert.match(authorizations[1][0], /^Bearer eyJ/);
    call.hangup();
    await b.waitChat('note', 'rot-A hung up.');
  } finally {
    a?.close();
  }
});

test('SDP base64 is UTF-8 safe', () => {
  const sdp = 'v=0\r\ns=Grüße ☎ 通话\r\n';
  const b64 = encodeSdp(sdp);
  assert.equal(b64, Buffer.from(sdp, 'utf8').toString('base64'));
  assert.equal(decodeSdp(b64), sdp);
  assert.throws(() => decodeSdp(Buffer.from([0x76, 0x3d, 0xff]).toString('base64')));
});
