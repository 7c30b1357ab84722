package daemon

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/router/routertest"
)

// TestTopologyOf: links of ours take the state of our best connection
// (encrypted, direct, or relayed/failing when not established), peers
// reached only through others get a relayed link naming the next hop,
// links between other peers count only when both ends report them
// established, and attempts to unknown peers are nodes of their own.
func TestTopologyOf(t *testing.T) {
	r := control.Report{Version: "v", Router: control.RouterReport{
		Name: "aa", NickName: "a", Encryption: true,
		Peers: []control.Peer{
			{Name: "aa", NickName: "a", Connections: []control.PeerLink{{Name: "bb", Established: true}, {Name: "cc", Established: true}}},
			{Name: "bb", NickName: "b", Connections: []control.PeerLink{{Name: "aa", Established: true}, {Name: "dd", Established: true}, {Name: "ee", Established: true}}},
			{Name: "cc", NickName: "c", Connections: []control.PeerLink{{Name: "aa", Established: true}}},
			{Name: "dd", NickName: "d", Connections: []control.PeerLink{{Name: "bb", Established: true}}},
			{Name: "ee", NickName: "<img src=x>", Connections: []control.PeerLink{{Name: "bb", Established: false}}},
		},
		Connections: []control.Connection{
			{Outbound: true, Address: "10.0.0.2:6783", State: "established", Peer: "bb", NickName: "b", Encrypted: true, MTU: 1410, RTTMicros: 1500},
			{Outbound: false, Address: "10.0.0.3:40000", State: "established", Peer: "cc", NickName: "c", MTU: 1438},
			{Outbound: true, Address: "10.0.0.3:6783", State: "retrying", Peer: "cc", Reason: "connection refused"},
			{Outbound: true, Address: "10.0.0.4:6783", State: "retrying", Peer: "dd", Reason: "timeout"},
			{Outbound: true, Address: "10.0.0.9:6783", State: "connecting"},
			// Connected, not yet in the topology: a node, reachable once routed.
			{Outbound: true, Address: "10.0.0.6:6783", State: "pending", Peer: "ff", NickName: "f"},
		},
		UnicastRoutes: []control.UnicastRoute{{Dest: "bb", Via: "bb"}, {Dest: "cc", Via: "cc"}, {Dest: "dd", Via: "bb"}, {Dest: "ff", Via: "ff"}},
		Stats:         map[string]uint64{"udp_bytes_in": 7, "relayed": 3},
	}, Attachments: []control.Attachment{{Target: "netns:x", MAC: "02:00:00:00:00:01", Name: "web"}},
		DNS: &control.DNSReport{Entries: []control.DNSRecord{{Name: "web.weft.local.", Address: "10.32.0.1", Peer: "aa", NickName: "a"}}}}
	got := topologyOf(r, time.Unix(0, 0))
	states := map[string]topoLink{}
	for _, l := range got.Links {
		states[l.A+"-"+l.B] = l
	}
	want := map[string]string{
		"aa-bb": linkEncrypted, "aa-cc": linkDirect, "aa-dd": linkRelayed,
		"aa-addr:10.0.0.9:6783": linkFailing, "bb-dd": linkRemote, "aa-ff": linkFailing,
	}
	if len(states) != len(want) {
		t.Errorf("links %+v, want %v", got.Links, want)
	}
	for k, s := range want {
		if states[k].State != s {
			t.Errorf("link %s: %+v, want state %s", k, states[k], s)
		}
	}
	if l := states["aa-bb"]; l.PMTU != 1410 || l.RTTMillis == nil || *l.RTTMillis != 1.5 || l.Bytes != nil || !l.Outbound {
		t.Errorf("aa-bb: %+v", l)
	}
	if l := states["aa-cc"]; l.PMTU != 1438 || l.Connection != "established" || l.Reason != "" || l.RTTMillis != nil {
		t.Errorf("aa-cc: the established connection should win over the attempt: %+v", l)
	}
	if l := states["aa-dd"]; l.Via != "bb" || l.Connection != "retrying" || l.Reason != "timeout" || l.PMTU != 0 {
		t.Errorf("aa-dd: %+v", l)
	}
	if len(got.Peers) != 7 || !got.Peers[0].Self || got.Peers[0].ID != "aa" {
		t.Errorf("peers %+v", got.Peers)
	}
	for _, p := range got.Peers {
		if p.ID == "ee" && (p.Reachable || p.NickName != "<img src=x>") {
			t.Errorf("ee: %+v", p)
		}
		if p.ID == "ff" && (!p.Reachable || p.NickName != "f") {
			t.Errorf("ff: %+v", p)
		}
		if p.ID == "addr:10.0.0.9:6783" && (p.Name != "" || p.Address != "10.0.0.9:6783" || p.Reachable) {
			t.Errorf("attempt node: %+v", p)
		}
	}
	if got.Traffic.UDPBytesIn != 7 || got.Traffic.Relayed != 3 || len(got.Targets) != 1 || got.Targets[0].Addrs == nil ||
		len(got.DNS) != 1 || got.Time != "1970-01-01T00:00:00Z" || !got.Encryption {
		t.Errorf("snapshot %+v", got)
	}
	b, _ := json.Marshal(got)
	if !strings.Contains(string(b), `"rtt_ms":null`) || !strings.Contains(string(b), `"rtt_ms":1.5`) {
		t.Errorf("rtt_ms is not 1.5 for aa-bb and null for the others in %s", b)
	}
}

