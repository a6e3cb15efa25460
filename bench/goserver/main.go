// Command go-signal is the Go peer of `make bench`: the seed protocol of docs/PROTOCOL.md
// (GET /ws/{domain}, POST /offer, the offer and answer pushes, pings) on net/http and
// gorilla/websocket, written the way Go signaling servers usually are: one goroutine per
// connection reading its frames, a mutex per connection around its writes, and the domains and
// pending offers in maps under a mutex.
//
// Usage: go-signal --addr 127.0.0.1:9000 [--ping-s 20] [--pong-timeout-s 20]
// [--answer-timeout-s 30]. SIGUSR2 forces a garbage collection that returns freed memory to the
// operating system (runtime/debug.FreeOSMemory) and prints "gc done"; SIGTERM stops it.
package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

const (
	maxMessageBytes = 65536
	maxBodyBytes    = 65536
	writeWait       = 10 * time.Second
)

// OfferReq is the seed's offer: the body of POST /offer and a part of both pushes.
type OfferReq struct {
	OfferSDP     string   `json:"offer_sdp"`
	Candidate    []string `json:"candidate"`
	AnswerDomain string   `json:"answer_domain"`
	OfferDomain  string   `json:"offer_domain"`
}

// AnswerResp is the seed's answer.
type AnswerResp struct {
	AnswerSDP    string   `json:"answer_sdp"`
	Candidate    []string `json:"candidate"`
	AnswerDomain string   `json:"answer_domain"`
}

// Obj is a frame on a WebSocket, both ways.
type Obj struct {
	Ty         string      `json:"ty"`
	ID         string      `json:"id"`
	OfferReq   *OfferReq   `json:"offer_req,omitempty"`
	AnswerResp *AnswerResp `json:"answer_resp,omitempty"`
}

// Resp is the body of every HTTP reply.
type Resp struct {
	Code int         `json:"code"`
	Msg  string      `json:"msg"`
	Data interface{} `json:"data"`
}

type errorFrame struct {
	Ty     string      `json:"ty"`
	Status int         `json:"status"`
	Msg    string      `json:"msg"`
	ID     interface{} `json:"id"`
}

type peer struct {
	ws     *websocket.Conn
	domain string
	mu     sync.Mutex // serializes writes: gorilla allows one writer at a time
	ping   *time.Timer
}

// send writes one JSON text frame.
func (p *peer) send(v interface{}) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ws.SetWriteDeadline(time.Now().Add(writeWait))
	return p.ws.WriteMessage(websocket.TextMessage, b)
}

type exchange struct {
	offer, answer string
	expire        *time.Timer
}

type server struct {
	pingInterval, pongTimeout, answerTimeout time.Duration
	upgrader                                 websocket.Upgrader

	mu      sync.Mutex
	peers   map[string]*peer
	pending map[string]*exchange
	nextID  uint64
}

func validName(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '~' || c == '-') {
			return false
		}
	}
	return true
}

func validSDP(s string) bool {
	b, err := base64.StdEncoding.DecodeString(s)
	return err == nil && strings.HasPrefix(string(b), "v=")
}

func reply(w http.ResponseWriter, status int, r Resp) {
	b, _ := json.Marshal(r)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

func fail(w http.ResponseWriter, status int, msg string) {
	reply(w, status, Resp{Code: -1, Msg: msg})
}

func (s *server) handleWS(w http.ResponseWriter, r *http.Request) {
	domain := strings.TrimPrefix(r.URL.Path, "/ws/")
	if !validName(domain, 128) {
		fail(w, http.StatusBadRequest, "domain: must be 1-128 characters of A-Z a-z 0-9 . _ ~ -")
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	p := &peer{ws: ws, domain: domain}
	ws.SetReadLimit(maxMessageBytes)
	s.mu.Lock()
	old := s.peers[domain]
	s.peers[domain] = p
	s.mu.Unlock()
	if old != nil {
		old.mu.Lock()
		old.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "replaced"),
			time.Now().Add(writeWait))
		old.mu.Unlock()
		old.ws.Close()
	}
	s.readLoop(p)
	p.ping.Stop()
	s.mu.Lock()
	if s.peers[domain] == p {
		delete(s.peers, domain)
	}
	s.mu.Unlock()
	ws.Close()
}

