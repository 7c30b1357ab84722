package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/plugin"
	"github.com/weftnet/weft/router"
	"github.com/weftnet/weft/router/routertest"
)

// fakeHost is an in-memory Host: attachments and exposed addresses live in
// maps. "netns:missing" stands for a namespace that does not exist.
type fakeHost struct {
	mu       sync.Mutex
	atts     map[string][]netip.Prefix
	gone     map[string]bool // targets whose namespace vanished
	exposed  []netip.Prefix
	attaches int
	ready    map[string]int            // MarkReady calls per target
	starts   map[int]uint64            // process start times, for pid: targets
	readyErr error                     // what MarkReady fails with, when set
	guards   map[string][]netip.Prefix // source-guarded targets: the addresses their guard allows
}

func newFakeHost() *fakeHost { return &fakeHost{atts: map[string][]netip.Prefix{}} }

func (h *fakeHost) EnsureBridge(string, int) error           { return nil }
func (h *fakeHost) AttachToBridge(string, string, int) error { return nil }
func (h *fakeHost) DeleteLink(string) error                  { return nil }
func (h *fakeHost) ParseTarget(s string) (string, error) {
	if strings.HasPrefix(s, ContainerPrefix) && len(s) > len(ContainerPrefix) {
		return s, nil
	}
	if _, ok := pidOf(s); ok {
		return s, nil
	}
	if !strings.HasPrefix(s, "netns:") || len(s) == len("netns:") {
		return "", fmt.Errorf("invalid target %q: want netns:NAME or pid:PID", s)
	}
	return s, nil
}
func (h *fakeHost) Attach(_ string, target string, addrs []netip.Prefix, _ int, opts AttachOptions) (Attachment, error) {
	if target == "netns:missing" {
		return Attachment{}, errors.New(`network namespace "missing" not found`)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.attaches++
	if h.guards == nil {
		h.guards = map[string][]netip.Prefix{}
	}
	delete(h.guards, target)
	if opts.SourceCheck {
		h.guards[target] = append(slices.Clone(opts.Given), addrs...)
	}
	for _, a := range addrs {
		if !slices.Contains(h.atts[target], a) {
			h.atts[target] = append(h.atts[target], a)
		}
	}
	return Attachment{Target: target, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Addrs: slices.Clone(h.atts[target])}, nil
}
func (h *fakeHost) Detach(_ string, target string, addrs []netip.Prefix) ([]netip.Prefix, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gone[target] {
		return nil, fmt.Errorf("namespace of %s not found: %w", target, ErrTargetGone)
	}
	have, ok := h.atts[target]
	if !ok {
		return nil, fmt.Errorf("%s is not attached", target)
	}
	if len(addrs) == 0 {
		delete(h.atts, target)
		return have, nil
	}
	var removed []netip.Prefix
	h.atts[target] = slices.DeleteFunc(have, func(p netip.Prefix) bool {
		if slices.Contains(addrs, p) {
			removed = append(removed, p)
			return true
		}
		return false
	})
	if len(h.atts[target]) == 0 {
		delete(h.atts, target)
	}
	return removed, nil
}
func (h *fakeHost) TargetExists(target string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return target != "netns:missing" && !h.gone[target]
}
func (h *fakeHost) List(string) ([]Attachment, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Attachment
	for t, a := range h.atts {
		out = append(out, Attachment{Target: t, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, Addrs: slices.Clone(a)})
	}
	return out, nil
}
func (h *fakeHost) Expose(_ string, addrs []netip.Prefix) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, a := range addrs {
		if !slices.Contains(h.exposed, a) {
			h.exposed = append(h.exposed, a)
		}
	}
	return nil
}
func (h *fakeHost) Hide(_ string, addrs []netip.Prefix) ([]netip.Prefix, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	removed := slices.Clone(h.exposed)
	if len(addrs) > 0 {
		removed = nil
		for _, a := range addrs {
			if slices.Contains(h.exposed, a) {
				removed = append(removed, a)
			}
		}
	}
	h.exposed = slices.DeleteFunc(h.exposed, func(p netip.Prefix) bool { return slices.Contains(removed, p) })
	return removed, nil
}
func (h *fakeHost) Exposed(string) ([]netip.Prefix, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.exposed), nil
}
func (h *fakeHost) Reset(string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.atts, h.exposed = map[string][]netip.Prefix{}, nil
	return nil
}
func (h *fakeHost) UnderlayMTU(netip.Addr) (int, error) { return 1500, nil }

// vanish makes target's namespace disappear, interface included.
func (h *fakeHost) vanish(target string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.atts, target)
	if h.gone == nil {
		h.gone = map[string]bool{}
	}
	h.gone[target] = true
}
func (h *fakeHost) RouteRepliesFrom(string, netip.Addr) error { return nil }
func (h *fakeHost) ProcessStart(pid int) (uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if st, ok := h.starts[pid]; ok {
		return st, nil
	}
	return 0, fmt.Errorf("process %d: %w", pid, os.ErrNotExist)
}
func (h *fakeHost) MarkReady(target string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.atts[target]; !ok {
		return fmt.Errorf("%s is not attached", target)
	}
	if h.readyErr != nil {
		return h.readyErr
	}
	if h.ready == nil {
		h.ready = map[string]int{}
	}
	h.ready[target]++
	return nil
}
func (h *fakeHost) AddRoute(target string, dst netip.Prefix) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.atts[target]; !ok {
		return fmt.Errorf("%s is not attached", target)
	}
	return nil
}

