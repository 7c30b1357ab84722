package daemon

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path"
	"slices"
	"sort"
	"time"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/mesh"
)

// The topology page: GET / on the status address serves one embedded
// HTML file that polls GET /api/topology and draws the mesh as this
// router sees it. Both are read-only; nothing here changes any state.
// Who can reach them is who can reach the status address (loopback by
// default); the Host guard (statushost.go) keeps pages of other origins
// from reading them through DNS rebinding, and no CORS header is ever
// sent, so a browser gives a cross-origin page nothing of the answers.

//go:embed page/index.html
var pageHTML []byte

// pageCSP returns the Content-Security-Policy of the page: nothing but
// its own inline script and style (allowed by their SHA-256, so no other
// inline script runs and nothing is evaluated), requests to its own
// origin only, no frames, forms, plugins or base URL.
func pageCSP(html []byte) string {
	return "default-src 'none'; script-src " + inlineHash(html, "<script>", "</script>") +
		"; style-src " + inlineHash(html, "<style>", "</style>") +
		"; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// inlineHash is the CSP source ('sha256-...') of the text between the
// first open and the close after it in html; 'none' if there is none.
func inlineHash(html []byte, open, close string) string {
	_, rest, ok := bytes.Cut(html, []byte(open))
	if !ok {
		return "'none'"
	}
	body, _, ok := bytes.Cut(rest, []byte(close))
	if !ok {
		return "'none'"
	}
	sum := sha256.Sum256(body)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// pageHeaders sets the content type and the security headers of every
// answer under the page.
func pageHeaders(w http.ResponseWriter, ctype, csp string) {
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
}

// noQuery answers 400 and returns false when r has a query string.
func noQuery(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.RawQuery == "" && !r.URL.ForceQuery {
		return true
	}
	http.Error(w, "weft status API: this path takes no query string", http.StatusBadRequest)
	return false
}

// servePage registers the page and the topology endpoint on mux. Neither
// takes a query string (400).
func (d *Daemon) servePage(mux *http.ServeMux) {
	csp := pageCSP(pageHTML)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		if !noQuery(w, r) {
			return
		}
		pageHeaders(w, "text/html; charset=utf-8", csp)
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(pageHTML)
	})
	mux.HandleFunc("GET /api/topology", func(w http.ResponseWriter, r *http.Request) {
		if !noQuery(w, r) {
			return
		}
		body, err := json.Marshal(topologyOf(d.Report(), time.Now()))
		if err != nil { // not expected: strings, numbers and slices only
			d.log.Error("topology snapshot", "err", err)
			http.Error(w, "weft status API: internal error", http.StatusInternalServerError)
			return
		}
		pageHeaders(w, "application/json", csp)
		w.Header().Set("Cache-Control", "no-store")
		w.Write(body)
	})
}

// Link states of the topology snapshot, in the order the page ranks them.
const (
	// linkDirect: our connection to the peer is established, unencrypted.
	linkDirect = "direct"
	// linkEncrypted: our connection is established and its data sealed.
	linkEncrypted = "encrypted"
	// linkRelayed: no established connection of ours; frames reach the
	// peer through another peer (Via).
	linkRelayed = "relayed"
	// linkFailing: our connection or attempt is not established and the
	// peer is not reachable through another either.
	linkFailing = "failing"
	// linkRemote: a connection between two other peers, as they report
	// it in the topology; established at both ends.
	linkRemote = "remote"
)

// topology is the answer of GET /api/topology (documented in
// docs/observability.md#the-topology-page).
type topology struct {
	Time       string         `json:"time"`
	Version    string         `json:"version"`
	Self       string         `json:"self"`
	NickName   string         `json:"nickname"`
	Encryption bool           `json:"encryption"`
	Peers      []topoPeer     `json:"peers"`
	Links      []topoLink     `json:"links"`
	Traffic    topoTraffic    `json:"traffic"`
	Targets    []topoTarget   `json:"targets"`
	DNS        []topoDNSEntry `json:"dns"`
}

// topoPeer is one node of the drawing: a peer of the topology, or the
// address of an attempt whose peer is not known ("address" set, "name"
// empty).
type topoPeer struct {
	ID        string `json:"id"`
	Name      string `json:"name,omitempty"`
	NickName  string `json:"nickname,omitempty"`
	Address   string `json:"address,omitempty"`
	Self      bool   `json:"self,omitempty"`
	Reachable bool   `json:"reachable"`
}

