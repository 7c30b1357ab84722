package ipam

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftnet/weft/mesh"
)

// The harness: allocators wired together by an in-memory network that
// models a full mesh per partition. One goroutine delivers the queued
// messages in order; a broadcast reaches every router of the sender's
// partition (the broadcast tree of a full mesh is a star, so nothing is
// relayed), a unicast only its destination, and neighbour gossip is passed
// on to the other neighbours when it was new, as mesh.Node does. A message
// whose endpoints are cut apart, or whose destination restarted, by the
// time it is delivered is dropped. A heal (and a join, and a restart)
// exchanges Gossip() between the routers newly connected, as the mesh
// does on a new connection.

// testClock is the routers' clock: real time plus an offset that a test
// may advance (to expire quarantines and refusals at once).
type testClock struct{ off atomic.Int64 }

func (c *testClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *testClock) advance(d time.Duration) { c.off.Add(int64(d)) }

// memStore is an in-memory Persister that keeps what bbolt would: the
// last ring of each pool and its held addresses.
type memStore struct {
	mu    sync.Mutex
	pools map[netip.Prefix]*SavedPool
	n     int // Persist calls
}

func newMemStore() *memStore { return &memStore{pools: map[netip.Prefix]*SavedPool{}} }

func (s *memStore) Persist(c Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	p := s.pools[c.Pool]
	if p == nil {
		p = &SavedPool{Pool: c.Pool, Held: map[netip.Addr]string{}}
		s.pools[c.Pool] = p
	}
	if c.Ring != nil {
		p.Ring = slices.Clone(c.Ring)
	}
	maps.Copy(p.Held, c.Held)
	for _, a := range c.Freed {
		delete(p.Held, a)
	}
	return nil
}

// saved returns a deep copy of what was persisted.
func (s *memStore) saved() []SavedPool {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SavedPool
	for _, p := range s.pools {
		out = append(out, SavedPool{Pool: p.Pool, Ring: slices.Clone(p.Ring), Held: maps.Clone(p.Held)})
	}
	return out
}

type msgKind int

const (
	mBroadcast msgKind = iota
	mUnicast
	mGossip
)

type testMsg struct {
	kind     msgKind
	src, dst mesh.PeerName
	gen      int // the destination's generation when sent
	parts    [][]byte
}

// netStats counts what was sent.
type netStats struct {
	msgs, unicasts, broadcasts, gossips int
	broadcastBytes, bytes               int
}

type testNet struct {
	tb         testing.TB
	rng        netip.Prefix
	retry      time.Duration
	quarantine time.Duration
	clock      testClock
	log        *slog.Logger

	mu      sync.Mutex
	cond    *sync.Cond
	nodes   map[mesh.PeerName]*testNode
	left    map[mesh.PeerName]bool // routers that handed over and left
	group   map[mesh.PeerName]int  // partition of each live router
	queue   []testMsg
	busy    bool
	stopped bool
	errs    []string
	stats   netStats
	wg      sync.WaitGroup
	// heard records, when not nil, who delivered something to whom.
	heard map[[2]mesh.PeerName]bool
}

type testNode struct {
	net   *testNet
	name  mesh.PeerName
	gen   int
	a     *Allocator
	store *memStore
}