// testRouter is one daemon running on a fake host, a fake TAP and a fake
// UDP socket, with the mesh on loopback TCP.
type testRouter struct {
	stateDir string
	host     *fakeHost
	client   *control.Client
	cancel   context.CancelFunc
	done     chan error
	dev      *routertest.Device // the router's TAP
}

func startRouter(t *testing.T, nw *routertest.Network, stateDir string, host *fakeHost, udpPort uint16, peers ...string) *testRouter {
	t.Helper()
	return startRouterWith(t, nw, stateDir, host, udpPort, nil, peers...)
}

// startRouterWith is startRouter with a change to the configuration.
func startRouterWith(t *testing.T, nw *routertest.Network, stateDir string, host *fakeHost, udpPort uint16, mod func(*Config), peers ...string) *testRouter {
	t.Helper()
	return startRouterDocker(t, nw, stateDir, host, udpPort, mod, nil, peers...)
}

// startRouterDocker is startRouterWith with a Docker.
func startRouterDocker(t *testing.T, nw *routertest.Network, stateDir string, host *fakeHost, udpPort uint16, mod func(*Config), dk Docker, peers ...string) *testRouter {
	t.Helper()
	tr := &testRouter{stateDir: stateDir, host: host, client: control.NewClient(stateDir), done: make(chan error, 1)}
	deps := Deps{
		Host: host,
		OpenTAP: func(string, int) (router.Device, error) {
			tr.dev = routertest.NewDevice(1406, 256)
			return tr.dev, nil
		},
		ListenUDP: func(netip.AddrPort) (router.Transport, error) {
			return nw.Transport(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), udpPort), 256), nil
		},
		Docker: dk,
	}
	cfg := Config{StateDir: stateDir, NickName: "r" + fmt.Sprint(udpPort), Host: "127.0.0.1", Port: 0,
		Discovery: true, Peers: peers, PeersGiven: len(peers) > 0, Version: "test"}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tr.cancel = cancel
	ready := make(chan struct{})
	go func() { tr.done <- Run(ctx, cfg, deps, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-tr.done:
		t.Fatalf("router did not start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("router did not start within 10s")
	}
	t.Cleanup(tr.stop)
	return tr
}

func (tr *testRouter) stop() {
	tr.cancel()
	<-tr.done
	tr.done <- nil // make stop idempotent
}

func (tr *testRouter) report(t *testing.T) *control.Report {
	t.Helper()
	r, err := tr.client.Report()
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	return r
}

func TestAttachmentsSurviveRestartAndReboot(t *testing.T) {
	nw := routertest.NewNetwork(1)
	dir, host := t.TempDir(), newFakeHost()
	r := startRouter(t, nw, dir, host, 10001)
	addrs, err := r.client.Attach(control.AttachRequest{Target: "netns:c1", CIDRs: []string{"10.2.1.1/24"}})
	if err != nil || !slices.Equal(addrs, []string{"10.2.1.1/24"}) {
		t.Fatalf("attach: %v %v", addrs, err)
	}
	if _, err := r.client.Attach(control.AttachRequest{Target: "netns:c1", CIDRs: []string{"10.2.2.1/24"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.client.Expose([]string{"10.2.1.254/24"}); err != nil {
		t.Fatal(err)
	}
	name := r.report(t).Router.Name
	r.stop()

	// A plain restart: the veth is still there; nothing is attached again.
	before := host.attaches
	r = startRouter(t, nw, dir, host, 10001)
	if host.attaches != before {
		t.Errorf("restart re-attached a target that was still attached")
	}
	if got := r.report(t).Router.Name; got != name {
		t.Errorf("peer name changed across restart: %s then %s", name, got)
	}
	r.stop()

	// A reboot: the host lost its veths and addresses; the router restores them.
	host.Reset("")
	r = startRouter(t, nw, dir, host, 10001)
	rep := r.report(t)
	if len(rep.Attachments) != 1 || !slices.Equal(rep.Attachments[0].Addrs, []string{"10.2.1.1/24", "10.2.2.1/24"}) {
		t.Errorf("after reboot: attachments %+v", rep.Attachments)
	}
	if !slices.Equal(rep.Exposed, []string{"10.2.1.254/24"}) {
		t.Errorf("after reboot: exposed %v", rep.Exposed)
	}

	// Detaching one address keeps the other, and the record follows.
	removed, err := r.client.Detach(control.AttachRequest{Target: "netns:c1", CIDRs: []string{"10.2.2.1/24"}})
	if err != nil || !slices.Equal(removed, []string{"10.2.2.1/24"}) {
		t.Fatalf("detach: %v %v", removed, err)
	}
	r.stop()
	host.Reset("")
	r = startRouter(t, nw, dir, host, 10001)
	rep = r.report(t)
	if len(rep.Attachments) != 1 || !slices.Equal(rep.Attachments[0].Addrs, []string{"10.2.1.1/24"}) {
		t.Errorf("after detach and reboot: attachments %+v", rep.Attachments)
	}
}

func TestBadRequestsAreUserErrorsAndChangeNothing(t *testing.T) {
	nw := routertest.NewNetwork(2)
	r := startRouter(t, nw, t.TempDir(), newFakeHost(), 10002)
	if _, err := r.client.Attach(control.AttachRequest{Target: "netns:c1", CIDRs: []string{"10.2.1.1/24"}}); err != nil {
		t.Fatal(err)
	}
	bad := []struct {
		name string
		call func() error
		want string
	}{
		{"missing namespace", func() error {
			_, err := r.client.Attach(control.AttachRequest{Target: "netns:missing", CIDRs: []string{"10.2.1.9/24"}})
			return err
		}, "not found"},
		{"bad target", func() error {
			_, err := r.client.Attach(control.AttachRequest{Target: "netns:", CIDRs: []string{"10.2.1.9/24"}})
			return err
		}, "invalid target"},
		{"container without Docker", func() error {
			_, err := r.client.Attach(control.AttachRequest{Target: "docker", CIDRs: []string{"10.2.1.9/24"}})
			return err
		}, "names a Docker container: this router runs without Docker"},
		{"bad CIDR", func() error {
			_, err := r.client.Attach(control.AttachRequest{Target: "netns:c2", CIDRs: []string{"10.2.1.300/24"}})
			return err
		}, "invalid address"},
		{"network address", func() error {
			_, err := r.client.Attach(control.AttachRequest{Target: "netns:c2", CIDRs: []string{"10.2.1.0/24"}})
			return err
		}, "network address"},
		{"IPv6", func() error {
			_, err := r.client.Attach(control.AttachRequest{Target: "netns:c2", CIDRs: []string{"fd00::1/64"}})
			return err
		}, "only IPv4"},
		{"malformed peer", func() error { return r.client.Connect([]string{"10.0.0.1:99999"}, false) }, "invalid peer address"},
		{"connect without peers", func() error { return r.client.Connect(nil, false) }, "no peers given"},
		{"forget without peers", func() error { return r.client.Forget(nil) }, "no peers given"},
		{"detach unknown", func() error {
			_, err := r.client.Detach(control.AttachRequest{Target: "netns:nope"})
			return err
		}, "not attached"},
	}
	for _, tc := range bad {
		err := tc.call()
		var ue *control.UserError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want a user error containing %q", tc.name, err, tc.want)
		}
	}
	rep := r.report(t)
	if len(rep.Attachments) != 1 || rep.Attachments[0].Target != "netns:c1" || len(rep.Router.Targets) != 0 {
		t.Errorf("bad requests changed state: attachments %+v targets %v", rep.Attachments, rep.Router.Targets)
	}
}

func TestTwoRoutersEstablishAndPersistPeers(t *testing.T) {
	nw := routertest.NewNetwork(3)
	a := startRouter(t, nw, t.TempDir(), newFakeHost(), 10003)
	peer := fmt.Sprintf("127.0.0.1:%d", a.report(t).Router.Port)
	dirB := t.TempDir()
	b := startRouter(t, nw, dirB, newFakeHost(), 10004, peer)
	established := func(r *testRouter) bool {
		rep := r.report(t)
		return len(rep.Router.Connections) == 1 && rep.Router.Connections[0].State == "established" &&
			len(rep.Router.UnicastRoutes) == 1
	}
	deadline := time.Now().Add(15 * time.Second)
	for !(established(a) && established(b)) {
		if time.Now().After(deadline) {
			t.Fatalf("not established: a %+v\nb %+v", a.report(t).Router.Connections, b.report(t).Router.Connections)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := b.report(t).Router.Targets; !slices.Equal(got, []string{peer}) {
		t.Errorf("targets %v, want [%s]", got, peer)
	}
	// Restarted without peers on the command line, b keeps its list.
	b.stop()
	b = startRouter(t, nw, dirB, newFakeHost(), 10004)
	if got := b.report(t).Router.Targets; !slices.Equal(got, []string{peer}) {
		t.Errorf("after restart: targets %v, want [%s]", got, peer)
	}
	if err := b.client.Forget([]string{peer}); err != nil {
		t.Fatal(err)
	}
	if got := b.report(t).Router.Targets; len(got) != 0 {
		t.Errorf("after forget: targets %v", got)
	}
}

func (h *fakeHost) CreateEndpointLink(string, plugin.Link) (string, error) {
	return "", errors.New("fake host: no endpoint links")
}
func (h *fakeHost) DeleteEndpointLink(string) error  { return nil }
func (h *fakeHost) EndpointLinks() ([]string, error) { return nil, nil }
