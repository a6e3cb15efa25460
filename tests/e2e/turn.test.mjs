// End-to-end through a real TURN server: Debian's coturn (`turnserver`, use-auth-secret) started
// here on the namespace's veth address, signal-server handing out its credentials on
// GET /turn-credentials, and demo tabs that take their ICE servers from there with relay-only ICE
// (?relay=1). Negative controls: credentials made with another secret, and credentials past their
// expiry, are refused by coturn (no relay candidate, no call).
import { after, afterEach, before, test as nodeTest } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
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
