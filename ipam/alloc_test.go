package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/mesh"
)

func TestNewConfig(t *testing.T) {
	n := newTestNet(t, "10.32.0.0/12")
	base := n.config(1, 0, newMemStore())
	for _, c := range []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"ok", func(*Config) {}, true},
		{"default subnet inside", func(c *Config) { c.DefaultSubnet = netip.MustParsePrefix("10.32.4.0/24") }, true},
		{"default subnet outside", func(c *Config) { c.DefaultSubnet = netip.MustParsePrefix("10.64.0.0/24") }, false},
		{"range /31", func(c *Config) { c.Range = netip.MustParsePrefix("10.0.0.0/31") }, false},
		{"range host bits", func(c *Config) { c.Range = netip.MustParsePrefix("10.32.0.1/12") }, false},
		{"no transport", func(c *Config) { c.Transport = nil }, false},
		{"no peers", func(c *Config) { c.Peers = nil }, false},
		{"no name", func(c *Config) { c.Self = mesh.UnknownPeerName }, false},
	} {
		cfg := base
		c.edit(&cfg)
		if _, err := New(cfg); (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	a, _ := New(base)
	if r, d := a.Range(); r != n.rng || d != n.rng {
		t.Errorf("Range() = %s %s", r, d)
	}
}

// TestLoneRouter: the first host allocates at once, with no peer.
func TestLoneRouter(t *testing.T) {
	n := newTestNet(t, "10.32.0.0/12")
	nd := n.add(1, 0)
	if st := nd.a.Status(); !strings.HasPrefix(st.State, "idle") {
		t.Errorf("state before the first allocation: %q", st.State)
	}
	start := time.Now()
	p, err := nd.a.Allocate(context.Background(), "c1", netip.Prefix{})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("the first allocation on a lone router took %v", d)
	}
	if want := netip.MustParsePrefix("10.32.0.1/12"); p != want {
		t.Errorf("first address %s, want %s", p, want)
	}
	again, err := nd.a.Allocate(context.Background(), "c1", netip.Prefix{})
	if err != nil || again != p {
		t.Errorf("same ident again: %s %v, want %s", again, err, p)
	}
	other := nd.mustAlloc(t, "c2")
	if other == p.Addr() {
		t.Error("two idents got the same address")
	}
	if got := nd.a.Addresses("c1"); len(got) != 1 || got[0] != p.Addr() {
		t.Errorf("Addresses(c1) = %v", got)
	}
	st := nd.a.Status()
	if st.State != "ready" || len(st.Pools) != 1 || st.Pools[0].Held != 2 || st.Pools[0].Seed.By != 1 {
		t.Errorf("status: %+v", st)
	}
	if ps := st.Pools[0].Peers; len(ps) != 1 || ps[0].Owned != 1<<20 || ps[0].Free != 1<<20-4 || !ps[0].Reachable {
		t.Errorf("peers: %+v", ps)
	}
	if o := nd.a.Owners(); len(o) != 1 || o[0] != 1 {
		t.Errorf("Owners() = %v", o)
	}
	n.settle()
	if s := n.statsNow(); s.msgs != 0 {
		t.Errorf("a lone router sent %d messages", s.msgs)
	}
}

func TestReleaseFree(t *testing.T) {
	n := newTestNet(t, "10.32.0.0/12")
	nd := n.add(1, 0)
	a1 := nd.mustAlloc(t, "c1")
	sub, err := nd.alloc("c1", "10.32.4.0/24") // a second address, in a subnet
	if err != nil {
		t.Fatal(err)
	}
	a2 := nd.mustAlloc(t, "c2")
	if nd.a.Free("c2", a1) {
		t.Error("Free by the wrong ident succeeded")
	}
	if nd.a.Free("c2", netip.MustParseAddr("1.2.3.4")) {
		t.Error("Free outside the pools succeeded")
	}
	if !nd.a.Free("c2", a2) || nd.a.Free("c2", a2) {
		t.Error("Free of a held address: want true, then false")
	}
	got := nd.a.Release("c1")
	if len(got) != 2 || got[0] != a1 || got[1] != sub.Addr() {
		t.Errorf("Release(c1) = %v, want [%s %s]", got, a1, sub.Addr())
	}
	if got := nd.a.Release("c1"); len(got) != 0 {
		t.Errorf("second Release = %v", got)
	}
	if again := nd.mustAlloc(t, "c3"); again != a1 {
		t.Errorf("the lowest address after release is %s, want %s", again, a1)
	}
	if st := nd.a.Status(); st.Pools[0].Held != 1 || st.Pools[0].Peers[0].Free != 1<<20-3 {
		t.Errorf("status after release: %+v", st.Pools[0])
	}
}

