// End-to-end through a real TURN server: Debian's coturn (`turnserver`, use-auth-secret) started
// here on the namespace's veth address, signal-server handing out its credentials on
// GET /turn-credentials, and demo tabs that take their ICE servers from there with relay-only ICE
// (?relay=1). Negative controls: credentials made with another secret, and credentials past their
// expiry, are refused by coturn (no relay candidate, no call).
import { after, afterEach, before, test as nodeTest } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { SignalClient } from '../../web/signal-client.js';
import { Server, Tab, TurnServer, launchBrowser } from './lib.mjs';

const test = (name, fn) => nodeTest(name, { timeout: 60000 }, fn);

let turn;
let server; /* shares coturn's secret */
let wrongServer; /* [turn] with another secret */
let browser;
const tabs = [];
const secret = randomBytes(24).toString('hex');

before(async () => {
  turn = await TurnServer.start({ secret });
  const [s, w, b] = await Promise.allSettled([
    Server.start({ turn: { secret, uris: [turn.uri] } }),
    Server.start({ turn: { secret: randomBytes(24).toString('hex'), uris: [turn.uri] } }),
    launchBrowser(),
  ]);
  [server, wrongServer, browser] = [s.value, w.value, b.value];
  for (const r of [s, w, b]) if (r.status === 'rejected') throw r.reason;
}, { timeout: 30000 });

after(async () => {
  await browser?.close();
  for (const srv of [server, wrongServer]) {
    if (!srv) continue;
    const status = await srv.stop();
    srv.cleanup();
    assert.deepEqual(status, { code: 0, signal: null }, 'the server exits cleanly on SIGTERM');
  }
  if (turn) {
    await turn.stop();
    turn.cleanup();
  }
}, { timeout: 30000 });

afterEach(async () => {
  const errors = tabs.flatMap((t) => t.errors);
  await Promise.all(tabs.splice(0).map((t) => t.page.context().close()));
  assert.deepEqual(errors, [], 'no script errors in the pages');
});

/** A demo tab with relay-only ICE whose RTCPeerConnections (the browser's own) are kept in window.__pcs. */
async function relayTab(srv) {
  const context = await browser.newContext({ viewport: { width: 420, height: 860 } });
  await context.addInitScript(() => {
    const Native = window.RTCPeerConnection;
    window.__pcs = [];
    window.RTCPeerConnection = class extends Native {
      constructor(...args) {
        super(...args);
        window.__pcs.push(this);
      }
    };
  });
  const t = await Tab.open(context, `${srv.url}?relay=1`);
  tabs.push(t);
  return t;
}

/** The call's RTCPeerConnection: its ICE policy and the selected pair's candidate types and addresses. */
function selectedPair(t) {
  return t.page.evaluate(async () => {
    const pc = window.__pcs.at(-1);
    const stats = await pc.getStats();
    let pair = null;
    stats.forEach((r) => { if (r.type === 'transport' && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId); });
    const local = pair && stats.get(pair.localCandidateId);
    const remote = pair && stats.get(pair.remoteCandidateId);
    const localTypes = [];
    stats.forEach((r) => { if (r.type === 'local-candidate') localTypes.push(r.candidateType); });
    return {
      policy: pc.getConfiguration().iceTransportPolicy,
      iceServers: pc.getConfiguration().iceServers.map((s) => s.urls).flat(),
      local: local && { type: local.candidateType, address: local.address, relayProtocol: local.relayProtocol },
      remote: remote && { type: remote.candidateType, address: remote.address },
      localTypes,
      state: pc.iceConnectionState,
    };
  });
}

/**
 * In a tab: a relay-only RTCPeerConnection with these ICE servers gathers its candidates; resolves
 * to their types ([] when the TURN server refused the allocation).
 */
function gatherRelay(t, iceServers) {
  return t.page.evaluate(async (servers) => {
    const pc = new RTCPeerConnection({ iceServers: servers, iceTransportPolicy: 'relay' });
    const types = [];
    pc.onicecandidate = (e) => { if (e.candidate && e.candidate.candidate) types.push(e.candidate.type); };
    pc.createDataChannel('probe');
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, 10000);
      const check = () => { if (pc.iceGatheringState === 'complete') { clearTimeout(timer); resolve(); } };
      pc.onicegatheringstatechange = check;
      check();
    });
    pc.close();
    return types;
  }, iceServers);
}

