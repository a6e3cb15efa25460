// Helpers of the end-to-end tests: the server under test (started from a generated config,
// restartable on the same port), the shared headless Chromium, and the demo page's controls.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** A free TCP port on 127.0.0.1 below 32768 (ephemeral ports start there). */
async function freePort() {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12768);
    const ok = await new Promise((res) => {
      const s = createServer();
      s.once('error', () => res(false));
      s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
    });
    if (ok) return port;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A test CA and a server certificate for localhost and 127.0.0.1 signed by it, made now with the
 * openssl command line in a fresh folder: { dir, ca, cert (leaf then CA), key, caSpki } where
 * caSpki is the base64 SHA-256 of the CA's SubjectPublicKeyInfo (what Chromium's
 * --ignore-certificate-errors-spki-list takes).
 */
export function makeTestCA() {
  const dir = mkdtempSync(join(tmpdir(), 'sig-e2e-ca-'));
  const f = (name) => join(dir, name);
  const ossl = (...args) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  ossl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2',
    '-subj', '/CN=signal-server e2e test CA', '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  ossl('req', ...ec, '-keyout', f('key.pem'), '-out', f('leaf.csr'), '-subj', '/CN=localhost');
  writeFileSync(f('leaf.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n'
    + 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
  ossl('x509', '-req', '-in', f('leaf.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
    '-CAcreateserial', '-out', f('leaf.pem'), '-days', '2', '-extfile', f('leaf.ext'));
  writeFileSync(f('cert.pem'), readFileSync(f('leaf.pem'), 'utf8') + readFileSync(f('ca.pem'), 'utf8'));
  const spki = new X509Certificate(readFileSync(f('ca.pem'))).publicKey.export({ type: 'spki', format: 'der' });
  return { dir, ca: f('ca.pem'), cert: f('cert.pem'), key: f('key.pem'),
    caSpki: createHash('sha256').update(spki).digest('base64') };
}

/**
 * build/signal-server (or $SIG_SERVER_BIN) on 127.0.0.1 with its own config and log folder; over
 * TLS when given { tls: { cert, key, ca } } (file paths; ca is what this side trusts); with
 * { auth: true }, JWT auth on (HS256, a random 48-byte secret in its folder).
 */
export class Server {
  static async start(opts = {}) {
    const s = new Server(await freePort(), opts);
    await s.start();
    return s;
  }

  constructor(port, { auth = false, tls = null, turn = null } = {}) {
    this.port = port;
    this.tls = tls;
    this.url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}/`;
    this.dir = mkdtempSync(join(tmpdir(), 'sig-e2e-'));
    this.bin = resolve(ROOT, process.env.SIG_SERVER_BIN || 'build/signal-server');
    this.config = join(this.dir, 'signal-server.toml');
    writeFileSync(this.config, [
      '[server]',
      `host = "127.0.0.1:${port}"`,
      'shutdown_timeout_s = 2',
      '[log]',
      `out_dir = "${this.dir}"`,
      'out_file = "signal-server.log"',
      'level = "debug"',
      ...(auth ? ['[auth]', 'mode = "jwt"', 'algorithm = "HS256"', 'key_file = "secret.key"'] : []),
      ...(tls ? ['[tls]', `cert_file = "${tls.cert}"`, `key_file = "${tls.key}"`] : []),
      ...(turn ? ['[turn]', 'secret_file = "turn.secret"', `uris = [${turn.uris.map((u) => `"${u}"`).join(', ')}]`,
        `ttl_s = ${turn.ttl ?? 600}`] : []),
      '',
    ].join('\n'));
    if (auth) writeFileSync(join(this.dir, 'secret.key'), randomBytes(48), { mode: 0o600 });
    /* as `echo` writes it: the server trims the line ending */
    if (turn) writeFileSync(join(this.dir, 'turn.secret'), `${turn.secret}\n`, { mode: 0o600 });
    this.proc = null;
  }

  async start() {
    const proc = spawn(this.bin, ['--config', this.config], { stdio: ['ignore', 'inherit', 'inherit'] });
    this.proc = proc;
    let failed = null;
    proc.once('error', (err) => { failed = err; });
    this.exited = new Promise((res) => proc.once('exit', (code, signal) => res({ code, signal })));
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      if (failed) throw new Error(`cannot start ${this.bin}: ${failed.message}`);
      if (proc.exitCode !== null) throw new Error(`${this.bin} exited with ${proc.exitCode}`);
      try {
        await this.health();
        return;
      } catch { /* not listening yet */ }
      await sleep(25);
    }
    throw new Error(`${this.bin} did not answer /healthz on port ${this.port} within 5 s`);
  }

  /** SIGTERM; resolves to the exit status ({code, signal}). */
  async stop() {
    if (!this.proc || this.proc.pid === undefined) return null;
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return this.exited;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 7000);
    const status = await this.exited;
    clearTimeout(timer);
    return status;
  }

  /** A token for domain sub from the binary's `token` subcommand, signed with this server's key. */
  async token(sub, { ttl, calls } = {}) {
    const args = ['token', '--sub', sub, '--config', this.config];
    if (ttl !== undefined) args.push('--ttl', String(ttl));
    if (calls) args.push('--calls', ...calls);
    const { stdout } = await promisify(execFile)(this.bin, args);
    return stdout.trim();
  }

  /** GET /healthz's data (over TLS, trusting only the test CA). */
  async health() {
    if (!this.tls) {
      const r = await fetch(new URL('healthz', this.url));
      if (!r.ok) throw new Error(`/healthz: ${r.status}`);
      return (await r.json()).data;
    }
    const ca = readFileSync(this.tls.ca);
    return new Promise((resolve, reject) => {
      const req = httpsGet(new URL('healthz', this.url), { ca, servername: 'localhost' }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => { body += d; });
        res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body).data)
          : reject(new Error(`/healthz: ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.setTimeout(2000, () => req.destroy(new Error('/healthz: timeout')));
    });
  }

  cleanup() {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A STUN Binding request to ip:port over UDP; resolves true when a Binding success comes back. */
function stunPing(ip, port, timeoutMs = 500) {
  return new Promise((res) => {
    const sock = createSocket('udp4');
    const msg = Buffer.alloc(20);
    msg.writeUInt16BE(0x0001, 0); /* Binding request, no attributes */
    msg.writeUInt32BE(0x2112a442, 4);
    randomBytes(12).copy(msg, 8);
    const done = (ok) => { clearTimeout(timer); sock.close(); res(ok); };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on('message', (m) => done(m.length >= 20 && m.readUInt16BE(0) === 0x0101 && m.subarray(8, 20).equals(msg.subarray(8, 20))));
    sock.on('error', () => done(false));
    sock.send(msg, port, ip);
  });
}

/**
 * Debian's coturn (`turnserver`) with TURN REST authentication (use-auth-secret and this
 * static-auth-secret), on ip (the namespace's veth address) and a free port, relaying on ip, no
 * TLS/DTLS, no CLI, its log and database in a folder of its own. stop() kills it by its pid.
 */
export class TurnServer {
  static async start({ secret, ip = '10.200.0.1', realm = 'signal-server.test' }) {
    const t = new TurnServer(await freePort(), secret, ip, realm);
    await t.start();
    return t;
  }

  constructor(port, secret, ip, realm) {
    Object.assign(this, { port, secret, ip, realm });
    this.dir = mkdtempSync(join(tmpdir(), 'sig-e2e-turn-'));
    this.log = join(this.dir, 'turn.log');
    this.uri = `turn:${ip}:${port}?transport=udp`;
  }

  async start() {
    const relayPorts = 40000 + Math.floor(Math.random() * 200) * 100;
    const args = ['-n', '--no-cli', '--no-tls', '--no-dtls', `--listening-ip=${this.ip}`,
      `--listening-port=${this.port}`, `--relay-ip=${this.ip}`, `--min-port=${relayPorts}`,
      `--max-port=${relayPorts + 99}`, '--use-auth-secret', `--static-auth-secret=${this.secret}`,
      `--realm=${this.realm}`, `--log-file=${this.log}`, '--simple-log', '--no-stdout-log', '--verbose',
      `--userdb=${join(this.dir, 'turndb')}`, `--pidfile=${join(this.dir, 'turn.pid')}`];
    /* its standard error only in a failure's message ("socket: Protocol not supported" otherwise) */
    const proc = spawn('turnserver', args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    this.stderr = '';
    proc.stderr.setEncoding('utf8');
    proc.stderr.on('data', (d) => { if (this.stderr.length < 4000) this.stderr += d; });
    let failed = null;
    proc.once('error', (err) => { failed = err; });
    this.exited = new Promise((res) => proc.once('exit', (code, signal) => res({ code, signal })));
    const deadline = Date.now() + 10000;
    while (Date.now() < deadline) {
      if (failed) throw new Error(`cannot start turnserver (apt-get install coturn): ${failed.message}`);
      if (proc.exitCode !== null) throw new Error(`turnserver exited with ${proc.exitCode}: ${this.stderr} (log: ${this.log})`);
      if (await stunPing(this.ip, this.port)) return;
      await sleep(50);
    }
    throw new Error(`turnserver did not answer STUN on ${this.ip}:${this.port} within 10 s`);
  }

  /** What it logged so far. */
  logText() {
    try { return readFileSync(this.log, 'utf8'); } catch { return ''; }
  }

  /** SIGTERM to its pid (SIGKILL after 5 s); resolves to the exit status. */
  async stop() {
    if (!this.proc || this.proc.pid === undefined) return null;
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return this.exited;
    process.kill(this.proc.pid, 'SIGTERM');
    const timer = setTimeout(() => process.kill(this.proc.pid, 'SIGKILL'), 5000);
    const status = await this.exited;
    clearTimeout(timer);
    return status;
  }

  cleanup() {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Debian's Chromium, headless, quiet offline, with a fake camera that needs no prompt. */
export function launchBrowser(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      ...extraArgs,
    ],
  });
}

/**
 * One demo tab: the page, what it threw, and the signaling frames it sent and received
 * (parsed JSON, in order), as observed by the browser.
 */
export class Tab {
  static async open(context, url) {
    const page = await context.newPage();
    const tab = new Tab(page);
    await page.goto(url);
    return tab;
  }

  constructor(page) {
    this.page = page;
    this.errors = [];
    this.sent = [];
    this.received = [];
    this.posts = [];
    this.sockets = []; /* URLs of the WebSockets the page opened */
    page.on('pageerror', (err) => this.errors.push(String(err)));
    /* Chromium's own console errors count too (a missing asset, say), except the refused
       WebSocket connections of re-registration attempts while the server is down and the
       refusals of POST /offer, which the page reports itself, and a 404 of GET /turn-credentials. */
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      if (/^WebSocket connection to .* failed/.test(m.text()) || /\/offer$/.test(m.location().url)) return;
      /* a server without [turn] answers GET /turn-credentials 404, which the client expects */
      if (/\/turn-credentials\?/.test(m.location().url) && /404/.test(m.text())) return;
      this.errors.push(`console: ${m.text()} (${m.location().url})`);
    });
    page.on('request', (r) => {
      if (r.method() === 'POST') this.posts.push({ url: r.url(), body: r.postData(), authorization: r.headers().authorization });
    });
    page.on('websocket', (ws) => {
      this.sockets.push(ws.url());
      const parse = (f) => { try { return JSON.parse(f.payload); } catch { return { raw: f.payload }; } };
      ws.on('framesent', (f) => this.sent.push(parse(f)));
      ws.on('framereceived', (f) => this.received.push(parse(f)));
    });
  }

  /** Types the name (and the token, if any) and presses "Go online"; waits until the page says it is online. */
  async goOnline(domain, token) {
    await this.page.fill('#domain', domain);
    if (token !== undefined) await this.page.fill('#token', token);
    await this.page.click('#register');
    await this.waitConn('open');
  }

  waitConn(state, timeout = 10000) {
    return this.page.waitForSelector(`#conn[data-state="${state}"]`, { timeout });
  }

  async dial(remote, { trickle = true, camera = false } = {}) {
    await this.page.setChecked('#trickle', trickle);
    await this.page.setChecked('#camera', camera);
    await this.page.fill('#remote', remote);
    await this.page.click('#call');
  }

  async accept(from) {
    await this.page.locator('#incoming', { hasText: from }).waitFor({ timeout: 10000 });
    await this.page.click('#accept');
  }

  waitCallState(state, timeout = 10000) {
    return this.page.waitForSelector(`#call-state[data-state="${state}"]`, { timeout });
  }

  async say(text) {
    await this.page.waitForSelector('#message:enabled', { timeout: 10000 });
    await this.page.fill('#message', text);
    await this.page.click('#send');
  }

  /** Waits for a chat line (cls: them, me, note) with exactly this text. */
  waitChat(cls, text, timeout = 10000) {
    const exact = new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
    return this.page.locator(`#chat li.${cls}`, { hasText: exact }).waitFor({ timeout });
  }

  /** Waits for an event-log line containing text. */
  waitLog(text, timeout = 10000) {
    return this.page.locator('#log li', { hasText: text }).first().waitFor({ state: 'attached', timeout });
  }

  text(selector) {
    return this.page.textContent(selector);
  }

  /** The frames of type ty this page sent / received, in order. */
  sentOf(ty) {
    return this.sent.filter((f) => f.ty === ty);
  }

  receivedOf(ty) {
    return this.received.filter((f) => f.ty === ty);
  }
}