func TestAllocateInSubnet(t *testing.T) {
	n := newTestNet(t, "10.32.0.0/12")
	nd := n.add(1, 0)
	subnet := netip.MustParsePrefix("10.32.4.0/30")
	var got []netip.Addr
	for i := range 2 {
		p, err := nd.alloc(fmt.Sprint("c", i), subnet.String())
		if err != nil {
			t.Fatal(err)
		}
		if p.Bits() != 30 || !subnet.Contains(p.Addr()) {
			t.Fatalf("%s not in %s", p, subnet)
		}
		got = append(got, p.Addr())
	}
	if got[0] != netip.MustParseAddr("10.32.4.1") || got[1] != netip.MustParseAddr("10.32.4.2") {
		t.Errorf("the usable addresses of a /30 are .1 and .2, got %v", got)
	}
	if _, err := nd.alloc("c3", subnet.String()); !errors.Is(err, ErrNoSpace) {
		t.Errorf("a full /30: %v, want ErrNoSpace", err)
	}
	// The default subnet.
	n2 := newTestNet(t, "10.32.0.0/12")
	cfg := n2.config(1, 0, newMemStore())
	cfg.DefaultSubnet = netip.MustParsePrefix("10.40.0.0/16")
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Allocate(context.Background(), "c1", netip.Prefix{})
	if err != nil || p != netip.MustParsePrefix("10.40.0.1/16") {
		t.Errorf("default subnet: %s %v", p, err)
	}
}

func TestBadInput(t *testing.T) {
	n := newTestNet(t, "10.32.0.0/12")
	nd := n.add(1, 0)
	other := n.add(2, 0)
	ctx := context.Background()
	for _, c := range []struct {
		subnet string
		want   error
	}{
		{"10.64.0.0/24", ErrOutsidePools},
		{"10.32.0.0/11", ErrOutsidePools}, // larger than the range, overlapping it
		{"10.32.0.0/31", ErrSubnetTooSmall},
		{"10.32.0.0/32", ErrSubnetTooSmall},
	} {
		_, err := nd.a.Allocate(ctx, "c", netip.MustParsePrefix(c.subnet))
		if !errors.Is(err, c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("allocate in %s: %v, want %v on one line", c.subnet, err, c.want)
		}
	}
	if _, err := nd.a.Allocate(ctx, "c", netip.MustParsePrefix("10.32.0.1/24")); err == nil {
		t.Error("a subnet with host bits was accepted")
	}

	// A claim of a taken address names the holder and its host.
	taken := nd.mustAlloc(t, "c1")
	if ok, err := nd.a.Claim(ctx, "c1", taken); !ok || err != nil {
		t.Errorf("claim by the holder: %v %v", ok, err)
	}
	_, err := nd.a.Claim(ctx, "c2", taken)
	if !errors.Is(err, ErrAddressTaken) || !strings.Contains(err.Error(), "c1") || !strings.Contains(err.Error(), "this host") {
		t.Errorf("claim of a taken address here: %v", err)
	}
	n.settle()
	_, err = other.a.Claim(ctx, "c2", taken)
	if !errors.Is(err, ErrAddressTaken) || !strings.Contains(err.Error(), "c1") || !strings.Contains(err.Error(), "h1") {
		t.Errorf("claim of an address taken on another host: %v", err)
	}
	// Outside every pool: not managed, accepted.
	if ok, err := nd.a.Claim(ctx, "c3", netip.MustParseAddr("192.168.1.1")); ok || err != nil {
		t.Errorf("claim outside the pools: %v %v", ok, err)
	}
	if nd.a.InPools(netip.MustParseAddr("192.168.1.1")) || !nd.a.InPools(taken) {
		t.Error("InPools")
	}

	if _, err := nd.a.TakeOver(99); !errors.Is(err, ErrUnknownPeer) {
		t.Errorf("rmpeer of an unknown peer: %v", err)
	}
	if _, err := nd.a.TakeOver(1); err == nil {
		t.Error("rmpeer of self accepted")
	}

	// Pools.
	for _, c := range []struct {
		pool string
		want error
	}{
		{"10.32.4.0/24", ErrPoolOverlap},
		{"10.0.0.0/8", ErrPoolOverlap},
		{"10.1.1.0/31", ErrSubnetTooSmall},
	} {
		if err := nd.a.CreatePool(netip.MustParsePrefix(c.pool)); !errors.Is(err, c.want) {
			t.Errorf("create pool %s: %v, want %v", c.pool, err, c.want)
		}
	}
	if err := nd.a.CreatePool(netip.MustParsePrefix("10.1.1.0/24")); err != nil {
		t.Fatal(err)
	}
	if err := nd.a.CreatePool(netip.MustParsePrefix("10.1.1.0/24")); err != nil {
		t.Errorf("creating a pool again: %v", err)
	}
	if err := nd.a.CreatePool(netip.MustParsePrefix("10.1.1.128/25")); !errors.Is(err, ErrPoolOverlap) {
		t.Errorf("a pool inside a pool: %v", err)
	}
	var err2 error
	for i := 0; err2 == nil && i < 100; i++ {
		err2 = nd.a.CreatePool(netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 24))
	}
	if !errors.Is(err2, ErrTooManyPools) {
		t.Errorf("pool limit: %v", err2)
	}
	if err := nd.a.ReleasePool(n.rng); err == nil {
		t.Error("the range was released")
	}
}