/** A TURN REST credential computed here, independently of the server. */
function credentialFor(username, key = secret) {
  return createHmac('sha1', key).update(username).digest('base64');
}

test('relay-only call through coturn with credentials from /turn-credentials: the selected pair is relay', async () => {
  const [a, b] = [await relayTab(server), await relayTab(server)];
  await Promise.all([a.goOnline('turn-A'), b.goOnline('turn-B')]);
  const started = Date.now();
  await a.dial('turn-B', { trickle: true });
  await b.accept('turn-A');
  await Promise.all([a.waitCallState('connected', 20000), b.waitCallState('connected', 20000)]);
  console.log(`relay call connected in ${Date.now() - started} ms`);
  await a.say('hello through the relay');
  await b.waitChat('them', 'hello through the relay');

  for (const t of [a, b]) {
    const p = await selectedPair(t);
    assert.equal(p.policy, 'relay');
    assert.deepEqual(p.iceServers, [turn.uri], 'the ICE servers came from /turn-credentials');
    assert.equal(p.local.type, 'relay', 'the local candidate of the selected pair is relayed');
    assert.equal(p.local.address, turn.ip, "the relayed address is coturn's");
    assert.equal(p.remote.type, 'relay');
    assert.ok(p.localTypes.every((ty) => ty === 'relay'), `only relay candidates: ${p.localTypes}`);
  }
  // coturn saw allocations for both domains, under the REST usernames signal-server made
  const log = turn.logText();
  for (const d of ['turn-A', 'turn-B'])
    assert.match(log, new RegExp(`user <\\d+:${d}>: incoming packet ALLOCATE processed, success`));
});

test('negative control: a server whose secret differs from coturn\'s gives credentials coturn refuses; the call fails', async () => {
  const [a, b] = [await relayTab(wrongServer), await relayTab(wrongServer)];
  await Promise.all([a.goOnline('wrong-A'), b.goOnline('wrong-B')]);
  const started = Date.now();
  await a.dial('wrong-B', { trickle: true });
  await b.accept('wrong-A');
  // no relay candidate can be had, and relay-only ICE has nothing else: it never connects
  await assert.rejects(a.waitCallState('connected', 10000), /Timeout/);
  const waited = Date.now() - started;
  for (const t of [a, b]) {
    const p = await selectedPair(t);
    console.log(`no connection within ${waited} ms; ICE state ${p.state}`);
    assert.equal(p.local, null, 'no candidate pair was selected');
    assert.deepEqual(p.localTypes, [], 'no relay candidate was gathered');
    /* no candidate on either side: ICE never even starts checking, so it never reports 'failed' */
    assert.ok(['new', 'checking'].includes(p.state), `ICE state ${p.state}`);
  }
  const log = turn.logText();
  for (const d of ['wrong-A', 'wrong-B']) {
    assert.match(log, new RegExp(`user <\\d+:${d}>: incoming packet message processed, error 401`));
    assert.doesNotMatch(log, new RegExp(`user <\\d+:${d}>: incoming packet ALLOCATE processed, success`));
  }
});