// newTestNet starts a network for allocators of rng; it stops with the
// test.
func newTestNet(tb testing.TB, rng string) *testNet {
	n := &testNet{
		tb: tb, rng: netip.MustParsePrefix(rng), retry: 5 * time.Millisecond, quarantine: 300 * time.Millisecond,
		nodes: map[mesh.PeerName]*testNode{}, left: map[mesh.PeerName]bool{}, group: map[mesh.PeerName]int{},
		log: slog.New(slog.DiscardHandler),
	}
	if os.Getenv("IPAM_TEST_LOG") != "" {
		n.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	n.cond = sync.NewCond(&n.mu)
	n.wg.Add(1)
	go n.run()
	tb.Cleanup(func() {
		n.mu.Lock()
		n.stopped = true
		n.cond.Broadcast()
		errs := n.errs
		n.mu.Unlock()
		n.wg.Wait()
		for _, e := range errs {
			tb.Error(e)
		}
	})
	return n
}

// testPeers and testTransport are one router's view of the network.
type testPeers struct {
	n    *testNet
	self mesh.PeerName
}

func (p testPeers) ReachablePeers() []mesh.PeerName {
	p.n.mu.Lock()
	defer p.n.mu.Unlock()
	return p.n.reachableLocked(p.self)
}

func (p testPeers) PeerNickName(q mesh.PeerName) string { return fmt.Sprintf("h%d", uint64(q)) }

type testTransport struct {
	n    *testNet
	self mesh.PeerName
	gen  int
}

func (t testTransport) Broadcast(data mesh.GossipData) {
	parts := data.Encode()
	t.n.mu.Lock()
	defer t.n.mu.Unlock()
	if !t.n.liveLocked(t.self, t.gen) {
		return
	}
	for _, q := range t.n.reachableLocked(t.self) {
		if q != t.self {
			t.n.enqueueLocked(testMsg{kind: mBroadcast, src: t.self, dst: q, parts: parts})
		}
	}
}

func (t testTransport) Unicast(dst mesh.PeerName, msg []byte) error {
	t.n.mu.Lock()
	defer t.n.mu.Unlock()
	if !t.n.liveLocked(t.self, t.gen) {
		return fmt.Errorf("router %v is down", t.self)
	}
	if !t.n.connectedLocked(t.self, dst) {
		return fmt.Errorf("%w: %v", mesh.ErrNoRoute, dst)
	}
	t.n.enqueueLocked(testMsg{kind: mUnicast, src: t.self, dst: dst, parts: [][]byte{slices.Clone(msg)}})
	return nil
}

func (n *testNet) liveLocked(p mesh.PeerName, gen int) bool {
	nd := n.nodes[p]
	return nd != nil && nd.gen == gen
}

func (n *testNet) connectedLocked(a, b mesh.PeerName) bool {
	ga, oka := n.group[a]
	gb, okb := n.group[b]
	return oka && okb && ga == gb
}

func (n *testNet) reachableLocked(self mesh.PeerName) []mesh.PeerName {
	out := []mesh.PeerName{self}
	g, ok := n.group[self]
	if !ok {
		return out
	}
	for q, h := range n.group {
		if h == g && q != self {
			out = append(out, q)
		}
	}
	slices.Sort(out)
	return out
}

func (n *testNet) enqueueLocked(m testMsg) {
	if nd := n.nodes[m.dst]; nd != nil {
		m.gen = nd.gen
	}
	size := 0
	for _, p := range m.parts {
		size += len(p)
	}
	n.stats.msgs++
	n.stats.bytes += size
	switch m.kind {
	case mBroadcast:
		n.stats.broadcasts++
		n.stats.broadcastBytes += size
	case mUnicast:
		n.stats.unicasts++
	case mGossip:
		n.stats.gossips++
	}
	if len(n.queue) > 1_000_000 {
		n.errs = append(n.errs, "message storm: more than a million messages queued")
		n.queue = nil
	}
	n.queue = append(n.queue, m)
	n.cond.Broadcast()
}

// run delivers the queue in order until the test ends.
func (n *testNet) run() {
	defer n.wg.Done()
	for {
		n.mu.Lock()
		for len(n.queue) == 0 && !n.stopped {
			n.cond.Wait()
		}
		if n.stopped {
			n.mu.Unlock()
			return
		}
		m := n.queue[0]
		n.queue = n.queue[1:]
		dst := n.nodes[m.dst]
		ok := dst != nil && dst.gen == m.gen && n.connectedLocked(m.src, m.dst)
		var a *Allocator
		if ok {
			a = dst.a
		}
		n.busy = true
		n.mu.Unlock()
		if ok {
			n.deliver(a, m)
			n.mu.Lock()
			if n.heard != nil {
				n.heard[[2]mesh.PeerName{m.src, m.dst}] = true
			}
			n.mu.Unlock()
		}
		n.mu.Lock()
		n.busy = false
		n.cond.Broadcast()
		n.mu.Unlock()
	}
}

func (n *testNet) fail(format string, args ...any) {
	n.mu.Lock()
	n.errs = append(n.errs, fmt.Sprintf(format, args...))
	n.mu.Unlock()
}

func (n *testNet) deliver(a *Allocator, m testMsg) {
	switch m.kind {
	case mUnicast:
		if err := a.OnGossipUnicast(m.src, m.parts[0]); err != nil {
			n.fail("unicast %v->%v: %v", m.src, m.dst, err)
		}
	case mBroadcast:
		for _, p := range m.parts {
			if _, err := a.OnGossipBroadcast(m.src, p); err != nil {
				n.fail("broadcast %v->%v: %v", m.src, m.dst, err)
			}
		}
	case mGossip:
		var delta mesh.GossipData
		for _, p := range m.parts {
			d, err := a.OnGossip(p)
			if err != nil {
				n.fail("gossip %v->%v: %v", m.src, m.dst, err)
				continue
			}
			if d != nil {
				if delta == nil {
					delta = d
				} else {
					delta = delta.Merge(d)
				}
			}
		}
		if delta != nil { // passed on to the other neighbours
			parts := delta.Encode()
			n.mu.Lock()
			for _, q := range n.reachableLocked(m.dst) {
				if q != m.dst && q != m.src {
					n.enqueueLocked(testMsg{kind: mGossip, src: m.dst, dst: q, parts: parts})
				}
			}
			n.mu.Unlock()
		}
	}
}

// hasHeard reports whether dst has been delivered something from src
// since recording began (n.heard set).
func (n *testNet) hasHeard(dst, src mesh.PeerName) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.heard[[2]mesh.PeerName{src, dst}]
}