// readLoop runs in the connection's own goroutine until the peer goes away or is silent for a
// ping interval and the pong timeout.
func (s *server) readLoop(p *peer) {
	alive := func() { p.ws.SetReadDeadline(time.Now().Add(s.pingInterval + s.pongTimeout)) }
	alive()
	p.ws.SetPongHandler(func(string) error { alive(); return nil })
	p.ping = time.AfterFunc(s.pingInterval, func() {
		p.mu.Lock()
		err := p.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait))
		p.mu.Unlock()
		if err == nil {
			p.ping.Reset(s.pingInterval)
		}
	})
	for {
		_, data, err := p.ws.ReadMessage()
		if err != nil {
			return
		}
		alive()
		var msg Obj
		if err := json.Unmarshal(data, &msg); err != nil {
			p.send(errorFrame{"error", 400, "body: invalid JSON: " + err.Error(), nil})
			continue
		}
		switch msg.Ty {
		case "answer":
			s.answer(p, &msg)
		default:
			p.send(errorFrame{"error", 400, fmt.Sprintf("ty: unknown message type '%s'", msg.Ty), nil})
		}
	}
}

func (s *server) answer(b *peer, msg *Obj) {
	ar := msg.AnswerResp
	switch {
	case ar == nil:
		b.send(errorFrame{"error", 400, "answer_resp: required", msg.ID})
		return
	case !validSDP(ar.AnswerSDP):
		b.send(errorFrame{"error", 400, "answer_resp.answer_sdp: not a base64 SDP", msg.ID})
		return
	case ar.Candidate == nil:
		b.send(errorFrame{"error", 400, "answer_resp.candidate: required", msg.ID})
		return
	case ar.AnswerDomain == "":
		ar.AnswerDomain = b.domain
	case ar.AnswerDomain != b.domain:
		b.send(errorFrame{"error", 403, "answer_resp.answer_domain: must be your own domain '" +
			b.domain + "'", msg.ID})
		return
	}
	s.mu.Lock()
	ex := s.pending[msg.ID]
	if ex == nil || ex.answer != b.domain {
		s.mu.Unlock()
		b.send(errorFrame{"error", 404, fmt.Sprintf("id: no pending offer '%s' for you", msg.ID), msg.ID})
		return
	}
	delete(s.pending, msg.ID)
	a := s.peers[ex.offer]
	s.mu.Unlock()
	ex.expire.Stop()
	if a == nil {
		b.send(errorFrame{"error", 404, "offer_domain: '" + ex.offer + "' is not connected", msg.ID})
		return
	}
	a.send(Obj{Ty: "answer", ID: msg.ID, AnswerResp: ar, OfferReq: &OfferReq{
		Candidate: []string{}, AnswerDomain: b.domain, OfferDomain: ex.offer}})
}