// TestPools: two routers share a created pool; a pool in use cannot be
// released; a released pool's ranges go to the other user.
func TestPools(t *testing.T) {
	n := newTestNet(t, "10.32.0.0/12")
	r1, r2 := n.add(1, 0), n.add(2, 0)
	pool := netip.MustParsePrefix("10.1.1.0/24")
	for _, nd := range []*testNode{r1, r2} {
		if err := nd.a.CreatePool(pool); err != nil {
			t.Fatal(err)
		}
	}
	x, err := r2.alloc("c1", pool.String())
	if err != nil {
		t.Fatal(err)
	}
	y, err := r1.alloc("c2", pool.String())
	if err != nil || x.Addr() == y.Addr() || !pool.Contains(x.Addr()) || !pool.Contains(y.Addr()) {
		t.Fatalf("%s %s %v", x, y, err)
	}
	n.settleAll()
	n.checkConverged(t, pool)
	if err := r2.a.ReleasePool(pool); !errors.Is(err, ErrPoolInUse) {
		t.Errorf("release of a pool in use: %v", err)
	}
	r2.a.Release("c1")
	if err := r2.a.ReleasePool(pool); err != nil {
		t.Fatal(err)
	}
	n.settleAll()
	n.checkConverged(t, pool)
	if rp := r1.ringOf(pool); len(rp.owned(2)) != 0 {
		t.Errorf("router 2 still owns ranges of the released pool: %v", ringString(r1.ringOf(pool)))
	}
	st := r1.a.Status()
	if len(st.Pools) != 2 || st.Pools[0].Prefix != n.rng || st.Pools[1].Prefix != pool || !st.Pools[1].Used {
		t.Errorf("status pools: %+v", st.Pools)
	}
}

