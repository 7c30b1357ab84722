package router_test

import (
	"bytes"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/mesh"
	"github.com/weftnet/weft/router"
	"github.com/weftnet/weft/router/routertest"
	"github.com/weftnet/weft/secure"
)

// fakeFastPath records what the router tells the fast path; up says
// which peers' fast path is up.
type fakeFastPath struct {
	mu        sync.Mutex
	up        map[mesh.PeerName]bool
	connected map[mesh.PeerName]netip.Addr
	misses    []string
	moves     []string
}

func newFakeFastPath() *fakeFastPath {
	return &fakeFastPath{up: map[mesh.PeerName]bool{}, connected: map[mesh.PeerName]netip.Addr{}}
}

func (f *fakeFastPath) Connect(p mesh.PeerName, _ uint64, a netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connected[p] = a
}

func (f *fakeFastPath) Disconnect(p mesh.PeerName, _ uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.connected, p)
}

func (f *fakeFastPath) Up(p mesh.PeerName) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.up[p]
}

func (f *fakeFastPath) Miss(mac []byte, p mesh.PeerName) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.misses = append(f.misses, p.String()+" "+string(mac))
}

func (f *fakeFastPath) Moved(mac []byte, p mesh.PeerName) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.moves = append(f.moves, p.String()+" "+string(mac))
}

func (f *fakeFastPath) PathStatus(p mesh.PeerName) (bool, string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.connected[p]
	if f.up[p] {
		return true, "verified", ok
	}
	return false, "not verified", ok
}

func (f *fakeFastPath) state() (map[mesh.PeerName]netip.Addr, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := map[mesh.PeerName]netip.Addr{}
	for k, v := range f.connected {
		c[k] = v
	}
	return c, append([]string(nil), f.misses...)
}

// fastPair starts two routers whose connection may use the fast path
// unless mod or their features say otherwise.
func fastPair(t *testing.T, fa, fb *fakeFastPath, featA, featB map[string]string, keys bool) (a, b *routertest.Node, ab, ba mesh.OverlayConnection) {
	t.Helper()
	nw := routertest.NewNetwork(1)
	with := func(fp *fakeFastPath) func(*router.Config) {
		return func(c *router.Config) {
			fast(c)
			if fp != nil {
				c.FastPath, c.FastPathPort = fp, 6784
			}
		}
	}
	a = routertest.StartNode(t, nw, 1, addr(1), 1500, with(fa))
	b = routertest.StartNode(t, nw, 2, addr(2), 1500, with(fb))
	a.Features, b.Features = featA, featB
	var ka, kb *secure.KeyRing
	var err error
	if keys {
		if ka, kb, err = secure.NewLinkedKeyRings(secure.SuiteChaCha20Poly1305, secure.RekeyPolicy{}, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if ab, ba, err = routertest.ConnectKeys(a, b, 1, ka, kb); err != nil {
		t.Fatal(err)
	}
	established(t, ab, ba)
	g := routertest.Graph{}
	g.Link(1, 2)
	routertest.InstallRoutes(g, a, b)
	return a, b, ab, ba
}

var announce = map[string]string{router.FeatureFastPathPort: "6784"}

func TestFastPathOnlyForPlainConnectionsToFastPeers(t *testing.T) {
	for _, tc := range []struct {
		name         string
		fa           *fakeFastPath
		featB        map[string]string
		keys         bool
		wantRegister bool
		why          string
	}{
		{"eligible", newFakeFastPath(), announce, false, true, "not verified"},
		{"no fast path here", nil, announce, false, false, "this router runs without a fast path"},
		{"peer without", newFakeFastPath(), nil, false, false, "the peer runs without a fast path"},
		{"other port", newFakeFastPath(), map[string]string{router.FeatureFastPathPort: "9999"}, false, false, `port "9999", ours 6784`},
		{"encrypted", newFakeFastPath(), announce, true, false, "encrypted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, ab, _ := fastPair(t, tc.fa, newFakeFastPath(), announce, tc.featB, tc.keys)
			st := ab.Status()
			if st.Path != router.PathSleeve || !strings.Contains(st.PathReason, tc.why) {
				t.Errorf("status path %q reason %q; want sleeve, %q", st.Path, st.PathReason, tc.why)
			}
			if tc.fa == nil {
				return
			}
			conns, _ := tc.fa.state()
			if _, ok := conns[2]; ok != tc.wantRegister {
				t.Fatalf("registered with the fast path: %v, want %v", ok, tc.wantRegister)
			}
			if tc.wantRegister && conns[2] != addr(2).Addr() {
				t.Errorf("underlay address %v, want %v", conns[2], addr(2).Addr())
			}
			ab.Stop()
			if conns, _ := tc.fa.state(); len(conns) != 0 {
				t.Errorf("still registered after Stop: %v", conns)
			}
		})
	}
}

func TestMissReportedOnlyWhileFastPathUp(t *testing.T) {
	fa := newFakeFastPath()
	a, b, ab, _ := fastPair(t, fa, newFakeFastPath(), announce, announce, false)
	// b's MAC is learned behind b from a broadcast.
	b.Device.Inject(frame(bcast, mac(2), 60, 1))
	recv(t, a)
	data := frame(mac(2), mac(1), 200, 2)
	a.Device.Inject(data)
	if got := recv(t, b); !bytes.Equal(got, data) {
		t.Fatal("frame lost on the userspace path")
	}
	if _, misses := fa.state(); len(misses) != 0 {
		t.Fatalf("misses while the fast path is down: %q", misses)
	}
	fa.mu.Lock()
	fa.up[2] = true
	fa.mu.Unlock()
	if st := ab.Status(); st.Path != router.PathFastDP {
		t.Errorf("status path %q, want fastdp", st.Path)
	}
	a.Device.Inject(data)
	if got := recv(t, b); !bytes.Equal(got, data) {
		t.Fatal("a missed frame must still take the userspace path")
	}
	a.Device.Inject(frame(bcast, mac(1), 60, 3))
	recv(t, b)
	_, misses := fa.state()
	if len(misses) != 1 || misses[0] != mesh.PeerName(2).String()+" "+string(mac(2)) {
		t.Fatalf("misses %q; want one for b's MAC (none for a broadcast)", misses)
	}
	if s := a.Router.Stats(); s.FastPathMisses != 1 {
		t.Errorf("FastPathMisses = %d", s.FastPathMisses)
	}
}

func TestMoveReportedToFastPath(t *testing.T) {
	fa := newFakeFastPath()
	a, b, _, _ := fastPair(t, fa, newFakeFastPath(), announce, announce, false)
	b.Device.Inject(frame(bcast, mac(9), 60, 1)) // mac 9 behind b
	recv(t, a)
	time.Sleep(20 * time.Millisecond)            // past the loop guard
	a.Device.Inject(frame(bcast, mac(9), 60, 2)) // mac 9 now on a's host
	recv(t, b)
	fa.mu.Lock()
	moves := append([]string(nil), fa.moves...)
	fa.mu.Unlock()
	if len(moves) != 1 || moves[0] != mesh.PeerName(1).String()+" "+string(mac(9)) {
		t.Fatalf("moves %q; want mac 9 moved to a itself", moves)
	}
}