test('coturn refuses credentials past their expiry, and takes the same made with a future expiry', async () => {
  const t = await relayTab(server);
  const now = Math.floor(Date.now() / 1000);
  const expired = `${now - 60}:expired-A`;
  const fresh = `${now + 600}:fresh-A`;
  const ice = (username, credential) => [{ urls: [turn.uri], username, credential }];
  const relayOnly = (types) => types.length > 0 && types.every((ty) => ty === 'relay');
  assert.deepEqual(await gatherRelay(t, ice(expired, credentialFor(expired))), [], 'expired: no relay candidate');
  const freshTypes = await gatherRelay(t, ice(fresh, credentialFor(fresh)));
  assert.ok(relayOnly(freshTypes), `fresh: relay candidates (${freshTypes})`);
  // the server's own, as a browser fetches them
  const got = await t.page.evaluate(async () => (await (await fetch('/turn-credentials?domain=probe-A')).json()).data);
  assert.equal(got.credential, credentialFor(got.username));
  const served = await gatherRelay(t, got.ice_servers);
  assert.ok(relayOnly(served), `the server's: relay candidates (${served})`);
  const log = turn.logText();
  assert.match(log, /user <\d+:expired-A>: incoming packet message processed, error 401/);
  assert.doesNotMatch(log, /user <\d+:expired-A>: incoming packet ALLOCATE processed, success/);
  assert.match(log, /user <\d+:fresh-A>: incoming packet ALLOCATE processed, success/);
  assert.match(log, /user <\d+:probe-A>: incoming packet ALLOCATE processed, success/);
});

test('signal-client.js in Node: a 401 on GET /turn-credentials gets a fresh token once; a 404 is believed for 10 minutes; entries that are not ICE servers are dropped', async () => {
  // A token gone stale since the connection opened (here: the key rotated by SIGHUP).
  const authServer = await Server.start({ auth: true, turn: { secret, uris: [turn.uri] } });
  const plain = await Server.start();
  const clients = [];
  const broken = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ code: 0, msg: 'ok', data: { ttl: 1e15, ice_servers: [
      { urls: 5, username: 'u', credential: 'c' }, null, 'x', { urls: [], username: 'u', credential: 'c' },
      { urls: ['turn:127.0.0.1:1'], username: 'u', credential: 7 },
      { urls: ['turn:127.0.0.1:1'], username: 'u', credential: 'c' }] } }));
  });
  try {
    let calls = 0;
    const a = new SignalClient({ url: authServer.url, domain: 'tok-A', token: () => { calls++; return authServer.token('tok-A'); } });
    clients.push(a);
    await a.connect();
    const old = a._token;
    writeFileSync(join(authServer.dir, 'secret.key'), randomBytes(48));
    authServer.proc.kill('SIGHUP');
    const deadline = Date.now() + 5000;
    while ((await fetch(a.turnUrl, { headers: { Authorization: `Bearer ${old}` } })).status !== 401) {
      assert.ok(Date.now() < deadline, 'the server reads the new key within 5 s of SIGHUP');
      await new Promise((r) => setTimeout(r, 50));
    }
    const errors = [];
    a.addEventListener('error', (e) => errors.push(e.error.message));
    const config = await a._rtcConfig();
    assert.deepEqual(errors, []);
    assert.equal(calls, 2, 'one fresh token for the refused request');
    assert.notEqual(a._token, old);
    assert.equal(config.iceServers.length, 1);
    assert.deepEqual(config.iceServers[0].urls, [turn.uri]);
    assert.match(config.iceServers[0].username, /^\d+:tok-A$/);

    // No [turn]: no TURN, no error, and not asked again for 10 minutes.
    const b = new SignalClient({ url: plain.url, domain: 'tok-B' });
    clients.push(b);
    b.addEventListener('error', (e) => errors.push(e.error.message));
    assert.deepEqual((await b._rtcConfig()).iceServers, []);
    assert.deepEqual(errors, []);
    assert.ok(b._turnAbsentUntil > Date.now() + 590000 && b._turnAbsentUntil <= Date.now() + 600000);

    // A server (or something in between) sending what are not ICE servers: only the valid one
    // is kept, and a ttl of 10^15 s is held to a week.
    await new Promise((r) => broken.listen(0, '127.0.0.1', r));
    const c = new SignalClient({ url: `http://127.0.0.1:${broken.address().port}/`, domain: 'tok-C' });
    clients.push(c);
    const cc = await c._rtcConfig();
    assert.deepEqual(cc.iceServers, [{ urls: ['turn:127.0.0.1:1'], username: 'u', credential: 'c' }]);
    assert.ok(c._turnUntil <= Date.now() + 604800 * 900);
  } finally {
    for (const c of clients) c.close();
    broken.close();
    for (const srv of [authServer, plain]) {
      await srv.stop();
      srv.cleanup();
    }
  }
});
