package mesh

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeOverlay establishes every data path at once, except towards peers
// that are blocked, whose data path fails as soon as it is confirmed.
type fakeOverlay struct {
	mu       sync.Mutex
	blocked  map[PeerName]bool
	controls []string                             // control messages received, "from:text"
	params   map[PeerName]OverlayConnectionParams // latest per remote peer
	routes   atomic.Pointer[Routes]
}

func newFakeOverlay() *fakeOverlay {
	return &fakeOverlay{blocked: map[PeerName]bool{}, params: map[PeerName]OverlayConnectionParams{}}
}

// paramsFor returns the parameters of the latest connection to p.
func (o *fakeOverlay) paramsFor(p PeerName) (OverlayConnectionParams, bool) {
	p = seqName(p)
	o.mu.Lock()
	defer o.mu.Unlock()
	v, ok := o.params[p]
	return v, ok
}

func (o *fakeOverlay) block(p PeerName, b bool) {
	p = seqName(p)
	o.mu.Lock()
	o.blocked[p] = b
	o.mu.Unlock()
}

func (o *fakeOverlay) received() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.controls...)
}

func (o *fakeOverlay) PrepareConnection(p OverlayConnectionParams) (OverlayConnection, error) {
	o.mu.Lock()
	blocked := o.blocked[p.RemotePeer]
	o.params[p.RemotePeer] = p
	o.mu.Unlock()
	return &fakeConn{o: o, p: p, blocked: blocked, est: make(chan struct{}), failed: make(chan error, 1)}, nil
}

func (o *fakeOverlay) RoutesChanged(r *Routes) { o.routes.Store(r) }

type fakeConn struct {
	o       *fakeOverlay
	p       OverlayConnectionParams
	blocked bool
	est     chan struct{}
	failed  chan error
	once    sync.Once
	stopped atomic.Bool
}

func (c *fakeConn) Confirm() {
	c.once.Do(func() {
		if c.blocked {
			c.failed <- errors.New("timed out waiting for UDP heartbeat")
			return
		}
		c.p.SendControl([]byte("hello from " + c.p.LocalPeer.String()))
		close(c.est)
	})
}
func (c *fakeConn) Established() <-chan struct{} { return c.est }
func (c *fakeConn) Failed() <-chan error         { return c.failed }
func (c *fakeConn) HandleControl(msg []byte) {
	c.o.mu.Lock()
	c.o.controls = append(c.o.controls, c.p.RemotePeer.String()+":"+string(msg))
	c.o.mu.Unlock()
}
func (c *fakeConn) Status() OverlayStatus {
	if c.blocked {
		return OverlayStatus{State: "pending", Reason: "no heartbeats"}
	}
	return OverlayStatus{State: "established", MTU: 1410}
}
func (c *fakeConn) Stop() { c.stopped.Store(true) }

// testNode is a running node with its fake overlay.
type testNode struct {
	*Node
	ov *fakeOverlay
}

// testIdentity returns the identity numbered seq: the same for the same
// number, in every test.
func testIdentity(seq int) *Identity {
	seed := make([]byte, IdentitySeedLen)
	binary.BigEndian.PutUint64(seed, uint64(seq))
	id, err := IdentityFromSeed(seed)
	if err != nil {
		panic(err)
	}
	return id
}

// signed returns e as the peer of testIdentity(seq) would send it: with
// its name and key, and signed.
func signed(seq int, e peerEntry) peerEntry {
	id := testIdentity(seq)
	e.Name = id.Name()
	signEntry(id, &e)
	return e
}

// testConn is a connection, not on any socket, that n's topology code
// can be handed as the sender.
func testConn(n *Node) *conn {
	return &conn{node: n, topoBudget: tokenBucket{burst: n.cfg.MaxPeers, every: time.Second / time.Duration(n.cfg.TopologyBudget)}}
}

// testName is the peer name of testIdentity(seq).
func testName(seq int) PeerName { return testIdentity(seq).Name() }

func testConfig(seq int, ov *fakeOverlay) Config {
	id := testIdentity(seq)
	var log *slog.Logger
	if os.Getenv("MESH_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", id.Name().String())
	}
	return Config{
		Identity: id, NickName: fmt.Sprintf("node%d", seq), ListenAddr: "127.0.0.1:0",
		Overlay: ov, Logger: log, DataPort: 6784,
		HandshakeTimeout: 2 * time.Second, HeartbeatInterval: 100 * time.Millisecond,
		HeartbeatTimeout: 2 * time.Second, UpdateDelay: 10 * time.Millisecond,
		GossipInterval: 200 * time.Millisecond, InitialBackoff: 30 * time.Millisecond,
		MaxBackoff: 150 * time.Millisecond, BackoffReset: time.Minute,
	}
}

