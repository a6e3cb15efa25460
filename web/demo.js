// The demo page: go online under a name, call another name, chat over a data channel, and
// optionally share the camera. Everything it does goes through /signal-client.js.
import { CLOSE, SignalClient } from '/signal-client.js';

const $ = (id) => document.getElementById(id);
const ui = {
  conn: $('conn'), registerForm: $('register-form'), domain: $('domain'), token: $('token'), register: $('register'),
  note: $('register-note'),
  callForm: $('call-form'), remote: $('remote'), callButton: $('call'), trickle: $('trickle'), camera: $('camera'),
  incoming: $('incoming'), incomingFrom: $('incoming-from'), accept: $('accept'), decline: $('decline'),
  panel: $('call-panel'), peer: $('peer'), callState: $('call-state'), hangup: $('hangup'),
  videos: $('videos'), remoteVideo: $('remote-video'), localVideo: $('local-video'),
  chat: $('chat'), chatForm: $('chat-form'), message: $('message'), send: $('send'), log: $('log'),
};

/** @type {SignalClient | null} */
let client = null;
/** @type {import('/signal-client.js').Call | null} */
let call = null; /* the call shown in the panel */
/** @type {import('/signal-client.js').Call | null} */
let ringing = null;
let localStream = null;

const BYE_TEXT = { hangup: 'hung up', disconnected: 'went offline', timeout: 'did not answer in time' };
const END_TEXT = {
  hangup: 'You ended the call.', error: 'The call failed.', failed: 'The connection failed.',
  disconnected: 'You lost the server; the call ended.', closed: 'The call ended.',
};

function log(text) {
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  ui.log.append(li);
  ui.log.scrollTop = ui.log.scrollHeight;
}

function chatLine(text, cls) {
  const li = document.createElement('li');
  li.textContent = text;
  if (cls) li.className = cls;
  ui.chat.append(li);
  ui.chat.scrollTop = ui.chat.scrollHeight;
}

function setBadge(el, state, text) {
  el.dataset.state = state;
  el.textContent = text;
}

function refresh() {
  const online = client !== null && client.state === 'open';
  const inCall = call !== null && call.state !== 'closed';
  ui.domain.disabled = ui.token.disabled = client !== null;
  ui.register.textContent = client ? 'Go offline' : 'Go online';
  ui.remote.disabled = ui.callButton.disabled = !online || inCall;
  ui.hangup.hidden = !inCall;
  const chatOpen = inCall && call.channel !== null && call.channel.readyState === 'open';
  ui.message.disabled = ui.send.disabled = !chatOpen;
}

function showConn() {
  if (!client) return setBadge(ui.conn, 'closed', 'offline');
  const text = { open: `online as ${client.domain}`, connecting: 'connecting…', reconnecting: 'reconnecting…', closed: 'offline' };
  setBadge(ui.conn, client.state, text[client.state]);
}

async function camera() {
  if (!ui.camera.checked) return null;
  if (!localStream) {
    try {
      localStream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    } catch (err) {
      log(`camera unavailable: ${err.message} (it needs https or localhost)`);
      return null;
    }
  }
  ui.localVideo.srcObject = localStream;
  return localStream;
}

function stopCamera() {
  if (localStream) for (const t of localStream.getTracks()) t.stop();
  localStream = null;
  ui.localVideo.srcObject = ui.remoteVideo.srcObject = null;
  ui.videos.hidden = true;
}

/** Shows c in the panel and wires its events. */
function show(c) {
  call = c;
  ui.panel.hidden = false;
  ui.peer.textContent = c.remote;
  ui.chat.replaceChildren();
  chatLine(c.direction === 'outgoing' ? `Calling ${c.remote}…` : `Talking with ${c.remote}.`, 'note');
  if (localStream) ui.videos.hidden = false;
  const shown = () => call === c;
  const state = () => {
    if (!shown()) return;
    setBadge(ui.callState, c.state, c.state === 'closed' ? 'ended' : c.state);
    refresh();
  };
  state();
  c.addEventListener('statechange', () => {
    log(`call ${c.id}: ${c.state}`);
    if (c.state === 'connected' && shown()) chatLine(`Connected to ${c.remote}.`, 'note');
    state();
  });
  c.addEventListener('datachannel', (e) => {
    const ch = e.channel;
    log(`data channel "${ch.label}"`);
    ch.addEventListener('open', state);
    ch.addEventListener('close', state);
    ch.addEventListener('message', (m) => { if (shown()) chatLine(String(m.data), 'them'); });
  });
  c.addEventListener('track', (e) => {
    log(`remote ${e.track.kind} track`);
    if (!shown()) return;
    ui.remoteVideo.srcObject = e.streams[0] || new MediaStream([e.track]);
    ui.videos.hidden = false;
  });
  c.addEventListener('bye', (e) => {
    log(`bye from ${e.from} (${e.reason})`);
    if (shown()) chatLine(`${c.remote} ${BYE_TEXT[e.reason] || `left (${e.reason})`}.`, 'note');
  });
  c.addEventListener('error', (e) => {
    log(`call error ${e.error.status}: ${e.error.message}`);
    if (shown() && c.state !== 'closed') chatLine(`Error: ${e.error.message}`, 'note');
  });
  c.addEventListener('end', (e) => {
    log(`call ${c.id} ended: ${e.reason}`);
    if (!shown()) return;
    if (e.reason !== 'bye') chatLine(END_TEXT[e.reason] || 'The call ended.', 'note');
    stopCamera();
    state();
  });
}