// topoLink is one edge between two nodes (IDs A and B, A the local
// router for links of ours).
type topoLink struct {
	A     string `json:"a"`
	B     string `json:"b"`
	State string `json:"state"`
	// Via is the next hop (peer ID) of a relayed link.
	Via string `json:"via,omitempty"`
	// Connection is the state of our connection or attempt ("established",
	// "pending", "retrying", ...), empty for relayed links without one and
	// for remote links.
	Connection string `json:"connection,omitempty"`
	Address    string `json:"address,omitempty"`
	Outbound   bool   `json:"outbound,omitempty"`
	Encrypted  bool   `json:"encrypted,omitempty"`
	// PMTU is the verified path MTU of an established link of ours; 0
	// when not known.
	PMTU int `json:"pmtu,omitempty"`
	// RTTMillis is the round-trip time of our established control
	// connection (the kernel's lowest TCP RTT sample of the last five
	// minutes, rtt.go), null when not known.
	RTTMillis *float64 `json:"rtt_ms"`
	// Bytes is the data this router sent and received on its direct data
	// path to the peer (report's data_paths tx_bytes + rx_bytes); null
	// for links of other peers and relayed ones.
	Bytes  *uint64 `json:"bytes"`
	Reason string  `json:"reason,omitempty"`
}

// topoTraffic is the router's data-plane totals (router.Stats).
type topoTraffic struct {
	UDPBytesIn      uint64 `json:"udp_bytes_in"`
	UDPBytesOut     uint64 `json:"udp_bytes_out"`
	UDPDatagramsIn  uint64 `json:"udp_datagrams_in"`
	UDPDatagramsOut uint64 `json:"udp_datagrams_out"`
	TAPBytesIn      uint64 `json:"tap_bytes_in"`
	TAPBytesOut     uint64 `json:"tap_bytes_out"`
	Relayed         uint64 `json:"relayed"`
}

// topoTarget is one attached target.
type topoTarget struct {
	Target string   `json:"target"`
	Name   string   `json:"name,omitempty"`
	MAC    string   `json:"mac"`
	Addrs  []string `json:"addrs"`
}

// topoDNSEntry is one DNS record of the mesh.
type topoDNSEntry struct {
	Name     string `json:"name"`
	Address  string `json:"address"`
	Peer     string `json:"peer"`
	NickName string `json:"nickname,omitempty"`
}

// connRank orders the states of our connections: a peer's link shows its
// best connection.
func connRank(state string) int {
	switch state {
	case mesh.StateEstablished:
		return 0
	case mesh.StatePending:
		return 1
	case mesh.StateConnecting:
		return 2
	default:
		return 3
	}
}

