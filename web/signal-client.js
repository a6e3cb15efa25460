/**
 * signal-client.js — the browser client of signal-server (docs/PROTOCOL.md, API in docs/CLIENT.md).
 *
 * One dependency-free ES module: register a domain over a WebSocket, call another domain with an
 * RTCPeerConnection (the seed's POST /offer flow or trickle ICE over the WebSocket), answer calls,
 * hang up, and re-register after a dropped connection with exponential backoff and jitter.
 *
 * @example
 * import { SignalClient } from '/signal-client.js';
 * const client = new SignalClient({ domain: 'alice' });
 * client.addEventListener('incoming', (e) => e.call.accept());
 * await client.connect();
 * const call = client.call('bob', { dataChannel: 'chat' });
 * call.addEventListener('datachannel', (e) => { e.channel.onopen = () => e.channel.send('hi'); });
 */

const NAME_RE = /^[A-Za-z0-9._~-]{1,128}$/;

/**
 * The server's WebSocket close codes (docs/PROTOCOL.md; src/sig_proto.h in the server). REPLACED,
 * TAKEN (on a first registration), FORBIDDEN and UNAUTHORIZED (unless a token function may give a
 * fresh token) stop the client; REPLACED, TAKEN, FULL and the token refusals come right after the
 * upgrade (see `close` in docs/CLIENT.md).
 */
export const CLOSE = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  PROTOCOL: 1002,
  UNSUPPORTED: 1003,
  INVALID_DATA: 1007,
  POLICY: 1008,
  TOO_BIG: 1009,
  REPLACED: 4000,
  UNAUTHORIZED: 4401,
  FORBIDDEN: 4403,
  PING_TIMEOUT: 4408,
  TAKEN: 4409,
  FULL: 4503,
});

/**
 * @typedef {object} SignalClientOptions
 * @property {string} domain the domain to register: 1–128 characters of `A-Z a-z 0-9 . _ ~ -`.
 * @property {string} [url] the server's base URL, `http(s)://` or `ws(s)://`, may end in a path prefix
 *   (`https://example.com/signal/`). Default: the page's origin.
 * @property {RTCIceServer[]} [iceServers] STUN/TURN servers for every RTCPeerConnection. Default `[]`.
 * @property {boolean} [turn] ask the server for TURN credentials (`GET /turn-credentials`) before each
 *   call and add its `ice_servers` to `iceServers` (true, the default). A server without TURN (404)
 *   is remembered and not asked again; other failures are reported as `error` and the call goes on
 *   without TURN. Credentials are reused until shortly before they expire.
 * @property {RTCIceTransportPolicy} [iceTransportPolicy] `"all"` (the default) or `"relay"`: only
 *   relayed (TURN) candidates, e.g. to test a TURN server or to hide addresses.
 * @property {boolean} [trickle] offer with trickle ICE over the WebSocket (true, the default) or with
 *   the seed's flow: wait for ICE gathering, then `POST /offer` (false).
 * @property {number} [gatherTimeout] ms to wait for ICE gathering in the non-trickle flow before
 *   sending the candidates found so far. Default 5000.
 * @property {{minDelay?: number, maxDelay?: number} | false} [reconnect] backoff bounds in ms
 *   (default 500 and 30000), or false to never re-register by itself.
 * @property {string | (() => string | Promise<string>)} [token] a token for a server that requires
 *   one (JWT auth), or a function returning one, called before every connection attempt so that a
 *   re-registration uses a fresh token. Sent as `access_token` on the WebSocket URL and as
 *   `Authorization: Bearer` on `POST /offer`. Default: none.
 * @property {typeof WebSocket} [WebSocket] implementation to use outside browsers.
 * @property {typeof RTCPeerConnection} [RTCPeerConnection] implementation to use outside browsers.
 * @property {typeof fetch} [fetch] implementation to use outside browsers.
 */

