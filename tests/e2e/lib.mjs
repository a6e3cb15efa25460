// Helpers of the end-to-end tests: the server under test (started from a generated config,
// restartable on the same port), the shared headless Chromium, and the demo page's controls.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
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

  constructor(port, { auth = false, tls = null } = {}) {
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
      '',
    ].join('\n'));
    if (auth) writeFileSync(join(this.dir, 'secret.key'), randomBytes(48), { mode: 0o600 });
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
       refusals of POST /offer, which the page reports itself. */
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      if (/^WebSocket connection to .* failed/.test(m.text()) || /\/offer$/.test(m.location().url)) return;
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