// topologyOf builds the snapshot from a report of the router.
func topologyOf(r control.Report, now time.Time) topology {
	self := r.Router.Name
	t := topology{
		Time: now.UTC().Format(time.RFC3339), Version: r.Version,
		Self: self, NickName: r.Router.NickName, Encryption: r.Router.Encryption,
		Peers: []topoPeer{}, Links: []topoLink{}, Targets: []topoTarget{}, DNS: []topoDNSEntry{},
	}
	via := map[string]string{}
	for _, u := range r.Router.UnicastRoutes {
		via[u.Dest] = u.Via
	}
	nodes := map[string]int{} // ID -> index into t.Peers
	addNode := func(p topoPeer) {
		if _, ok := nodes[p.ID]; !ok {
			nodes[p.ID] = len(t.Peers)
			t.Peers = append(t.Peers, p)
		}
	}
	addNode(topoPeer{ID: self, Name: self, NickName: r.Router.NickName, Self: true, Reachable: true})
	for _, p := range r.Router.Peers {
		_, reach := via[p.Name]
		addNode(topoPeer{ID: p.Name, Name: p.Name, NickName: p.NickName, Reachable: reach || p.Name == self})
	}

	// Our links: the best connection or attempt per peer (or address).
	best := map[string]control.Connection{}
	var order []string
	for _, c := range r.Router.Connections {
		id := c.Peer
		if id == "" {
			id = "addr:" + c.Address
			addNode(topoPeer{ID: id, Address: c.Address})
		} else {
			_, reach := via[id]
			addNode(topoPeer{ID: id, Name: c.Peer, NickName: c.NickName, Reachable: reach})
		}
		if id == self {
			continue
		}
		if b, ok := best[id]; !ok || connRank(c.State) < connRank(b.State) {
			if !ok {
				order = append(order, id)
			}
			best[id] = c
		}
	}
	traffic := map[string]uint64{}
	for _, dp := range r.Router.DataPaths {
		traffic[dp.Peer] = dp.TxBytes + dp.RxBytes
	}
	ours := map[string]bool{}
	for _, id := range order {
		c := best[id]
		l := topoLink{A: self, B: id, Connection: c.State, Address: c.Address, Outbound: c.Outbound,
			Encrypted: c.Encrypted, Reason: c.Reason}
		if n, ok := traffic[id]; ok {
			l.Bytes = &n
		}
		if c.State == mesh.StateEstablished && c.RTTMicros > 0 {
			ms := float64(c.RTTMicros) / 1000
			l.RTTMillis = &ms
		}
		switch {
		case c.State == mesh.StateEstablished && c.Encrypted:
			l.State, l.PMTU = linkEncrypted, c.MTU
		case c.State == mesh.StateEstablished:
			l.State, l.PMTU = linkDirect, c.MTU
		case via[id] != "" && via[id] != id:
			l.State, l.Via = linkRelayed, via[id]
		default:
			l.State = linkFailing
		}
		ours[id] = true
		t.Links = append(t.Links, l)
	}
	// Peers we reach only through others.
	for _, p := range r.Router.Peers {
		if v := via[p.Name]; p.Name != self && !ours[p.Name] && v != "" && v != p.Name {
			t.Links = append(t.Links, topoLink{A: self, B: p.Name, State: linkRelayed, Via: v})
			ours[p.Name] = true
		}
	}
	// Links between other peers, established at both ends.
	est := map[[2]string]int{}
	for _, p := range r.Router.Peers {
		for _, c := range p.Connections {
			if c.Established && p.Name != c.Name {
				est[pair(p.Name, c.Name)]++
			}
		}
	}
	var remote [][2]string
	for k, n := range est {
		if n >= 2 && k[0] != self && k[1] != self {
			remote = append(remote, k)
		}
	}
	sort.Slice(remote, func(i, j int) bool { return slices.Compare(remote[i][:], remote[j][:]) < 0 })
	for _, k := range remote {
		t.Links = append(t.Links, topoLink{A: k[0], B: k[1], State: linkRemote})
	}

	s := r.Router.Stats
	t.Traffic = topoTraffic{
		UDPBytesIn: s["udp_bytes_in"], UDPBytesOut: s["udp_bytes_out"],
		UDPDatagramsIn: s["udp_datagrams_in"], UDPDatagramsOut: s["udp_datagrams_out"],
		TAPBytesIn: s["tap_bytes_in"], TAPBytesOut: s["tap_bytes_out"], Relayed: s["relayed"],
	}
	for _, a := range r.Attachments {
		addrs := a.Addrs
		if addrs == nil {
			addrs = []string{}
		}
		t.Targets = append(t.Targets, topoTarget{Target: a.Target, Name: a.Name, MAC: a.MAC, Addrs: addrs})
	}
	if r.DNS != nil {
		for _, e := range r.DNS.Entries {
			t.DNS = append(t.DNS, topoDNSEntry{Name: e.Name, Address: e.Address, Peer: e.Peer, NickName: e.NickName})
		}
	}
	return t
}

// pair is the unordered pair {a, b} in a canonical order.
func pair(a, b string) [2]string {
	if b < a {
		a, b = b, a
	}
	return [2]string{a, b}
}

// cleanPaths answers 404 to a request whose path is not in clean form
// (dot segments, doubled or trailing slashes) where http.ServeMux would
// redirect: the status API has no such paths.
func cleanPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == "" || p[0] != '/' || path.Clean(p) != p {
			http.Error(w, "weft status API: no such path", http.StatusNotFound)
			return
		}
		next.ServeHTTP(w, r)
	})
}
