package daemon

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/router"
	"github.com/weftnet/weft/router/routertest"
)

// TestMetricTableCoversStats: every counter of router.Stats is in the
// table once, under a unique key, in a family of the table.
func TestMetricTableCoversStats(t *testing.T) {
	var s router.Stats
	v := reflect.ValueOf(&s).Elem()
	for i := range v.NumField() {
		v.Field(i).SetUint(uint64(1000 + i))
	}
	m := statsMap(s)
	if len(m) != v.NumField() || len(routerCounters) != v.NumField() {
		t.Fatalf("table has %d counters (%d keys), router.Stats %d fields", len(routerCounters), len(m), v.NumField())
	}
	seen := map[uint64]string{}
	for k, x := range m {
		if other, ok := seen[x]; ok {
			t.Errorf("keys %s and %s read the same field", k, other)
		}
		seen[x] = k
	}
	fams := map[string]familyDef{}
	for _, f := range counterFamilies {
		fams[f.name] = f
	}
	series := map[string]bool{}
	for _, c := range routerCounters {
		f, ok := fams[c.family]
		switch {
		case !ok:
			t.Errorf("%s: family %s not in counterFamilies", c.key, c.family)
		case (len(f.labels) > 0) != (c.reason != ""):
			t.Errorf("%s: reason %q for a family with labels %v", c.key, c.reason, f.labels)
		}
		id := c.family + "/" + c.reason
		if series[id] {
			t.Errorf("%s: series %s twice", c.key, id)
		}
		series[id] = true
	}
}

var metricName = regexp.MustCompile(`^weft_[a-z0-9_]+$`)

// TestMetricNames: names follow the Prometheus conventions.
func TestMetricNames(t *testing.T) {
	var all []familyDef
	all = append(all, counterFamilies...)
	for _, m := range peerMetrics {
		all = append(all, m.familyDef)
	}
	for _, f := range all {
		if !metricName.MatchString(f.name) {
			t.Errorf("%s: not a weft_ snake_case name", f.name)
		}
		if total := strings.HasSuffix(f.name, "_total"); total != (f.kind == prometheus.CounterValue) {
			t.Errorf("%s: a counter must end in _total, and only a counter", f.name)
		}
		if f.help == "" || !strings.HasSuffix(f.help, ".") {
			t.Errorf("%s: help %q", f.name, f.help)
		}
	}
}

// TestStatusAPIBadInput: unknown paths, wrong methods and long queries get
// 4xx, before any state is read (the daemon here has none).
func TestStatusAPIBadInput(t *testing.T) {
	d := &Daemon{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	srv := httptest.NewServer(d.statusHandler())
	defer srv.Close()
	long := strings.Repeat("a", 4096)
	for _, c := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/nope", 404},
		{"GET", "/status/peers/extra", 404},
		{"GET", "/metrics/x", 404},
		{"GET", "/../../etc/passwd", 404},
		{"POST", "/status", 405},
		{"DELETE", "/metrics", 405},
		{"PUT", "/report", 405},
		{"POST", "/", 405},
		{"POST", "/ping", 405},
		{"GET", "/doctor", 404},
		{"GET", "/status?" + long, 414},
		{"GET", "/metrics?x=" + long, 414},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("%s %.40s: %d %q, want %d", c.method, c.path, resp.StatusCode, body, c.code)
		}
		if bytes.Contains(body, []byte("goroutine")) || len(body) > 200 {
			t.Errorf("%s %.40s: body %q", c.method, c.path, body)
		}
	}
}