// startNode starts a node; edit may adjust its config.
func startNode(t *testing.T, seq int, edit func(*Config)) *testNode {
	t.Helper()
	ov := newFakeOverlay()
	cfg := testConfig(seq, ov)
	if edit != nil {
		edit(&cfg)
	}
	n, err := NewNode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return &testNode{Node: n, ov: ov}
}

func (n *testNode) addr() string { return n.Addr().String() }

func (n *testNode) connect(t *testing.T, others ...*testNode) {
	t.Helper()
	var addrs []string
	for _, o := range others {
		addrs = append(addrs, o.addr())
	}
	if err := n.Connect(addrs, false); err != nil {
		t.Fatal(err)
	}
}

// seqName maps the small numbers tests use for peers to their names:
// p below 1<<16 stands for testName(p); larger values are names already.
func seqName(p PeerName) PeerName {
	if p < 1<<16 {
		return testName(int(p))
	}
	return p
}

// conn returns our connection status towards peer p (seqName), if any.
func (n *testNode) conn(p PeerName) (ConnectionStatus, bool) {
	p = seqName(p)
	for _, c := range n.Status().Connections {
		if c.Peer == p && (c.State == StateEstablished || c.State == StatePending) {
			return c, true
		}
	}
	return ConnectionStatus{}, false
}

// eventually polls cond until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", timeout, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// routeIs checks n's data route to dst (both seqName).
func routeIs(n *testNode, dst, want PeerName) error {
	dst, want = seqName(dst), seqName(want)
	next, ok := n.ov.routes.Load().Unicast(dst)
	if !ok || next != want {
		return fmt.Errorf("%v: route to %v = %v (ok %v), want %v", n.Name(), dst, next, ok, want)
	}
	return nil
}

// directMesh checks that every node has an established connection to
// every other and direct routes.
func directMesh(nodes ...*testNode) error {
	for _, a := range nodes {
		for _, b := range nodes {
			if a == b {
				continue
			}
			if c, ok := a.conn(b.Name()); !ok || c.State != StateEstablished {
				return fmt.Errorf("%v -> %v not established: %+v", a.Name(), b.Name(), c)
			}
			if err := routeIs(a, b.Name(), b.Name()); err != nil {
				return err
			}
		}
	}
	return nil
}

// setData is a set of strings as GossipData; each element is one part.
type setData map[string]struct{}

func (s setData) Encode() [][]byte {
	var out [][]byte
	for _, k := range sortedKeys(s) {
		out = append(out, []byte(k))
	}
	return out
}

func (s setData) Merge(o GossipData) GossipData {
	for k := range o.(setData) {
		s[k] = struct{}{}
	}
	return s
}

// setGossiper keeps a set and counts broadcast deliveries.
type setGossiper struct {
	mu        sync.Mutex
	items     map[string]bool
	bcasts    map[string]int
	unicasts  []string
	fullState bool // send Gossip() periodically
}

func newSetGossiper() *setGossiper {
	return &setGossiper{items: map[string]bool{}, bcasts: map[string]int{}}
}

func (g *setGossiper) add(k string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.items[k] {
		return false
	}
	g.items[k] = true
	return true
}

func (g *setGossiper) has(k string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.items[k]
}

func (g *setGossiper) OnGossipUnicast(src PeerName, msg []byte) error {
	g.mu.Lock()
	g.unicasts = append(g.unicasts, src.String()+":"+string(msg))
	g.mu.Unlock()
	return nil
}

func (g *setGossiper) OnGossipBroadcast(src PeerName, update []byte) (GossipData, error) {
	g.mu.Lock()
	g.bcasts[string(update)]++
	g.mu.Unlock()
	if g.add(string(update)) {
		return setData{string(update): {}}, nil
	}
	return nil, nil
}

func (g *setGossiper) Gossip() GossipData {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.fullState || len(g.items) == 0 {
		return nil
	}
	s := setData{}
	for k := range g.items {
		s[k] = struct{}{}
	}
	return s
}

func (g *setGossiper) OnGossip(msg []byte) (GossipData, error) {
	if g.add(string(msg)) {
		return setData{string(msg): {}}, nil
	}
	return nil, nil
}