func (s *server) handleOffer(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		fail(w, http.StatusMethodNotAllowed, "method: "+r.Method+" is not allowed on /offer")
		return
	}
	var body struct {
		OfferReq
		ID *string `json:"id"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err := dec.Decode(&body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			fail(w, http.StatusRequestEntityTooLarge, "body: too large")
		} else {
			fail(w, http.StatusBadRequest, "body: invalid JSON: "+err.Error())
		}
		return
	}
	req := body.OfferReq
	switch {
	case !validSDP(req.OfferSDP):
		fail(w, http.StatusBadRequest, "offer_sdp: not a base64 SDP")
		return
	case req.Candidate == nil:
		fail(w, http.StatusBadRequest, "candidate: required")
		return
	case !validName(req.AnswerDomain, 128) || !validName(req.OfferDomain, 128):
		fail(w, http.StatusBadRequest, "domains: must be 1-128 characters of A-Z a-z 0-9 . _ ~ -")
		return
	case req.AnswerDomain == req.OfferDomain:
		fail(w, http.StatusBadRequest, "answer_domain: must differ from offer_domain")
		return
	case body.ID != nil && !validName(*body.ID, 64):
		fail(w, http.StatusBadRequest, "id: must be 1-64 characters of A-Z a-z 0-9 . _ ~ -")
		return
	}
	s.mu.Lock()
	b, a := s.peers[req.AnswerDomain], s.peers[req.OfferDomain]
	var id string
	if body.ID != nil {
		id = *body.ID
	} else {
		s.nextID++
		id = "g" + strconv.FormatUint(s.nextID, 36)
	}
	var status int
	var msg string
	switch {
	case b == nil:
		status, msg = http.StatusNotFound, "answer_domain: '"+req.AnswerDomain+"' is not connected"
	case a == nil:
		status, msg = http.StatusConflict, "offer_domain: '"+req.OfferDomain+"' is not connected"
	case s.pending[id] != nil:
		status, msg = http.StatusConflict, "id: '"+id+"' is already in use"
	default:
		ex := &exchange{offer: req.OfferDomain, answer: req.AnswerDomain}
		ex.expire = time.AfterFunc(s.answerTimeout, func() { s.expire(id, ex) })
		s.pending[id] = ex
	}
	s.mu.Unlock()
	if status != 0 {
		fail(w, status, msg)
		return
	}
	push := Obj{Ty: "offer", ID: id, OfferReq: &req, AnswerResp: &AnswerResp{
		Candidate: []string{}, AnswerDomain: req.AnswerDomain}}
	if err := b.send(push); err != nil {
		s.mu.Lock()
		delete(s.pending, id)
		s.mu.Unlock()
		fail(w, http.StatusNotFound, "answer_domain: '"+req.AnswerDomain+"' is not connected")
		return
	}
	reply(w, http.StatusOK, Resp{Msg: "ok", Data: map[string]string{"id": id}})
}

// expire ends an offer that was not answered in time: the offer peer gets an error frame.
func (s *server) expire(id string, ex *exchange) {
	s.mu.Lock()
	if s.pending[id] != ex {
		s.mu.Unlock()
		return
	}
	delete(s.pending, id)
	a := s.peers[ex.offer]
	s.mu.Unlock()
	if a != nil {
		a.send(errorFrame{"error", 408, fmt.Sprintf("no answer from '%s' within %v", ex.answer,
			s.answerTimeout), id})
	}
}

func (s *server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	data := map[string]int{"domains": len(s.peers), "exchanges": len(s.pending)}
	s.mu.Unlock()
	reply(w, http.StatusOK, Resp{Msg: "ok", Data: data})
}

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "address to listen on")
	pingS := flag.Int("ping-s", 20, "seconds between pings to each peer")
	pongS := flag.Int("pong-timeout-s", 20, "seconds a peer may stay silent after a ping")
	answerS := flag.Int("answer-timeout-s", 30, "seconds an offer waits for its answer")
	flag.Parse()
	s := &server{
		pingInterval:  time.Duration(*pingS) * time.Second,
		pongTimeout:   time.Duration(*pongS) * time.Second,
		answerTimeout: time.Duration(*answerS) * time.Second,
		upgrader: websocket.Upgrader{
			HandshakeTimeout: 10 * time.Second,
			// Write buffers only while writing: an idle connection keeps none.
			WriteBufferPool: &sync.Pool{},
			CheckOrigin:     func(*http.Request) bool { return true },
		},
		peers:   make(map[string]*peer),
		pending: make(map[string]*exchange),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws/", s.handleWS)
	mux.HandleFunc("/offer", s.handleOffer)
	mux.HandleFunc("/healthz", s.handleHealthz)
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR2, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGUSR2 {
				debug.FreeOSMemory()
				fmt.Println("gc done")
				continue
			}
			srv.Close()
		}
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("go-signal: %v", err)
	}
}