// TestMetricsAgainstTraffic: frames sent from a to b over fake devices
// show in a's and b's per-peer series and router counters, and ping and
// doctor work between them.
func TestMetricsAgainstTraffic(t *testing.T) {
	nw := routertest.NewNetwork(17)
	statusA := freeAddr(t)
	a := startRouterWith(t, nw, t.TempDir(), newFakeHost(), 7011, func(c *Config) { c.StatusAddr = statusA })
	peer := fmt.Sprintf("127.0.0.1:%d", a.report(t).Router.Port)
	b := startRouter(t, nw, t.TempDir(), newFakeHost(), 7012, peer)
	var nameB string
	deadline := time.Now().Add(15 * time.Second)
	for {
		ra, rb := a.report(t), b.report(t)
		if len(ra.Router.DataPaths) == 1 && ra.Router.DataPaths[0].Established && ra.Router.DataPaths[0].MTUVerified &&
			len(rb.Router.DataPaths) == 1 && rb.Router.DataPaths[0].Established &&
			len(ra.Router.BroadcastRoutes) == 2 && len(rb.Router.BroadcastRoutes) == 2 {
			nameB = rb.Router.Name
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not established: a %+v\nb %+v", ra.Router.DataPaths, rb.Router.DataPaths)
		}
		time.Sleep(50 * time.Millisecond)
	}
	before := scrape(t, statusA)
	const n, size = 25, 300
	for i := range n {
		f := make([]byte, size)
		copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 9, 0x88, 0xb5})
		f[20] = byte(i)
		if !a.dev.Inject(f) {
			t.Fatalf("frame %d not injected", i)
		}
		select {
		case <-b.dev.Delivered():
		case <-time.After(5 * time.Second):
			t.Fatalf("frame %d not delivered: a %v\nb %v", i, a.report(t).Router.Stats, b.report(t).Router.Stats)
		}
	}
	after := scrape(t, statusA)
	peerLabels := map[string]string{"peer": nameB, "nickname": "r7012"}
	for _, c := range []struct {
		family string
		labels map[string]string
		min    float64
		max    float64
	}{
		{"weft_peer_sent_frames_total", peerLabels, n, n},
		{"weft_peer_sent_bytes_total", peerLabels, n * size, n * (size + 200)},
		{"weft_device_read_frames_total", nil, n, n},
		{"weft_device_read_bytes_total", nil, n * size, n * size},
		{"weft_flooded_frames_total", nil, n, n},
		{"weft_records_sent_total", nil, n, n},
	} {
		d := value(t, after, c.family, c.labels) - value(t, before, c.family, c.labels)
		if d < c.min || d > c.max {
			t.Errorf("%s%v grew by %v, want %v..%v", c.family, c.labels, d, c.min, c.max)
		}
	}
	for _, g := range []string{"weft_peer_rtt_seconds", "weft_peer_handshake_age_seconds"} {
		if v := value(t, after, g, peerLabels); v <= 0 || v > 60 {
			t.Errorf("%s = %v", g, v)
		}
	}
	if v := value(t, after, "weft_peer_path_mtu_verified", peerLabels); v != 1 {
		t.Errorf("weft_peer_path_mtu_verified = %v", v)
	}
	if v := value(t, after, "weft_peer_path", map[string]string{"peer": nameB, "path": "direct", "via": ""}); v != 1 {
		t.Errorf("weft_peer_path direct = %v", v)
	}
	if v := value(t, after, "weft_refused_connections_total", map[string]string{"reason": "preauth_limit"}); v != 0 {
		t.Errorf("preauth refusals %v", v)
	}
	// b counted what it received from a.
	rb := b.report(t)
	if got := rb.Router.DataPaths[0].RxFrames; got < n {
		t.Errorf("b: %d frames received from a, want at least %d", got, n)
	}

	// Ping and doctor over the control API, by nickname and by name.
	for _, p := range []string{"r7012", nameB} {
		r, err := a.client.PingPeer(p)
		if err != nil {
			t.Fatalf("ping %s: %v", p, err)
		}
		if r.Path != control.PathDirect || r.Peer != nameB || r.RTTSeconds <= 0 {
			t.Errorf("ping %s: %+v", p, r)
		}
	}
	for _, bad := range []string{"nobody", "", "r7011"} {
		if _, err := a.client.PingPeer(bad); !control.IsUserError(err) {
			t.Errorf("ping %q: %v, want a user error", bad, err)
		}
	}
	dr, err := a.client.Doctor("")
	if err != nil {
		t.Fatal(err)
	}
	if !dr.OK || len(dr.Peers) != 1 || !dr.Peers[0].OK || dr.Peers[0].PingPath != control.PathDirect {
		t.Errorf("doctor: %+v", dr)
	}
	if _, err := a.client.Doctor("nobody"); !control.IsUserError(err) {
		t.Errorf("doctor nobody: %v", err)
	}
}

// scrape reads and parses the metrics of the status server at addr.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no family %s", name)
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
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// TestPeerDropsCoverPeerStats: every Drop field of router.PeerStats is in
// the per-peer table once, under a reason weft_dropped_total uses too.
func TestPeerDropsCoverPeerStats(t *testing.T) {
	var p router.PeerStats
	v := reflect.ValueOf(&p).Elem()
	n := 0
	for i := range v.NumField() {
		if strings.HasPrefix(v.Type().Field(i).Name, "Drop") {
			v.Field(i).SetUint(uint64(100 + i))
			n++
		}
	}
	m := peerDropsMap(&p)
	if len(m) != n || len(peerDrops) != n {
		t.Fatalf("%d per-peer drops in the table, %d Drop fields", len(peerDrops), n)
	}
	reasons := map[string]bool{}
	for _, c := range routerCounters {
		reasons[c.reason] = true
	}
	seen := map[uint64]bool{}
	for reason, x := range m {
		if !reasons[reason] || reason == "" {
			t.Errorf("per-peer reason %q is not a reason of weft_dropped_total", reason)
		}
		if seen[x] {
			t.Errorf("two reasons read one field")
		}
		seen[x] = true
	}
}
