package meshtest

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weftnet/weft/mesh"
)

// Harness runs mesh nodes on an in-memory Network and a virtual Clock.
// Create it inside synctest.Test: the clock settles with synctest.Wait,
// so that every node has done all it can at one instant before the next
// timer fires. Nodes still running when the test ends are stopped.
type Harness struct {
	tb    testing.TB
	Clock *Clock
	Net   *Network
	// Edit, if set, adjusts each node's config before it is created.
	Edit func(seq int, cfg *mesh.Config)

	mu    sync.Mutex
	nodes map[int]*Node
}

// New returns a harness with a clock at Epoch and a network of 1 ms
// latency; seed makes the network's loss deterministic. Call it inside
// synctest.Test.
func New(tb testing.TB, seed uint64) *Harness {
	clock := NewClock(synctest.Wait)
	h := &Harness{tb: tb, Clock: clock, Net: NewNetwork(clock, seed), nodes: map[int]*Node{}}
	tb.Cleanup(h.StopAll)
	return h
}

// Node is a node of the harness.
type Node struct {
	*mesh.Node
	// Seq numbers the node: it fixes its identity and its address.
	Seq int
	// IP is the node's host address; it listens on IP:6783.
	IP netip.Addr
	// Overlay is the node's fake data plane.
	Overlay *Overlay
	cfg     mesh.Config
	running bool
}

// Identity returns the identity numbered seq: the same for the same
// number, in every run.
func Identity(seq int) *mesh.Identity {
	seed := make([]byte, mesh.IdentitySeedLen)
	binary.BigEndian.PutUint64(seed, uint64(seq))
	id, err := mesh.IdentityFromSeed(seed)
	if err != nil {
		panic(fmt.Sprintf("meshtest: identity %d: %v", seq, err))
	}
	return id
}

// HostIP returns the address of node seq: 10.0.0.1 for 0, onwards.
func HostIP(seq int) netip.Addr {
	v := uint32(seq) + 1
	return netip.AddrFrom4([4]byte{10, byte(v >> 16), byte(v >> 8), byte(v)})
}

// Config returns the configuration a node numbered seq starts with:
// identity and address from seq, the mesh's default timings, the given
// overlay, on the harness's clock and network.
func (h *Harness) Config(seq int, ov mesh.Overlay) mesh.Config {
	cfg := mesh.Config{
		Identity: Identity(seq), NickName: fmt.Sprintf("n%d", seq),
		ListenAddr: netip.AddrPortFrom(HostIP(seq), mesh.DefaultPort).String(),
		Overlay:    ov, Logger: slog.New(slog.DiscardHandler), DataPort: mesh.DefaultPort + 1,
		Clock: h.Clock, Network: h.Net.Host(HostIP(seq)),
	}
	if h.Edit != nil {
		h.Edit(seq, &cfg)
	}
	return cfg
}

// Start creates and starts node seq; it fails the test on error.
func (h *Harness) Start(seq int) *Node {
	h.tb.Helper()
	ov := NewOverlay()
	n := &Node{Seq: seq, IP: HostIP(seq), Overlay: ov, cfg: h.Config(seq, ov)}
	if err := n.start(); err != nil {
		h.tb.Fatal(err)
	}
	h.mu.Lock()
	h.nodes[seq] = n
	h.mu.Unlock()
	return n
}

func (n *Node) start() error {
	mn, err := mesh.NewNode(n.cfg)
	if err != nil {
		return fmt.Errorf("node %d: %w", n.Seq, err)
	}
	if err := mn.Start(context.Background()); err != nil {
		return fmt.Errorf("node %d: %w", n.Seq, err)
	}
	n.Node, n.running = mn, true
	return nil
}

// Addr returns the node's control address, host:port.
func (n *Node) Addr() string { return netip.AddrPortFrom(n.IP, mesh.DefaultPort).String() }

// Running reports whether the node runs (started and not stopped).
func (n *Node) Running() bool { return n.running }

// Connect makes a dial b (and keep the connection, as `weft connect`).
func (h *Harness) Connect(a, b *Node) {
	h.tb.Helper()
	if err := a.Connect([]string{b.Addr()}, false); err != nil {
		h.tb.Fatal(err)
	}
}

// Stop stops node n, as a crash would: its connections close.
func (h *Harness) Stop(n *Node) {
	if n.running {
		n.Node.Stop()
		n.running = false
	}
}

// Restart stops n and starts a new incarnation with the same identity,
// address and direct targets.
func (h *Harness) Restart(n *Node) {
	h.tb.Helper()
	var targets []string
	if n.Node != nil {
		targets = n.Targets()
	}
	h.Stop(n)
	n.Overlay = NewOverlay()
	n.cfg.Overlay = n.Overlay
	if err := n.start(); err != nil {
		h.tb.Fatal(err)
	}
	if len(targets) > 0 {
		if err := n.Connect(targets, false); err != nil {
			h.tb.Fatal(err)
		}
	}
}

// Nodes returns the nodes started so far, running or not, by sequence
// number.
func (h *Harness) Nodes() map[int]*Node {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[int]*Node, len(h.nodes))
	for k, v := range h.nodes {
		out[k] = v
	}
	return out
}

// StopAll stops every running node.
func (h *Harness) StopAll() {
	for _, n := range h.Nodes() {
		h.Stop(n)
	}
}

// Run advances the clock by d.
func (h *Harness) Run(d time.Duration) { h.Clock.Advance(d) }

// RunUntil advances the clock timer by timer until cond holds, checking
// it after every settled instant, for at most limit. It returns the
// virtual time that took and whether cond held.
func (h *Harness) RunUntil(limit time.Duration, cond func() bool) (time.Duration, bool) {
	start := h.Clock.Now()
	end := start.Add(limit)
	h.Clock.AdvanceTo(start)
	for !cond() {
		if !h.Clock.Step(end) {
			h.Clock.AdvanceTo(end)
			return h.Clock.Since(start), cond()
		}
	}
	return h.Clock.Since(start), true
}

// Overlay is a fake data plane: every data path is established as soon
// as the mesh confirms its connection. It keeps the latest routes.
type Overlay struct {
	routes atomic.Pointer[mesh.Routes]
}

// NewOverlay returns an overlay without routes.
func NewOverlay() *Overlay { return &Overlay{} }

// PrepareConnection returns a connection that establishes on Confirm.
func (o *Overlay) PrepareConnection(p mesh.OverlayConnectionParams) (mesh.OverlayConnection, error) {
	return &overlayConn{est: make(chan struct{}), failed: make(chan error)}, nil
}

// RoutesChanged keeps r.
func (o *Overlay) RoutesChanged(r *mesh.Routes) { o.routes.Store(r) }

// Routes returns the latest routes the mesh handed over, nil if none.
func (o *Overlay) Routes() *mesh.Routes { return o.routes.Load() }

type overlayConn struct {
	est    chan struct{}
	failed chan error
	once   sync.Once
}

func (c *overlayConn) Confirm()                     { c.once.Do(func() { close(c.est) }) }
func (c *overlayConn) Established() <-chan struct{} { return c.est }
func (c *overlayConn) Failed() <-chan error         { return c.failed }
func (c *overlayConn) HandleControl([]byte)         {}
func (c *overlayConn) Status() mesh.OverlayStatus   { return mesh.OverlayStatus{State: "established"} }
func (c *overlayConn) Stop()                        {}

var _ mesh.Overlay = (*Overlay)(nil)