// settle waits until every queued message has been delivered.
func (n *testNet) settle() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for len(n.queue) > 0 || n.busy {
		n.cond.Wait()
	}
}

// settleAll delivers everything, then lets the routers' periodic work run
// (the clock moved past every retry interval) until no message is sent.
func (n *testNet) settleAll() {
	for i := 0; ; i++ {
		n.settle()
		before := n.statsNow().msgs
		n.clock.advance(10 * n.retry)
		for _, nd := range n.live() {
			nd.a.Tick()
		}
		n.settle()
		if n.statsNow().msgs == before {
			return
		}
		if i > 50 {
			n.tb.Fatalf("the network does not settle: still sending after %d rounds of Tick", i)
		}
	}
}

func (n *testNet) statsNow() netStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// gossip queues each pair's complete state for the other, as the mesh
// does on a new connection. Called without n.mu: Gossip takes the
// Allocator's lock, under which the Allocator calls Peers (n.mu).
func (n *testNet) gossip(pairs [][2]*testNode) {
	for _, pr := range pairs {
		for _, d := range [][2]*testNode{pr, {pr[1], pr[0]}} {
			g := d[0].a.Gossip()
			if g == nil {
				continue
			}
			parts := g.Encode()
			n.mu.Lock()
			n.enqueueLocked(testMsg{kind: mGossip, src: d[0].name, dst: d[1].name, parts: parts})
			n.mu.Unlock()
		}
	}
}

func (n *testNet) config(name mesh.PeerName, gen int, store *memStore) Config {
	return Config{
		Self: name, Range: n.rng,
		Transport: testTransport{n: n, self: name, gen: gen}, Peers: testPeers{n: n, self: name},
		Persister: store, Saved: store.saved(), Now: n.clock.Now, Logger: n.log.With("self", uint64(name)),
		RetryInterval: n.retry, Quarantine: n.quarantine, TakeoverSettle: 4 * n.retry,
	}
}

// add starts a router named name in partition group and connects it.
func (n *testNet) add(name mesh.PeerName, group int) *testNode {
	n.tb.Helper()
	nd := &testNode{net: n, name: name, store: newMemStore()}
	a, err := New(n.config(name, 0, nd.store))
	if err != nil {
		n.tb.Fatal(err)
	}
	nd.a = a
	n.mu.Lock()
	if n.nodes[name] != nil {
		n.mu.Unlock()
		n.tb.Fatalf("router %v added twice", name)
	}
	n.nodes[name] = nd
	n.group[name] = group
	pairs := n.linksLocked(name)
	n.mu.Unlock()
	n.gossip(pairs)
	return nd
}