// TestBorrow: routers that do not own space borrow it from the one that
// seeded; every address is distinct; the rings agree.
func TestBorrow(t *testing.T) {
	for _, count := range []int{2, 3} {
		t.Run(fmt.Sprint(count, " routers"), func(t *testing.T) {
			n := newTestNet(t, "10.32.0.0/12")
			nodes := n.addN(count)
			seen := map[netip.Addr]string{}
			// The highest-named asks first: the lowest seeds and lends.
			for i := len(nodes) - 1; i >= 0; i-- {
				for j := range 5 {
					id := fmt.Sprintf("c%d-%d", i, j)
					a := nodes[i].mustAlloc(t, id)
					if prev, ok := seen[a]; ok {
						t.Fatalf("%s given to %s and %s", a, prev, id)
					}
					seen[a] = id
				}
			}
			n.settleAll()
			n.checkConverged(t, n.rng)
			n.checkNoDuplicates(t)
			r := nodes[0].ringOf(n.rng)
			if r.seed.By != 1 {
				t.Errorf("seeded by %v, want the lowest-named router", r.seed.By)
			}
			for _, nd := range nodes {
				if len(r.owned(nd.name)) == 0 {
					t.Errorf("router %v owns nothing: %v", nd.name, ringString(r))
				}
				if st := nd.a.Status(); st.State != "ready" {
					t.Errorf("router %v: %q", nd.name, st.State)
				}
			}
		})
	}
}

// TestNoSpace fills a small range from two routers.
func TestNoSpace(t *testing.T) {
	n := newTestNet(t, "10.9.0.0/28") // 14 usable addresses
	r1, r2 := n.add(1, 0), n.add(2, 0)
	seen := map[netip.Addr]bool{}
	for i := range 14 {
		nd := []*testNode{r1, r2}[i%2]
		a := nd.mustAlloc(t, fmt.Sprint("c", i))
		if seen[a] {
			t.Fatalf("%s twice", a)
		}
		seen[a] = true
	}
	for _, nd := range []*testNode{r1, r2} {
		_, err := nd.alloc("more", "")
		if !errors.Is(err, ErrNoSpace) {
			t.Errorf("router %v in a full range: %v, want ErrNoSpace", nd.name, err)
		}
	}
	n.settleAll()
	n.checkConverged(t, n.rng)
	if st := r1.a.Status(); !strings.HasPrefix(st.State, "no space: every address") {
		t.Errorf("state of a full range: %q", st.State)
	}
	// Freed space is found again, on either router.
	r1.a.Release("c0")
	n.settleAll()
	if _, err := r2.alloc("again", ""); err != nil {
		t.Errorf("after a release on the other router: %v", err)
	}
}

// TestUnreachableSpace: the free space belongs to a router that is gone;
// rmpeer (TakeOver) hands it over.
func TestUnreachableSpace(t *testing.T) {
	n := newTestNet(t, "10.9.0.0/26")
	r1, r2 := n.add(1, 0), n.add(2, 0)
	r2.mustAlloc(t, "c0") // r1 seeds and lends to r2
	n.settleAll()
	n.kill(1)
	var err error
	for i := 0; err == nil && i < 64; i++ {
		_, err = r2.alloc(fmt.Sprint("c", i+1), "")
	}
	if !errors.Is(err, ErrUnreachableSpace) || !strings.Contains(err.Error(), "rmpeer") || !strings.Contains(err.Error(), "h1") {
		t.Fatalf("want ErrUnreachableSpace naming the peer and rmpeer, got %v", err)
	}
	if st := r2.a.Status(); !strings.Contains(st.State, "unreachable") {
		t.Errorf("state: %q", st.State)
	}
	// A claim of an address in the dead router's range says so too.
	free := netip.MustParseAddr("10.9.0.62")
	if rr := r2.ringOf(n.rng); rr.owner(a2u(free)) == 1 {
		if _, err := r2.a.Claim(context.Background(), "x", free); !errors.Is(err, ErrUnreachableSpace) {
			t.Errorf("claim in an unreachable range: %v", err)
		}
	}
	got, err := r2.a.TakeOver(1)
	if err != nil || got == 0 {
		t.Fatalf("TakeOver: %d %v", got, err)
	}
	if _, err := r2.alloc("after", ""); err != nil {
		t.Errorf("after TakeOver: %v", err)
	}
	if o := r2.a.Owners(); len(o) != 1 || o[0] != 2 {
		t.Errorf("owners after TakeOver: %v", o)
	}
	_ = r1
}