/**
 * @typedef {object} CallOptions
 * @property {MediaStream} [stream] local tracks to send.
 * @property {string | false} [dataChannel] label of a data channel this side creates (outgoing calls
 *   only; default `"data"`, false for none). A call needs a data channel or a media section.
 * @property {RTCDataChannelInit} [dataChannelInit] options of that data channel.
 * @property {boolean} [trickle] overrides the client's `trickle` for this call.
 * @property {string} [id] exchange id (1–64 characters of the domain alphabet). Default: random.
 * @property {(pc: RTCPeerConnection) => void} [setup] called with the new RTCPeerConnection before
 *   the offer or answer is made: add transceivers, tracks, channels.
 */

/** An error reported by the server (error frame or HTTP `Resp`) or met locally (`status` 0). */
export class SignalError extends Error {
  /**
   * @param {string} message the server's `msg`, or a local description.
   * @param {number} status the HTTP-like status (400, 404, 408, 409, 429…), 0 for local errors.
   * @param {string | null} [id] the exchange id, when known.
   */
  constructor(message, status, id = null) {
    super(message);
    this.name = 'SignalError';
    this.status = status;
    this.id = id;
  }
}

/** An event carrying extra read-only fields (EventTarget works the same in browsers and Node). */
function event(type, fields) {
  const e = new Event(type);
  for (const [k, v] of Object.entries(fields || {})) Object.defineProperty(e, k, { value: v, enumerable: true });
  return e;
}

/** Standard base64 of the UTF-8 bytes of text. */
export function encodeSdp(text) {
  const bytes = new TextEncoder().encode(text);
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin);
}

/** Text of standard base64 holding UTF-8 (throws on bad base64 or bad UTF-8). */
export function decodeSdp(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
}

/** A candidate string as sent: the JSON of RTCIceCandidateInit, so sdpMid/sdpMLineIndex survive. */
function candidateString(candidate) {
  return JSON.stringify(candidate.toJSON ? candidate.toJSON() : candidate);
}

/**
 * An RTCIceCandidateInit from a received string: this client's JSON, or a seed peer's plain
 * `candidate:…` line (optionally with `a=`), taken to belong to the first media section.
 * Returns null for an empty string (end of candidates).
 */
function parseCandidate(s) {
  const text = String(s).trim();
  if (text === '') return null;
  if (text.startsWith('{')) {
    const init = JSON.parse(text);
    if (typeof init.candidate !== 'string') throw new Error('candidate JSON without "candidate"');
    if (init.sdpMid == null && init.sdpMLineIndex == null) init.sdpMLineIndex = 0;
    return init;
  }
  return { candidate: text.replace(/^a=/, ''), sdpMLineIndex: 0 };
}