// addN starts routers 1..count, all connected.
func (n *testNet) addN(count int) []*testNode {
	out := make([]*testNode, count)
	for i := range out {
		out[i] = n.add(mesh.PeerName(i+1), 0)
	}
	return out
}

// linksLocked returns the links between name and its partition.
func (n *testNet) linksLocked(name mesh.PeerName) [][2]*testNode {
	var out [][2]*testNode
	for _, q := range n.reachableLocked(name) {
		if q != name {
			out = append(out, [2]*testNode{n.nodes[name], n.nodes[q]})
		}
	}
	return out
}

// node returns a live router.
func (n *testNet) node(name mesh.PeerName) *testNode {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.nodes[name]
}

// live returns the live routers sorted by name.
func (n *testNet) live() []*testNode {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := slices.Collect(maps.Values(n.nodes))
	slices.SortFunc(out, func(x, y *testNode) int { return int(x.name) - int(y.name) })
	return out
}

// partition puts each router in the group groups gives it (absent: 0).
func (n *testNet) partition(groups map[mesh.PeerName]int) {
	n.mu.Lock()
	old := maps.Clone(n.group)
	for p := range n.group {
		n.group[p] = groups[p]
	}
	pairs := n.newLinksLocked(old)
	n.mu.Unlock()
	n.gossip(pairs)
}

// heal joins every partition.
func (n *testNet) heal() { n.partition(nil) }

// newLinksLocked returns the links that the change from old to the
// current groups made.
func (n *testNet) newLinksLocked(old map[mesh.PeerName]int) [][2]*testNode {
	var out [][2]*testNode
	names := slices.Sorted(maps.Keys(n.group))
	for i, x := range names {
		for _, y := range names[i+1:] {
			if n.group[x] == n.group[y] && old[x] != old[y] {
				out = append(out, [2]*testNode{n.nodes[x], n.nodes[y]})
			}
		}
	}
	return out
}

// restart replaces the router by a new Allocator built from what it
// persisted, as after a crash: messages on their way to it are lost.
func (n *testNet) restart(name mesh.PeerName) *testNode {
	n.tb.Helper()
	n.mu.Lock()
	nd := n.nodes[name]
	n.mu.Unlock()
	gen := nd.gen + 1
	a, err := New(n.config(name, gen, nd.store))
	if err != nil {
		n.tb.Fatal(err)
	}
	n.mu.Lock()
	nd.gen, nd.a = gen, a
	pairs := n.linksLocked(name)
	n.mu.Unlock()
	n.gossip(pairs)
	return nd
}

// leave hands the router's ranges over, delivers that, and removes it.
func (n *testNet) leave(name mesh.PeerName) error {
	nd := n.node(name)
	if err := nd.a.HandOver(); err != nil {
		return err
	}
	n.settle()
	n.mu.Lock()
	delete(n.nodes, name)
	delete(n.group, name)
	n.left[name] = true
	n.mu.Unlock()
	return nil
}

// kill removes a router without a hand-over (a host gone for good).
func (n *testNet) kill(name mesh.PeerName) {
	n.mu.Lock()
	delete(n.nodes, name)
	delete(n.group, name)
	n.mu.Unlock()
}

// alloc allocates for ident in subnet (zero: the default) with a bounded
// wait.
func (nd *testNode) alloc(ident, subnet string) (netip.Prefix, error) {
	var s netip.Prefix
	if subnet != "" {
		s = netip.MustParsePrefix(subnet)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return nd.a.Allocate(ctx, ident, s)
}

// mustAlloc allocates or fails the test.
func (nd *testNode) mustAlloc(tb testing.TB, ident string) netip.Addr {
	tb.Helper()
	p, err := nd.alloc(ident, "")
	if err != nil {
		tb.Fatalf("allocate %s on %v: %v", ident, nd.name, err)
	}
	return p.Addr()
}
