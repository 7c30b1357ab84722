package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/test/netns"
)

// TestObservability runs the checks of issue 17 on one world of three
// hosts, all connected directly: /metrics against known traffic, `weft
// doctor` and `weft ping` on the healthy mesh, bad input to the status
// API, then doctor and ping after UDP between h1 and h2 is blocked (the
// path goes through h3), then a fourth host with a password refused by h1.
// The subtests share the world and run in order.
func TestObservability(t *testing.T) {
	t.Parallel()
	w := netns.NewWorld(t, 4)
	h1, h2, h3, h4 := w.Hosts[0], w.Hosts[1], w.Hosts[2], w.Hosts[3]
	// The counters checked below are the userspace path's: without
	// --no-fastdp the kernel's fast path would carry the pings.
	h1.Launch(t, "--no-fastdp")
	h2.Launch(t, "--no-fastdp", h1.PeerAddr())
	h3.Launch(t, "--no-fastdp", h1.PeerAddr())
	// No IPv6 anywhere: its neighbour discovery and multicast reports
	// would add frames to those the metrics are checked against.
	for _, h := range []*netns.Host{h1, h2, h3} {
		h.MustRun(t, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	}
	c1 := h1.NewContainer(t, "c1")
	c2 := h2.NewContainer(t, "c2")
	for _, c := range []*netns.Container{c1, c2} {
		c.Sysctl(t, "net.ipv6.conf.all.disable_ipv6", "1")
		c.Sysctl(t, "net.ipv6.conf.default.disable_ipv6", "1")
	}
	c1.Attach(t, "10.2.1.1/24")
	c2.Attach(t, "10.2.1.2/24")
	for _, pair := range [][2]*netns.Host{{h1, h2}, {h1, h3}, {h2, h3}, {h2, h1}, {h3, h1}, {h3, h2}} {
		netns.Eventually(t, connectTimeout, pair[0].Nick+" connected to "+pair[1].Nick,
			func() error { return pair[0].EstablishedWith(pair[1]) })
	}
	name2, err := h2.PeerName()
	if err != nil {
		t.Fatal(err)
	}
	name3, err := h3.PeerName()
	if err != nil {
		t.Fatal(err)
	}
	c1.WaitPing(t, c2.IP, pingTimeout)

	t.Run("metrics", func(t *testing.T) {
		peer := map[string]string{"peer": name2, "nickname": h2.Nick}
		// The path MTU search has verified the MTU, with a round trip.
		netns.Eventually(t, connectTimeout, "h1 verified the path MTU to h2", func() error {
			m := scrape(t, h1)
			if v, ok := series(m, "weft_peer_path_mtu_verified", peer); !ok || v != 1 {
				return fmt.Errorf("weft_peer_path_mtu_verified %v %v", v, ok)
			}
			return nil
		})
		before := scrape(t, h1)
		before2 := scrape(t, h2)
		const n, size = 40, 1000
		if got, out := pingSized(c1, c2.IP, size, n); got != n {
			t.Fatalf("%d of %d pings answered: %s", got, n, out)
		}
		for i := range 3 {
			if r := query(t, c1, fmt.Sprintf("nobody%d.weft.local.", i), dns.TypeA, "udp"); r.Rcode != dns.RcodeNameError {
				t.Fatalf("query: %v", r)
			}
		}
		after := scrape(t, h1)
		after2 := scrape(t, h2)
		// Each echo request is one IP packet of size+28 bytes in one frame
		// (14 more); a datagram adds its header, record header and tag.
		frame := float64(size + 28 + 14)
		const slack = 10 // ARP, and anything else a host sends meanwhile
		for _, c := range []struct {
			what     string
			got      float64
			min, max float64
		}{
			{"h1 frames sent to h2", grew(t, before, after, "weft_peer_sent_frames_total", peer), n, n + slack},
			{"h1 bytes sent to h2", grew(t, before, after, "weft_peer_sent_bytes_total", peer), n * frame, (n + slack) * (frame + 100)},
			{"h1 frames received from h2", grew(t, before, after, "weft_peer_received_frames_total", peer), n, n + slack},
			{"h1 bytes received from h2", grew(t, before, after, "weft_peer_received_bytes_total", peer), n * frame, (n + slack) * (frame + 100)},
			{"h1 datagrams sent to h2", grew(t, before, after, "weft_peer_sent_datagrams_total", peer), n, 3 * (n + slack)},
			{"h1 frames read from its device", grew(t, before, after, "weft_device_read_frames_total", nil), n, n + slack},
			{"h1 frames written to its device", grew(t, before, after, "weft_device_written_frames_total", nil), n, n + slack},
			{"h1 UDP datagrams sent", grew(t, before, after, "weft_udp_sent_datagrams_total", nil), n, 10 * (n + slack)},
			{"h2 frames received from h1", grew(t, before2, after2, "weft_peer_received_frames_total", map[string]string{"peer": mustName(t, h1), "nickname": h1.Nick}), n, n + slack},
			{"h1 NXDOMAIN answers to A queries", grew(t, before, after, "weft_dns_answers_total", map[string]string{"type": "A", "rcode": "NXDOMAIN"}), 3, 3},
			{"h1 drops of unknown senders", grew(t, before, after, "weft_dropped_total", map[string]string{"reason": "unknown_sender"}), 0, 0},
		} {
			if c.got < c.min || c.got > c.max {
				t.Errorf("%s: grew by %v, want %v..%v", c.what, c.got, c.min, c.max)
			}
		}
		for _, c := range []struct {
			family   string
			labels   map[string]string
			min, max float64
		}{
			{"weft_peer_rtt_seconds", peer, 1e-6, 1},
			{"weft_peer_handshake_age_seconds", peer, 0.1, 600},
			{"weft_peer_path_mtu_bytes", peer, 552, 65535},
			{"weft_peer_established", peer, 1, 1},
			{"weft_peer_dropped_total", map[string]string{"peer": name2, "reason": "auth_failed"}, 0, 0},
			{"weft_peer_path", map[string]string{"peer": name2, "path": "direct", "via": ""}, 1, 1},
			{"weft_peer_path", map[string]string{"peer": name3, "path": "direct", "via": ""}, 1, 1},
			{"weft_peers", nil, 3, 3},
			{"weft_refused_connections_total", map[string]string{"reason": "preauth_limit"}, 0, 0},
			{"weft_refused_connections_total", map[string]string{"reason": "duplicate_name"}, 0, 0},
			{"weft_peer_name_clashes", nil, 0, 0},
			{"weft_macs", nil, 2, 100},
			{"weft_control_sent_bytes_total", map[string]string{"kind": "topology"}, 1, 1e9},
			{"go_goroutines", nil, 5, 10000},
		} {
			v, ok := series(after, c.family, c.labels)
			if !ok || v < c.min || v > c.max {
				t.Errorf("%s%v = %v (present %v), want %v..%v", c.family, c.labels, v, ok, c.min, c.max)
			}
		}
		// The report carries the same numbers, under the same table.
		rep, err := h1.Report()
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Router.DataPaths) != 2 || rep.Router.Stats["flooded"] == 0 {
			t.Errorf("report: data paths %+v, stats %v", rep.Router.DataPaths, rep.Router.Stats)
		}
	})

	t.Run("status", func(t *testing.T) {
		out := h1.MustWeft(t, "status")
		for _, want := range []string{"Encryption: off", "Reachable: 2 of 2 peers connected directly", "DNS: weft.local. on", "IPAM: "} {
			if !strings.Contains(out, want) {
				t.Errorf("status lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "warning:") {
			t.Errorf("status of a healthy mesh warns:\n%s", out)
		}
	})

	t.Run("doctor healthy", func(t *testing.T) {
		for _, h := range []*netns.Host{h1, h2, h3} {
			r := h.Weft("doctor")
			if !r.OK() || !strings.Contains(r.Stdout, "all is well") {
				t.Errorf("%s: weft doctor: %v\n%s%s", h.Nick, r.Err, r.Stdout, r.Stderr)
			}
		}
		r := h1.Weft("doctor", "--json", h2.Nick)
		var d control.DoctorReport
		if err := json.Unmarshal([]byte(r.Stdout), &d); err != nil || !r.OK() {
			t.Fatalf("doctor --json: %v %v: %s", r.Err, err, r.Stdout)
		}
		if !d.OK || len(d.Peers) != 1 || d.Peers[0].Peer != name2 || d.Peers[0].Path != control.PathDirect ||
			d.Peers[0].PingPath != control.PathDirect || !d.Peers[0].MTUVerified || d.Peers[0].RTTSeconds <= 0 {
			t.Errorf("doctor --json %s: %+v", h2.Nick, d)
		}
		checkUserError(t, h1.Weft("doctor", "nobody"))
		checkUserError(t, h1.Weft("doctor", "a", "b"))
	})

	t.Run("ping healthy", func(t *testing.T) {
		out := h1.MustWeft(t, "ping", "-c", "2", h2.Nick)
		if n := strings.Count(out, "answer from "+name2+"("+h2.Nick+") over the direct path"); n != 2 {
			t.Errorf("weft ping %s: %q", h2.Nick, out)
		}
		checkUserError(t, h1.Weft("ping", "nobody"))
		checkUserError(t, h1.Weft("ping"))
		checkUserError(t, h1.Weft("ping", "-c", "0", h2.Nick))
	})

	t.Run("status API bad input", func(t *testing.T) {
		long := strings.Repeat("x", 8<<10)
		huge := strings.Repeat("x", 2<<20)
		hc := &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return dialIn(h1.Name, network, addr)
			},
		}, Timeout: 10 * time.Second}
		for _, c := range []struct {
			method, path string
			want         int
		}{
			{"GET", "/no/such/path", 404},
			{"GET", "/status/nope", 400},
			{"GET", "/status/peers/more", 404},
			{"GET", "/%2e%2e/%2e%2e/etc/passwd", 404},
			{"POST", "/status", 405},
			{"DELETE", "/report", 405},
			{"PUT", "/metrics", 405},
			{"POST", "/stop", 405},
			{"POST", "/connect", 405},
			{"GET", "/status?" + long, 414},
			{"GET", "/report?" + huge, 431},
		} {
			req, err := http.NewRequest(c.method, "http://127.0.0.1:6784"+c.path, strings.NewReader(`{"peers":["10.9.9.9"]}`))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Errorf("%s %.30s: %v", c.method, c.path, err)
				continue
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Errorf("%s %.30s: HTTP %d %q, want %d", c.method, c.path, resp.StatusCode, body, c.want)
			}
		}
		// The router is unharmed and did not stop.
		if _, err := h1.Report(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("doctor after UDP blocked", func(t *testing.T) {
		blockUDP(t, h1, h2)
		var last netns.Result
		netns.Eventually(t, rerouteTimeout, "doctor on h1 finds the blocked path", func() error {
			last = h1.Weft("doctor")
			if last.OK() {
				return fmt.Errorf("doctor exits 0:\n%s", last.Stdout)
			}
			if !strings.Contains(last.Stderr, "no UDP answer") || !strings.Contains(last.Stderr, "relayed via "+name3) {
				return fmt.Errorf("doctor says:\n%s%s", last.Stdout, last.Stderr)
			}
			return nil
		})
		t.Logf("weft doctor on h1 after UDP to h2 was blocked:\n%s%s", last.Stdout, last.Stderr)
		if lines := strings.Split(strings.TrimSpace(last.Stderr), "\n"); len(lines) != 1 ||
			!strings.Contains(lines[0], name2+"("+h2.Nick+")") || !strings.Contains(lines[0], "allow UDP port") {
			t.Errorf("doctor's stderr: want one clear line naming %s and the next step: %q", h2.Nick, last.Stderr)
		}
		out := h1.MustWeft(t, "ping", "-c", "1", h2.Nick)
		if !strings.Contains(out, "relayed via "+name3+"("+h3.Nick+")") {
			t.Errorf("weft ping %s after the block: %q", h2.Nick, out)
		}
		if out := h1.MustWeft(t, "status"); !strings.Contains(out, "warning: peer "+name2+"("+h2.Nick+") is relayed via "+name3) {
			t.Errorf("status after the block:\n%s", out)
		}
		// h1 and h3 are still fine, and doctor for h3 alone says so.
		if r := h1.Weft("doctor", h3.Nick); !r.OK() {
			t.Errorf("doctor %s: %v\n%s%s", h3.Nick, r.Err, r.Stdout, r.Stderr)
		}
		if n, out := pingCount(c1, c2.IP, 5); n != 5 {
			t.Errorf("containers through the relay: %d of 5 answered: %s", n, out)
		}
	})

	t.Run("refused by password", func(t *testing.T) {
		h4.Launch(t, "--password-file", writePassword(t, w, "pw4", "only h4 has one"), h1.PeerAddr())
		netns.Eventually(t, connectTimeout, "h1 counts and shows the refusal", func() error {
			v, ok := series(scrape(t, h1), "weft_refused_connections_total", map[string]string{"reason": "password"})
			if !ok || v < 1 {
				return fmt.Errorf("weft_refused_connections_total{reason=password} = %v (present %v)", v, ok)
			}
			out := h1.MustWeft(t, "status")
			if !strings.Contains(out, "warning: connection from "+h4.Addr+":") || !strings.Contains(out, "authentication failed") ||
				!strings.Contains(out, "connections refused since start:") {
				return fmt.Errorf("status:\n%s", out)
			}
			return nil
		})
		if out := h4.MustWeft(t, "status"); !strings.Contains(out, "warning: connection to "+h1.PeerAddr()+" refused: authentication failed") {
			t.Errorf("status on h4:\n%s", out)
		}
		// h4 knows no peer but its target, refused: doctor says why.
		r := h4.Weft("doctor")
		if r.OK() || !strings.Contains(r.Stderr, "connection to "+h1.PeerAddr()+" failed: refused by password") ||
			!strings.Contains(r.Stderr, "same --password-file") {
			t.Errorf("doctor on h4: %v\n%s%s", r.Err, r.Stdout, r.Stderr)
		}
	})
}

// blockUDP drops UDP between hosts a and b in a's namespace (TCP still
// flows, so the control connection stays up); the world's teardown
// removes the namespace and the rules.
func blockUDP(t *testing.T, a, b *netns.Host) {
	t.Helper()
	for _, rule := range [][]string{{"INPUT", "-s", b.Addr}, {"OUTPUT", "-d", b.Addr}} {
		args := append([]string{"iptables", "-w", "5", "-I", rule[0]}, rule[1:]...)
		if r := a.Run(append(args, "-p", "udp", "-j", "DROP")...); !r.OK() {
			t.Fatalf("block UDP: %v", r)
		}
	}
}

// scrape reads h's /metrics from inside its namespace and parses it.
func scrape(t *testing.T, h *netns.Host) map[string]*dto.MetricFamily {
	t.Helper()
	r := h.Run("curl", "-sf", "http://127.0.0.1:6784/metrics")
	if !r.OK() {
		t.Fatalf("%s: curl /metrics: %v", h.Nick, r)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(r.Stdout))
	if err != nil {
		t.Fatalf("%s: parse /metrics: %v", h.Nick, err)
	}
	return fams
}

// series returns the value of the first series of family name whose
// labels include labels.
func series(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		}
	}
	return 0, false
}

// grew is how much a series grew between two scrapes; a series missing
// from either fails the test.
func grew(t *testing.T, before, after map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	b, ok1 := series(before, name, labels)
	a, ok2 := series(after, name, labels)
	if !ok2 {
		t.Fatalf("no series %s%v", name, labels)
	}
	if !ok1 {
		b = 0 // a labelled series appears with its first event
	}
	return a - b
}

func mustName(t *testing.T, h *netns.Host) string {
	t.Helper()
	n, err := h.PeerName()
	if err != nil {
		t.Fatal(err)
	}
	return n
}