function goOnline(domain, token) {
  sessionStorage.setItem('signal-demo-domain', domain);
  ui.note.hidden = true;
  /* ?relay=1: TURN relays only (the server's /turn-credentials must offer a TURN server) */
  const relay = new URLSearchParams(location.search).get('relay') === '1';
  client = new SignalClient({ domain, token, iceTransportPolicy: relay ? 'relay' : 'all' });
  client.addEventListener('open', (e) => { log(e.reconnected ? 'online again (re-registered)' : `online as ${domain}`); showConn(); refresh(); });
  client.addEventListener('close', (e) => {
    log(`server connection closed: ${e.code}${e.reason ? ` ${e.reason}` : ''}`);
    if (!e.reconnect) {
      const refused = `The server refused ${domain}: ${e.code} ${e.reason}.`;
      const why = {
        [CLOSE.REPLACED]: `Another tab or device took the name ${domain}.`, [CLOSE.TAKEN]: `The name ${domain} is taken.`,
        [CLOSE.UNAUTHORIZED]: `${refused} It needs a valid token for this name.`, [CLOSE.FORBIDDEN]: refused,
      }[e.code];
      if (why) {
        log(why);
        ui.note.textContent = why;
        ui.note.hidden = false;
      }
      client = null;
    }
    showConn();
    refresh();
  });
  client.addEventListener('reconnecting', (e) => { log(`reconnecting in ${(e.delay / 1000).toFixed(1)} s (attempt ${e.attempt})`); showConn(); });
  client.addEventListener('error', (e) => log(`error ${e.error.status}: ${e.error.message}`));
  client.addEventListener('incoming', (e) => {
    const c = e.call;
    log(`incoming call ${c.id} from ${c.remote}`);
    if ((call && call.state !== 'closed') || ringing) {
      log(`busy: declined ${c.remote}`);
      c.reject();
      return;
    }
    ringing = c;
    ui.incomingFrom.textContent = c.remote;
    ui.incoming.hidden = false;
    c.addEventListener('end', () => {
      if (ringing !== c) return;
      ringing = null;
      ui.incoming.hidden = true;
      log(`missed call from ${c.remote}`);
    });
  });
  showConn();
  refresh();
  client.connect().catch(() => {});
}

ui.registerForm.addEventListener('submit', (e) => {
  e.preventDefault();
  if (client) {
    client.close();
    client = null;
    showConn();
    refresh();
    return;
  }
  const domain = ui.domain.value.trim();
  if (ui.domain.reportValidity()) goOnline(domain, ui.token.value.trim() || undefined);
});

ui.callForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  const remote = ui.remote.value.trim();
  if (!client || !ui.remote.reportValidity()) return;
  if (remote === client.domain) return log('calling yourself does not work: open a second tab');
  ui.callButton.disabled = true;
  const stream = await camera();
  const c = client.call(remote, {
    trickle: ui.trickle.checked,
    dataChannel: 'chat',
    stream,
    /* Offer to receive video even without a camera here, so the other side may share one. */
    setup: (pc) => { if (!stream) pc.addTransceiver('video', { direction: 'recvonly' }); },
  });
  log(`calling ${remote} (${c.trickle ? 'trickle ICE' : 'POST /offer'}), id ${c.id}`);
  show(c);
});

ui.accept.addEventListener('click', async () => {
  const c = ringing;
  ringing = null;
  ui.incoming.hidden = true;
  if (!c || c.state !== 'ringing') return;
  const stream = await camera();
  show(c);
  c.accept({ stream });
});

ui.decline.addEventListener('click', () => {
  const c = ringing;
  ringing = null;
  ui.incoming.hidden = true;
  if (c) c.reject();
});

ui.hangup.addEventListener('click', () => { if (call) call.hangup(); });

ui.chatForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = ui.message.value;
  if (!text || !call || !call.channel || call.channel.readyState !== 'open') return;
  call.channel.send(text);
  chatLine(text, 'me');
  ui.message.value = '';
  ui.message.focus();
});

const params = new URLSearchParams(location.search);
ui.domain.value = params.get('name') || sessionStorage.getItem('signal-demo-domain') || '';
if (params.get('call')) ui.remote.value = params.get('call');
if (params.get('name')) ui.registerForm.requestSubmit();
refresh();
