// A non-browser peer written against the seed's protocol only, with @roamhq/wrtc: it registers
// over a WebSocket, offers with POST /offer after ICE gathering (plain `candidate:` strings, no
// id), and takes its answer from the `answer` push. Node's WebSocket needs --experimental-websocket.
import wrtc from '@roamhq/wrtc';

const b64 = (text) => Buffer.from(text, 'utf8').toString('base64');
const unb64 = (s) => Buffer.from(s, 'base64').toString('utf8');

/** A received candidate string: this project's JSON form or a plain line. */
function candidateInit(s) {
  if (s.startsWith('{')) return JSON.parse(s);
  return { candidate: s, sdpMLineIndex: 0 };
}

export class SeedPeer {
  constructor(baseUrl, domain) {
    this.baseUrl = baseUrl;
    this.domain = domain;
    this.frames = [];
    this.messages = [];
    this._waiters = [];
  }

  register() {
    const url = new URL(`ws/${this.domain}`, this.baseUrl);
    url.protocol = 'ws:';
    this.ws = new WebSocket(url);
    this.ws.onmessage = (e) => {
      this.frames.push(JSON.parse(e.data));
      for (const w of this._waiters.splice(0)) w();
    };
    return new Promise((resolve, reject) => {
      this.ws.onopen = resolve;
      this.ws.onerror = () => reject(new Error(`cannot register ${this.domain}`));
    });
  }

  /** The first frame (seen already or still to come) for which pred is true. */
  async frame(pred, timeout = 10000) {
    const deadline = Date.now() + timeout;
    for (;;) {
      const f = this.frames.find(pred);
      if (f) return f;
      if (Date.now() > deadline) throw new Error(`${this.domain}: no such frame; got ${JSON.stringify(this.frames)}`);
      await new Promise((r) => { this._waiters.push(r); setTimeout(r, 200); });
    }
  }

  /** Calls remote; resolves once the data channel is open. */
  async call(remote) {
    const pc = new wrtc.RTCPeerConnection({ iceServers: [] });
    this.pc = pc;
    const candidates = [];
    const gathered = new Promise((resolve) => {
      pc.onicecandidate = (e) => (e.candidate ? candidates.push(e.candidate.candidate) : resolve());
    });
    this.channel = pc.createDataChannel('chat');
    this.channel.onmessage = (e) => this.messages.push(String(e.data));
    const open = new Promise((resolve) => { this.channel.onopen = resolve; });
    await pc.setLocalDescription(await pc.createOffer());
    await gathered;
    this.offer = { offer_sdp: b64(pc.localDescription.sdp), candidate: candidates, answer_domain: remote, offer_domain: this.domain };
    const res = await fetch(new URL('offer', this.baseUrl), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(this.offer),
    });
    this.offerResp = await res.json();
    if (res.status !== 200) throw new Error(`POST /offer: ${res.status} ${JSON.stringify(this.offerResp)}`);
    const answer = await this.frame((f) => f.ty === 'answer' && f.id === this.offerResp.data.id);
    this.answer = answer;
    await pc.setRemoteDescription({ type: 'answer', sdp: unb64(answer.answer_resp.answer_sdp) });
    for (const c of answer.answer_resp.candidate) await pc.addIceCandidate(candidateInit(c));
    await open;
  }

  close() {
    if (this.pc) this.pc.close();
    if (this.ws) this.ws.close();
  }
}