// TestPageCSP: the page's policy allows exactly its own inline script and
// style by hash, and nothing from anywhere else.
func TestPageCSP(t *testing.T) {
	csp := pageCSP(pageHTML)
	for _, want := range []string{"default-src 'none'", "script-src 'sha256-", "style-src 'sha256-", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "http:", "https:", "*"} {
		if strings.Contains(csp, bad) {
			t.Errorf("CSP %q allows %q", csp, bad)
		}
	}
	if got := pageCSP([]byte("<p>no script</p>")); !strings.Contains(got, "script-src 'none'") {
		t.Errorf("page without a script: %q", got)
	}
	for _, bad := range []string{"http://", "https://", "innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "document.write", "new Function"} {
		// The SVG namespace is a name, not something fetched.
		if strings.Contains(strings.ReplaceAll(string(pageHTML), `"http://www.w3.org/2000/svg"`, ""), bad) {
			t.Errorf("page contains %q", bad)
		}
	}
}

// rawRequest sends req as it is on a new connection to addr and returns the
// status code and body of the answer.
func rawRequest(t *testing.T, addr, req string) (int, http.Header, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatalf("write %.60q: %v", req, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%.60q: no answer: %v", req, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header, string(body)
}

// TestStatusAPIHostileInput: unknown paths, paths that are not clean,
// huge URLs and headers, query strings where none is taken, and methods
// other than GET get a 4xx, never a 2xx, 3xx or 5xx, and no answer names
// Go internals or carries CORS headers. The page and /api/topology answer
// a plain GET with the data of a real router.
func TestStatusAPIHostileInput(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	nw := routertest.NewNetwork(21)
	a := startRouterWith(t, nw, t.TempDir(), newFakeHost(), 7021, func(c *Config) { c.StatusAddr = addr })
	peer := fmt.Sprintf("127.0.0.1:%d", a.report(t).Router.Port)
	startRouter(t, nw, t.TempDir(), newFakeHost(), 7022, peer)

	get := func(path string) (int, http.Header, string) {
		return rawRequest(t, addr, "GET "+path+" HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\nConnection: close\r\n\r\n")
	}
	// The page and the snapshot, with a link that becomes direct.
	code, h, body := get("/")
	if code != 200 || !strings.Contains(body, "<svg id=\"graph\"") || !strings.HasPrefix(h.Get("Content-Type"), "text/html") ||
		!strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("GET /: %d %v %.80q", code, h, body)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, h, body = get("/api/topology")
		var topo topology
		if code != 200 || h.Get("Content-Type") != "application/json" {
			t.Fatalf("GET /api/topology: %d %v %.200q", code, h, body)
		}
		if err := json.Unmarshal([]byte(body), &topo); err != nil {
			t.Fatalf("GET /api/topology: %v in %.200q", err, body)
		}
		if len(topo.Peers) == 2 && len(topo.Links) == 1 && topo.Links[0].State == linkDirect && topo.Links[0].PMTU > 0 &&
			topo.Links[0].RTTMillis != nil && *topo.Links[0].RTTMillis > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no direct link with a PMTU and an RTT after 15 s: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}

	huge := strings.Repeat("a", 100<<10)
	for _, c := range []struct{ what, req string }{
		// Go's server answers the one request it cannot parse as HTTP/1
		// itself, before any handler, with 505; every other is a 4xx.
		{"bad version", "GET / HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n"},
		{"unknown path", "GET /nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
		{"unknown API path", "GET /api/topology/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
		{"unknown view", "GET /status/nope HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
		{"control API path", "GET /connect HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
		{"dot segments", "GET /status/../report HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
		{"double slash", "GET //api/topology HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
		{"trailing slash", "GET /report/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
		{"encoded dots", "GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
		{"absolute URL", "GET http://127.0.0.1/../x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
		{"query on the page", "GET /?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
		{"query on the API", "GET /api/topology?peer=x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
		{"empty query", "GET /api/topology? HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
		{"huge query", "GET /api/topology?q=" + huge + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
		{"huge query on /status", "GET /status?q=" + huge + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
		{"huge path", "GET /" + huge + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
		{"huge header", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A: " + huge + "\r\n\r\n"},
		{"many headers", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + strings.Repeat("X-A: b\r\n", 10000) + "\r\n"},
		{"POST /", "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}"},
		{"POST /api/topology", "POST /api/topology HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"},
		{"PUT /report", "PUT /report HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"},
		{"DELETE /metrics", "DELETE /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
		{"POST /connect", "POST /connect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"peers\":[]}\n"},
		{"POST /stop", "POST /stop HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"},
		{"TRACE", "TRACE / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
		{"OPTIONS", "OPTIONS /api/topology HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\nAccess-Control-Request-Method: GET\r\n\r\n"},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
		{"CONNECT", "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n"},
		{"unknown method", "BREW / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"},
		{"no Host", "GET / HTTP/1.1\r\n\r\n"},
		{"foreign Host", "GET /api/topology HTTP/1.1\r\nHost: evil.example\r\n\r\n"},
		{"garbage", "\x00\x01\x02 / HTTP/1.1\r\n\r\n"},
	} {
		code, h, body := rawRequest(t, addr, c.req)
		if (code < 400 || code > 499) && !(c.what == "bad version" && code == http.StatusHTTPVersionNotSupported) {
			t.Errorf("%s: %d %.200q, want 4xx", c.what, code, body)
		}
		for _, bad := range []string{"panic", "goroutine", ".go:", "runtime."} {
			if strings.Contains(body, bad) {
				t.Errorf("%s: answer contains %q: %.200q", c.what, bad, body)
			}
		}
		for k := range h {
			if strings.HasPrefix(strings.ToLower(k), "access-control-") {
				t.Errorf("%s: CORS header %s: %s", c.what, k, h.Get(k))
			}
		}
	}
	// Whatever came before, the router still answers.
	if code, _, _ := get("/api/topology"); code != 200 {
		t.Errorf("after hostile requests: GET /api/topology: %d", code)
	}
	if code, h, _ := get("/api/topology"); code != 200 || h.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("GET with Origin: %d, CORS %q", code, h.Get("Access-Control-Allow-Origin"))
	}
}