// captureTransport records what an Allocator sends.
type captureTransport struct {
	mu        sync.Mutex
	unicasts  []request
	ringsTo   []mesh.PeerName
	broadcast int
}

func (c *captureTransport) Broadcast(mesh.GossipData) {
	c.mu.Lock()
	c.broadcast++
	c.mu.Unlock()
}

func (c *captureTransport) Unicast(dst mesh.PeerName, msg []byte) error {
	u, r, err := decodeMessage(msg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if u != nil {
		c.ringsTo = append(c.ringsTo, dst)
	} else {
		c.unicasts = append(c.unicasts, r)
	}
	return nil
}

type staticPeers []mesh.PeerName

func (s staticPeers) ReachablePeers() []mesh.PeerName   { return s }
func (s staticPeers) PeerNickName(mesh.PeerName) string { return "" }

// TestPartialRing: a router with no ring (or a younger one) that hears
// only some entries of a ring, its first token among them, asks for the
// whole ring instead of taking the part for the whole, whose last range
// would seem to run over ranges it does not know of.
func TestPartialRing(t *testing.T) {
	tr := &captureTransport{}
	a, err := New(Config{Self: 5, Range: netip.MustParsePrefix("10.9.0.0/24"), Transport: tr, Peers: staticPeers{1, 2, 5}, RetryInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	pool := netip.MustParsePrefix("10.9.0.0/24")
	lo := a2u(pool.Addr())
	seed := Seed{At: 1, By: 1}
	ents := []entry{{start: lo, owner: 1, version: 3, free: 10}, {start: lo + 128, owner: 2, version: 2, free: 128}, {start: lo + 192, owner: 5, version: 2, free: 64}}
	delta := encodeUpdate([]poolUpdate{{pool: pool, seed: seed, ents: []entry{ents[0], ents[2]}}})
	if _, err := a.OnGossipBroadcast(1, delta); err != nil {
		t.Fatal(err)
	}
	if st := a.Status(); !st.Pools[0].Seed.IsZero() {
		t.Fatalf("a part of a ring was taken for the whole: %+v", st.Pools[0])
	}
	if len(tr.unicasts) != 1 || tr.unicasts[0].kind != kindRingRequest {
		t.Fatalf("no ring request: %+v", tr.unicasts)
	}
	whole, _ := (&update{pools: []poolUpdate{{pool: pool, seed: seed, ents: ents, whole: true}}}).Encode(), 0
	if _, err := a.OnGossip(whole[0]); err != nil {
		t.Fatal(err)
	}
	st := a.Status()
	if st.Pools[0].Seed != seed || st.Pools[0].Tokens != 3 {
		t.Fatalf("whole ring not adopted: %+v", st.Pools[0])
	}
	p, err := a.Allocate(context.Background(), "c", netip.Prefix{})
	if err != nil || p.Addr() != netip.MustParseAddr("10.9.0.192") {
		t.Fatalf("allocate in the range given to us: %s %v", p, err)
	}
}

// TestWaitingForPeers: a router whose lowest-named peer never answers
// waits until its context ends, says so in its status, and explains the
// failure.
func TestWaitingForPeers(t *testing.T) {
	tr := &captureTransport{}
	a, err := New(Config{Self: 5, Range: netip.MustParsePrefix("10.9.0.0/24"), Transport: tr, Peers: staticPeers{1, 5}, RetryInterval: 2 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := a.Allocate(ctx, "c1", netip.Prefix{})
		done <- err
	}()
	time.Sleep(30 * time.Millisecond)
	if st := a.Status(); st.State != "waiting for peers" {
		t.Errorf("state while waiting: %q", st.State)
	}
	err = <-done
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "status ipam") {
		t.Errorf("allocation with no answer: %v", err)
	}
	tr.mu.Lock()
	n := len(tr.unicasts)
	tr.mu.Unlock()
	if n < 2 || n > 60 {
		t.Errorf("%d space requests in 100 ms with a retry interval of 2 ms", n)
	}
	if st := a.Status(); !strings.HasPrefix(st.State, "idle") {
		t.Errorf("state after giving up: %q", st.State)
	}
}