function randomId() {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** Whether an offer was made without trickle: its SDP or list already holds candidates. */
function isCompleteOffer(req) {
  return (req.candidate || []).length > 0 || /\na=(candidate|end-of-candidates)/.test(decodeSdp(req.offer_sdp));
}

/** Whether x is an RTCIceServer as the server sends them: urls (a string or strings), username
 * and credential strings. Anything else is dropped rather than handed to RTCPeerConnection,
 * which would throw. */
function iceServer(x) {
  if (!x || typeof x !== 'object' || typeof x.username !== 'string' || typeof x.credential !== 'string') return false;
  return typeof x.urls === 'string' || (Array.isArray(x.urls) && x.urls.length > 0 && x.urls.every((u) => typeof u === 'string'));
}

/**
 * A registered domain: one WebSocket to the server, re-opened after a drop, and the calls made or
 * received through it.
 *
 * Events: `open` ({reconnected}), `close` ({code, reason, reconnect}), `reconnecting`
 * ({attempt, delay}), `incoming` ({call}), `error` ({error: SignalError}).
 */
export class SignalClient extends EventTarget {
  /** @param {SignalClientOptions} options */
  constructor(options) {
    super();
    const o = options || {};
    if (typeof o.domain !== 'string' || !NAME_RE.test(o.domain))
      throw new TypeError('domain: must be 1-128 characters of A-Z a-z 0-9 . _ ~ -');
    /** @readonly */ this.domain = o.domain;
    const url = o.url ?? globalThis.location?.origin;
    if (!url) throw new TypeError('url: required outside a browser');
    const base = new URL(url);
    if (!base.pathname.endsWith('/')) base.pathname += '/';
    const secure = base.protocol === 'https:' || base.protocol === 'wss:';
    const http = new URL(base);
    http.protocol = secure ? 'https:' : 'http:';
    const ws = new URL(base);
    ws.protocol = secure ? 'wss:' : 'ws:';
    /** @readonly URL of `POST /offer`. */ this.offerUrl = new URL('offer', http).href;
    /** @readonly URL of `GET /ws/{domain}`. */ this.wsUrl = new URL('ws/' + o.domain, ws).href;
    /** @readonly URL of `GET /turn-credentials`. */
    this.turnUrl = new URL(`turn-credentials?domain=${encodeURIComponent(o.domain)}`, http).href;
    this.iceServers = o.iceServers ?? [];
    this.turn = o.turn ?? true;
    this.iceTransportPolicy = o.iceTransportPolicy ?? 'all';
    this._turnServers = null; /* the last ice_servers, until _turnUntil (ms) */
    this._turnUntil = 0;
    this._turnAbsentUntil = 0; /* the server said it has no [turn]: asked again after it (ms) */
    this.trickle = o.trickle ?? true;
    this.gatherTimeout = o.gatherTimeout ?? 5000;
    this.reconnect = o.reconnect === false ? false : { minDelay: 500, maxDelay: 30000, ...o.reconnect };
    this._WebSocket = o.WebSocket ?? globalThis.WebSocket;
    this._RTCPeerConnection = o.RTCPeerConnection ?? globalThis.RTCPeerConnection;
    this._fetch = o.fetch ?? globalThis.fetch.bind(globalThis);
    if (o.token != null && typeof o.token !== 'string' && typeof o.token !== 'function')
      throw new TypeError('token: expected a string or a function returning one');
    this._tokenSource = o.token || null;
    this._token = typeof o.token === 'string' && o.token !== '' ? o.token : null; /* the one last sent */
    /**
     * `closed` (before connect() and after close() or a final close), `connecting`, `open`,
     * `reconnecting` (waiting to re-register).
     * @type {'closed' | 'connecting' | 'open' | 'reconnecting'}
     */
    this.state = 'closed';
    /** Calls not yet ended, by exchange id. @type {Map<string, Call>} */
    this.calls = new Map();
    this._ws = null;
    this._timer = null;
    this._attempt = 0;
    this._openedAt = 0;
    this._everOpen = false; /* a connection of this session lived past its policy check */
    this._refused = 0; /* 4401s in a row */
    this._dialing = 0; /* counts _open() calls: a token that arrives for an older one is dropped */
    this._ended = new Set(); /* recently ended ids, to drop their late frames quietly */
  }

  /**
   * Opens the WebSocket (and keeps it open, re-registering after drops, until close()).
   * Resolves at the next `open`; rejects if the client stops first (close(), 4000, 4409, 4401, 4403).
   * @returns {Promise<void>}
   */
  connect() {
    if (this.state === 'open') return Promise.resolve();
    const p = new Promise((resolve, reject) => {
      const onOpen = () => { off(); resolve(); };
      const onClose = (e) => { if (!e.reconnect) { off(); reject(new SignalError(`closed: ${e.code} ${e.reason}`, 0)); } };
      const off = () => { this.removeEventListener('open', onOpen); this.removeEventListener('close', onClose); };
      this.addEventListener('open', onOpen);
      this.addEventListener('close', onClose);
    });
    if (this.state === 'closed') {
      this._attempt = 0;
      this._everOpen = false;
      this._refused = 0;
      this._open();
    }
    return p;
  }

  /**
   * The RTCConfiguration of a new call: iceServers, with the server's TURN credentials when it
   * has them (fetched when missing or about to expire), and iceTransportPolicy.
   * @returns {Promise<RTCConfiguration>}
   */
  async _rtcConfig() {
    const config = { iceServers: [...this.iceServers], iceTransportPolicy: this.iceTransportPolicy };
    /* A 404 (no [turn] at the server) is believed for 10 minutes: a proxy may say it mid-deploy. */
    if (!this.turn || Date.now() < this._turnAbsentUntil) return config;
    if (!this._turnServers || Date.now() >= this._turnUntil) {
      try {
        const get = (token) => this._fetch(this.turnUrl, {
          headers: token ? { Authorization: `Bearer ${token}` } : {}, cache: 'no-store', redirect: 'error' });
        let res = await get(this._token); /* the connection's token */
        /* It may have expired since the connection opened: a token function gives a fresh one, once. */
        if (res.status === 401 && typeof this._tokenSource === 'function') {
          const token = await this._tokenSource();
          if (typeof token === 'string' && token !== '') res = await get((this._token = token));
        }
        if (res.status === 404) {
          this._turnAbsentUntil = Date.now() + 600000; /* go on without, quietly */
          return config;
        }
        const body = await res.json().catch(() => null);
        const servers = body && body.code === 0 && body.data && Array.isArray(body.data.ice_servers)
          ? body.data.ice_servers.filter(iceServer) : [];
        if (!res.ok || servers.length === 0)
          throw new SignalError(body && body.msg ? body.msg : `HTTP ${res.status}`, res.status);
        this._turnServers = servers;
        /* renewed after 90% of their life (at most a week), so a call never starts with credentials
           about to expire */
        const ttl = Math.min(Math.max(0, Number(body.data.ttl) || 0), 604800);
        this._turnUntil = Date.now() + ttl * 900;
      } catch (err) {
        this._turnServers = null;
        this.dispatchEvent(event('error', { error: new SignalError(`GET /turn-credentials: ${err && err.message ? err.message : err}`, err && err.status ? err.status : 0) }));
        return config;
      }
    }
    config.iceServers.push(...this._turnServers);
    return config;
  }

  /** Hangs up every call, closes the WebSocket with 1000 and stops re-registering. */
  close() {
    for (const call of [...this.calls.values()]) call._end('closed', true);
    clearTimeout(this._timer);
    this._timer = null;
    const ws = this._ws;
    this._ws = null;
    const was = this.state;
    this.state = 'closed';
    if (ws) ws.close(CLOSE.NORMAL, 'bye');
    if (was !== 'closed') this.dispatchEvent(event('close', { code: CLOSE.NORMAL, reason: 'closed by the client', reconnect: false }));
  }

  /**
   * Calls `remote`. Returns at once; the offer is sent in a microtask, so listeners added right
   * after this call see every event. Failures end the call with `error` then `end`.
   * @param {string} remote the domain to call.
   * @param {CallOptions} [options]
   * @returns {Call}
   */
  call(remote, options = {}) {
    const id = options.id ?? randomId();
    const call = new Call(this, id, remote, 'outgoing', options.trickle ?? this.trickle);
    this.calls.set(id, call);
    queueMicrotask(() => call._offer(options).catch((err) => call._fail(err)));
    return call;
  }

  _open() {
    this.state = this._everOpen ? 'reconnecting' : 'connecting';
    if (typeof this._tokenSource !== 'function') {
      this._dial(this._token);
      return;
    }
    const dialing = ++this._dialing;
    new Promise((resolve) => resolve(this._tokenSource()))
      .then((token) => {
        if (typeof token === 'string' && token !== '') return token;
        throw new TypeError(`the function returned ${token === '' ? 'an empty string' : typeof token}, not a token`);
      })
      .then((token) => {
        if (dialing !== this._dialing || this.state === 'closed') return; /* close() came first */
        this._token = token;
        this._dial(token);
      }, (err) => {
        if (dialing !== this._dialing || this.state === 'closed') return;
        /* Like a server that cannot be reached: the token service may be back at the next attempt. */
        this.dispatchEvent(event('error', { error: new SignalError(`token: ${err && err.message ? err.message : err}`, 0) }));
        this._closed(1006, 'no token');
      });
  }

  _dial(token) {
    let ws;
    try {
      ws = new this._WebSocket(token ? `${this.wsUrl}?access_token=${encodeURIComponent(token)}` : this.wsUrl);
    } catch (err) {
      this.dispatchEvent(event('error', { error: new SignalError(String(err.message || err), 0) }));
      this._closed(1006, 'cannot open');
      return;
    }
    this._ws = ws;
    ws.onopen = () => {
      if (ws !== this._ws) return;
      this._openedAt = Date.now();
      this.state = 'open';
      this.dispatchEvent(event('open', { reconnected: this._everOpen }));
    };
    ws.onmessage = (e) => { if (ws === this._ws) this._onFrame(e.data); };
    ws.onerror = () => {};
    ws.onclose = (e) => {
      if (ws !== this._ws) return;
      this._ws = null;
      this._closed(e.code, e.reason);
    };
  }

  _closed(code, reason) {
    const lived = this._openedAt ? Date.now() - this._openedAt : 0;
    this._openedAt = 0;
    const refused = code === CLOSE.UNAUTHORIZED || code === CLOSE.FORBIDDEN;
    const policy = code === CLOSE.REPLACED || code === CLOSE.TAKEN || code === CLOSE.FULL || refused;
    if (lived > 0 && !policy) this._everOpen = true;
    if (lived > 10000) this._attempt = 0;
    this._refused = code === CLOSE.UNAUTHORIZED ? this._refused + 1 : 0;
    /* The server ended every exchange of this connection and told the peers: end the calls too. */
    for (const call of [...this.calls.values()]) call._end('disconnected', false);
    /* 4000: another connection owns the domain now; 4409 on a first registration: it is taken.
       (4409 on a re-registration means the server has not yet seen the old connection die.)
       4403: the token is for another domain, a fresh one will be too. 4401 (missing, expired,
       invalid): the same token would be refused again; a token function gets one more try. */
    const final = !this.reconnect || code === CLOSE.REPLACED || (code === CLOSE.TAKEN && !this._everOpen) ||
      code === CLOSE.FORBIDDEN || (code === CLOSE.UNAUTHORIZED && (typeof this._tokenSource !== 'function' || this._refused > 1));
    this.state = final ? 'closed' : 'reconnecting';
    this.dispatchEvent(event('close', { code, reason, reconnect: !final }));
    if (final) return;
    const { minDelay, maxDelay } = this.reconnect;
    const cap = Math.min(maxDelay, minDelay * 2 ** this._attempt);
    const delay = Math.round(cap / 2 + (Math.random() * cap) / 2);
    this._attempt++;
    this.dispatchEvent(event('reconnecting', { attempt: this._attempt, delay }));
    this._timer = setTimeout(() => {
      this._timer = null;
      if (this.state === 'reconnecting') this._open();
    }, delay);
  }

  /** Sends one frame; false if the WebSocket is not open. */
  _send(msg) {
    if (!this._ws || this._ws.readyState !== 1) return false;
    this._ws.send(JSON.stringify(msg));
    return true;
  }

  _onFrame(text) {
    let m;
    try {
      m = JSON.parse(text);
    } catch {
      this.dispatchEvent(event('error', { error: new SignalError('server sent a frame that is not JSON', 0) }));
      return;
    }
    const call = typeof m.id === 'string' ? this.calls.get(m.id) : undefined;
    switch (m.ty) {
      case 'offer':
        this._onOffer(m);
        break;
      case 'answer':
        if (call) call._onAnswer(m.answer_resp).catch((err) => call._fail(err));
        break;
      case 'candidate':
        if (call) call._onCandidates(m.candidate || []);
        break;
      case 'bye':
        if (call) call._onBye(m.reason, m.from);
        break;
      case 'error': {
        const error = new SignalError(m.msg, m.status, m.id ?? null);
        if (call) call._onError(error);
        else if (!this._ended.has(m.id)) this.dispatchEvent(event('error', { error }));
        break;
      }
      default: /* newer server: ignore what this client does not know */
    }
  }

  _onOffer(m) {
    const req = m.offer_req || {};
    if (typeof m.id !== 'string' || this.calls.has(m.id)) return;
    let complete;
    try {
      complete = isCompleteOffer(req);
    } catch {
      this.dispatchEvent(event('error', { error: new SignalError('offer_sdp: not base64 of UTF-8', 0, m.id) }));
      this._send({ ty: 'bye', id: m.id, to: req.offer_domain }); /* rather than let it time out */
      return;
    }
    const call = new Call(this, m.id, req.offer_domain, 'incoming', this.trickle && !complete);
    call._remoteOffer = req;
    call._plainCandidates = (req.candidate || []).length > 0 && req.candidate.every((c) => !String(c).startsWith('{'));
    call._pending.push(...(req.candidate || []));
    this.calls.set(m.id, call);
    this.dispatchEvent(event('incoming', { call }));
  }

  _forget(id) {
    this.calls.delete(id);
    this._ended.add(id);
    if (this._ended.size > 64) this._ended.delete(this._ended.values().next().value);
  }
}

/**
 * One exchange with another domain and its RTCPeerConnection.
 *
 * Events: `statechange` ({state}), `datachannel` ({channel}), `track` ({track, streams}),
 * `bye` ({reason, from}), `error` ({error: SignalError}), `end` ({reason}).
 */
export class Call extends EventTarget {
  constructor(client, id, remote, direction, trickle) {
    super();
    this._client = client;
    /** @readonly exchange id */ this.id = id;
    /** @readonly the other domain */ this.remote = remote;
    /** @readonly @type {'outgoing' | 'incoming'} */ this.direction = direction;
    /** Whether this side sends its candidates as `candidate` frames. */
    this.trickle = trickle;
    /**
     * `calling` (offer sent, no answer yet), `ringing` (incoming, not accepted), `connecting`,
     * `connected`, `disconnected` (connectivity lost, may come back), `closed` (ended: see endReason).
     * @type {'calling' | 'ringing' | 'connecting' | 'connected' | 'disconnected' | 'closed'}
     */
    this.state = direction === 'outgoing' ? 'calling' : 'ringing';
    /** Why the call ended (see the `end` event), or null. @type {string | null} */
    this.endReason = null;
    /** @type {RTCPeerConnection | null} */ this.pc = null;
    /** The first data channel of the call (created here or by the other side). @type {RTCDataChannel | null} */
    this.channel = null;
    this._pending = []; /* remote candidate strings waiting for the remote description */
    this._unsent = []; /* local candidates waiting for our offer or answer to be sent */
    this._signalled = false;
    this._remoteOffer = null;
    this._plainCandidates = false;
  }

  /**
   * Answers an incoming call (state `ringing`). Resolves once the answer is sent.
   * @param {CallOptions} [options] `stream`, `setup`, `trickle` are used.
   * @returns {Promise<void>}
   */
  async accept(options = {}) {
    if (this.direction !== 'incoming' || this.state !== 'ringing') throw new Error(`accept: call is ${this.state}`);
    if (options.trickle === false) this.trickle = false;
    this._setState('connecting');
    try {
      const config = await this._client._rtcConfig();
      if (this.state === 'closed') return;
      const pc = this._createPc(options, config);
      await pc.setRemoteDescription({ type: 'offer', sdp: decodeSdp(this._remoteOffer.offer_sdp) });
      if (options.stream) for (const t of options.stream.getTracks()) pc.addTrack(t, options.stream);
      await this._addPending();
      await pc.setLocalDescription(await pc.createAnswer());
      if (this.trickle) {
        this._sendSignal({ ty: 'answer', id: this.id, answer_resp: this._resp([]) });
      } else {
        await this._gathered();
        this._sendSignal({ ty: 'answer', id: this.id, answer_resp: this._resp(this._unsent.splice(0)) });
      }
    } catch (err) {
      this._fail(err);
    }
  }

  /** Declines an incoming call: same as hangup(). */
  reject() {
    this.hangup();
  }

  /** Ends the call and tells the other side (`bye`). Does nothing if it has ended. */
  hangup() {
    this._end('hangup', true);
  }

  _resp(candidates) {
    return {
      answer_sdp: encodeSdp(this.pc.localDescription.sdp),
      /* A seed peer sent plain candidate lines: answer in kind, it may not read JSON. */
      candidate: candidates.map((c) => (this._plainCandidates ? c.candidate : candidateString(c))),
      answer_domain: this._client.domain,
    };
  }

  _createPc(options, config) {
    const pc = new this._client._RTCPeerConnection(config);
    this.pc = pc;
    pc.onicecandidate = (e) => {
      if (!e.candidate || !e.candidate.candidate) return;
      if (this.trickle && this._signalled) this._sendCandidates([e.candidate]);
      else this._unsent.push(e.candidate);
    };
    pc.ondatachannel = (e) => this._addChannel(e.channel);
    pc.ontrack = (e) => this.dispatchEvent(event('track', { track: e.track, streams: e.streams }));
    const onState = () => this._onPcState(pc.connectionState ?? pc.iceConnectionState);
    pc.onconnectionstatechange = onState;
    if (!('connectionState' in pc)) pc.oniceconnectionstatechange = onState;
    if (options.setup) options.setup(pc);
    return pc;
  }

  _addChannel(channel) {
    if (!this.channel) this.channel = channel;
    queueMicrotask(() => this.dispatchEvent(event('datachannel', { channel })));
  }

  async _offer(options) {
    const client = this._client;
    if (client.state !== 'open') throw new SignalError(`not registered (client is ${client.state})`, 0, this.id);
    const config = await client._rtcConfig();
    if (this.state === 'closed') return;
    const pc = this._createPc(options, config);
    if (options.stream) for (const t of options.stream.getTracks()) pc.addTrack(t, options.stream);
    const label = options.dataChannel ?? 'data';
    if (label !== false) this._addChannel(pc.createDataChannel(label, options.dataChannelInit));
    await pc.setLocalDescription(await pc.createOffer());
    if (this.state === 'closed') return;
    const req = { offer_sdp: '', candidate: [], answer_domain: this.remote, offer_domain: client.domain };
    if (this.trickle) {
      req.offer_sdp = encodeSdp(pc.localDescription.sdp);
      this._sendSignal({ ty: 'offer', id: this.id, offer_req: req });
      return;
    }
    await this._gathered();
    if (this.state === 'closed') return;
    req.offer_sdp = encodeSdp(pc.localDescription.sdp);
    req.candidate = this._unsent.splice(0).map(candidateString);
    req.id = this.id;
    let res;
    let body = null;
    this._signalled = true; /* the answer may come over the WebSocket before the reply */
    try {
      res = await this._post(req, client._token);
      /* The connection's token may have expired since: a token function gives a fresh one, once.
         (A 401 means the server did nothing, so sending again is safe.) */
      if (res.status === 401 && typeof client._tokenSource === 'function' && this.state !== 'closed') {
        const token = await client._tokenSource();
        if (typeof token === 'string' && token !== '') res = await this._post(req, (client._token = token));
      }
      body = await res.json().catch(() => null);
    } catch (err) {
      this._signalled = false;
      throw new SignalError(`POST /offer: ${err.message || err}`, 0, this.id);
    }
    if (!res.ok || !body || body.code !== 0) {
      this._signalled = false; /* no exchange at the server: nothing to say bye to */
      throw new SignalError(body && body.msg ? body.msg : `POST /offer: HTTP ${res.status}`, res.status, this.id);
    }
  }

  _post(req, token) {
    const headers = { 'Content-Type': 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    return this._client._fetch(this._client.offerUrl, { method: 'POST', headers, body: JSON.stringify(req) });
  }

  /** Sends our offer or answer frame, then the candidates found meanwhile (trickle). */
  _sendSignal(frame) {
    if (this.state === 'closed') return;
    if (!this._client._send(frame)) throw new SignalError('not connected to the server', 0, this.id);
    this._signalled = true;
    if (this.trickle && this._unsent.length) this._sendCandidates(this._unsent.splice(0));
  }

  _sendCandidates(list) {
    this._client._send({ ty: 'candidate', id: this.id, to: this.remote, candidate: list.map(candidateString) });
  }

  /** Resolves when ICE gathering is complete, or after gatherTimeout ms with what was found. */
  _gathered() {
    const pc = this.pc;
    return new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      const finish = () => {
        clearTimeout(timer);
        pc.removeEventListener('icegatheringstatechange', onChange);
        resolve();
      };
      const onChange = () => { if (pc.iceGatheringState === 'complete') finish(); };
      const timer = setTimeout(finish, this._client.gatherTimeout);
      pc.addEventListener('icegatheringstatechange', onChange);
    });
  }

  async _onAnswer(resp) {
    if (this.direction !== 'outgoing' || this.state !== 'calling' || !resp) return;
    this._setState('connecting');
    this._pending.push(...(resp.candidate || []));
    await this.pc.setRemoteDescription({ type: 'answer', sdp: decodeSdp(resp.answer_sdp) });
    await this._addPending();
  }

  _onCandidates(list) {
    this._pending.push(...list);
    if (this.pc && this.pc.remoteDescription) this._addPending();
  }

  async _addPending() {
    while (this._pending.length && this.state !== 'closed') {
      const s = this._pending.shift();
      try {
        const init = parseCandidate(s);
        if (init) await this.pc.addIceCandidate(init);
      } catch (err) {
        this.dispatchEvent(event('error', { error: new SignalError(`candidate ${JSON.stringify(s)}: ${err.message || err}`, 0, this.id) }));
      }
    }
  }

  _onPcState(s) {
    if (this.state === 'closed' || this.state === 'calling' || this.state === 'ringing') return;
    if (s === 'connected' || s === 'completed') this._setState('connected');
    else if (s === 'disconnected') this._setState('disconnected');
    else if (s === 'failed') this._end('failed', true);
    else if (s === 'closed') this._end('closed', false);
    else this._setState('connecting');
  }

  _onBye(reason, from) {
    this.dispatchEvent(event('bye', { reason, from }));
    this._end('bye', false);
  }

  _onError(error) {
    this.dispatchEvent(event('error', { error }));
    /* Before connectivity an error means the offer or answer did not go through (or expired);
       later ones (a late candidate, say) are only reported. */
    if (this.state !== 'connected' && this.state !== 'disconnected') this._end('error', false);
  }

  _fail(err) {
    if (this.state === 'closed') return;
    const error = err instanceof SignalError ? err : new SignalError(String(err && err.message ? err.message : err), 0, this.id);
    this.dispatchEvent(event('error', { error }));
    this._end('error', true);
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.dispatchEvent(event('statechange', { state }));
  }

  /**
   * Ends the call once. reason: `hangup` (this side), `bye` (the other side or the server ended it),
   * `error`, `failed` (ICE/DTLS failed), `disconnected` (our WebSocket dropped), `closed`.
   */
  _end(reason, sendBye) {
    if (this.state === 'closed') return;
    if (sendBye && (this._signalled || this.direction === 'incoming'))
      this._client._send({ ty: 'bye', id: this.id, to: this.remote });
    this.endReason = reason;
    this._client._forget(this.id);
    if (this.pc) this.pc.close();
    this._setState('closed');
    this.dispatchEvent(event('end', { reason }));
  }
}
