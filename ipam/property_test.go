package ipam

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/mesh"
)

// TestProperty is the property test: 100 allocators on the
// in-memory network; after a connected start (one seed), random joins,
// leaves (with a hand-over), partitions, heals, restarts, allocations and
// releases. After every step no address is held twice; whenever the mesh
// is healed and settled, every router has the same ring, it tiles the
// range, no range belongs to a router that handed over and left, every
// free count is right and every address is held inside its holder's
// ranges; every allocation made is still held where it was made until
// released. IPAM_SEED=n replays a run; IPAM_STEPS=n makes it longer.
func TestProperty(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("IPAM_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	steps := 300
	if raceEnabled {
		steps = 150
	}
	if s := os.Getenv("IPAM_STEPS"); s != "" {
		steps, _ = strconv.Atoi(s)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replay with IPAM_SEED=%d IPAM_STEPS=%d", seed, steps)
		}
	})
	for _, rng := range []string{"10.9.0.0/23", "10.9.0.0/25"} {
		t.Run(rng, func(t *testing.T) {
			t.Parallel()
			runProperty(t, seed, 100, steps, rng)
		})
	}
}

// propModel is what the test expects: ident -> router and address.
type propHold struct {
	node mesh.PeerName
	addr netip.Addr
}

func runProperty(t *testing.T, seed uint64, count, steps int, rng string) {
	rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	n := newTestNet(t, rng)
	n.addN(count)
	next := mesh.PeerName(count + 1)
	model := map[string]propHold{}
	idents := 0
	partitioned := false
	stats := map[string]int{}

	pick := func() *testNode {
		nodes := n.live()
		return nodes[rnd.IntN(len(nodes))]
	}
	alloc := func(nd *testNode) {
		idents++
		id := fmt.Sprintf("t%d", idents)
		p, err := nd.alloc(id, "")
		switch {
		case err == nil:
			stats["allocated"]++
			model[id] = propHold{nd.name, p.Addr()}
		case errors.Is(err, ErrNoSpace):
			stats["no space"]++
		case errors.Is(err, ErrUnreachableSpace) && partitioned:
			stats["unreachable"]++
		default:
			t.Fatalf("allocate %s on %v (partitioned %v): %v", id, nd.name, partitioned, err)
		}
	}
	checkModel := func() {
		for id, h := range model {
			nd := n.node(h.node)
			if got := nd.a.Addresses(id); len(got) != 1 || got[0] != h.addr {
				t.Fatalf("%s allocated %s on %v, now holds %v", id, h.addr, h.node, got)
			}
		}
	}
	settled := func() {
		n.heal()
		partitioned = false
		n.settleAll()
		n.checkConverged(t, n.rng)
		n.checkNoDuplicates(t)
		checkModel()
		// One seed, so never a conflict; and free space anywhere in a
		// connected mesh can be had from any router.
		var free uint64
		for _, nd := range n.live() {
			if c := nd.a.Status().Pools[0].Conflicts; len(c) > 0 {
				t.Fatalf("conflicts on %v with a single seed: %+v", nd.name, c)
			}
		}
		for _, e := range n.live()[0].ringOf(n.rng).ents {
			free += e.free
		}
		if free > 0 {
			nd := pick()
			idents++
			id := fmt.Sprintf("t%d", idents)
			p, err := nd.alloc(id, "")
			if err != nil {
				t.Fatalf("allocate on %v with %d addresses free in the mesh: %v", nd.name, free, err)
			}
			model[id] = propHold{nd.name, p.Addr()}
			n.settle()
			n.checkNoDuplicates(t)
		}
	}

	// The connected start: a few allocations seed the ring and spread it.
	for range 20 {
		alloc(pick())
	}
	settled()

	for step := range steps {
		switch op := rnd.IntN(100); {
		case op < 34:
			alloc(pick())
		case op < 40: // a claim of a random address of the range
			nd := pick()
			s := spanOf(n.rng)
			addr := u2a(s.lo + 1 + uint64(rnd.IntN(int(s.size())-2)))
			idents++
			id := fmt.Sprintf("t%d", idents)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			ok, err := nd.a.Claim(ctx, id, addr)
			cancel()
			switch {
			case err == nil && ok:
				model[id] = propHold{nd.name, addr}
				stats["claimed"]++
			case errors.Is(err, ErrAddressTaken):
				if len(n.held()[addr]) == 0 {
					t.Fatalf("claim of %s on %v: %v, but nobody holds it", addr, nd.name, err)
				}
				stats["taken"]++
			case errors.Is(err, ErrUnreachableSpace) && partitioned:
				stats["unreachable"]++
			default:
				t.Fatalf("claim of %s on %v (partitioned %v): %v %v", addr, nd.name, partitioned, ok, err)
			}
		case op < 45: // concurrent allocations on several routers
			var wg sync.WaitGroup
			var mu sync.Mutex
			nodes := []*testNode{pick(), pick(), pick(), pick()}
			for i, nd := range nodes {
				idents++
				id := fmt.Sprintf("t%d", idents)
				wg.Add(1)
				go func() {
					defer wg.Done()
					p, err := nd.alloc(id, "")
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						model[id] = propHold{nd.name, p.Addr()}
						stats["allocated"]++
					case errors.Is(err, ErrNoSpace), errors.Is(err, ErrUnreachableSpace) && partitioned:
						stats["refused"]++
					default:
						t.Errorf("concurrent allocation %d on %v: %v", i, nd.name, err)
					}
				}()
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
		case op < 60:
			if len(model) == 0 {
				continue
			}
			ids := slices.Sorted(func(yield func(string) bool) {
				for id := range model {
					if !yield(id) {
						return
					}
				}
			})
			id := ids[rnd.IntN(len(ids))]
			h := model[id]
			if got := n.node(h.node).a.Release(id); len(got) != 1 || got[0] != h.addr {
				t.Fatalf("release %s on %v: %v, want %s", id, h.node, got, h.addr)
			}
			delete(model, id)
			stats["released"]++
		case op < 67:
			groups := map[mesh.PeerName]int{}
			k := 2 + rnd.IntN(2)
			for _, nd := range n.live() {
				groups[nd.name] = rnd.IntN(k)
			}
			n.partition(groups)
			partitioned = true
			stats["partitions"]++
		case op < 74:
			n.heal()
			partitioned = false
			stats["heals"]++
		case op < 80:
			// A new router joins the partition of a random one.
			other := pick()
			n.mu.Lock()
			g := n.group[other.name]
			n.mu.Unlock()
			n.add(next, g)
			next++
			stats["joins"]++
		case op < 85:
			nodes := n.live()
			if len(nodes) <= count/2 {
				continue
			}
			nd := nodes[rnd.IntN(len(nodes))]
			if len(nd.a.cfg.Peers.ReachablePeers()) < 2 {
				continue // nobody to hand over to
			}
			if err := n.leave(nd.name); err != nil {
				t.Fatalf("leave %v: %v", nd.name, err)
			}
			for id, h := range model {
				if h.node == nd.name {
					delete(model, id)
				}
			}
			stats["leaves"]++
		case op < 88:
			// A router dies for good; one other runs rmpeer for it.
			nodes := n.live()
			if len(nodes) <= count/2 {
				continue
			}
			dead := nodes[rnd.IntN(len(nodes))]
			n.kill(dead.name)
			for id, h := range model {
				if h.node == dead.name {
					delete(model, id)
				}
			}
			if _, err := pick().a.TakeOver(dead.name); err != nil && !errors.Is(err, ErrUnknownPeer) {
				t.Fatalf("rmpeer %v: %v", dead.name, err)
			}
			n.mu.Lock()
			n.left[dead.name] = true // nothing may stay its own
			n.mu.Unlock()
			stats["rmpeers"]++
		case op < 90:
			n.restart(pick().name) // messages on their way to it are lost
			stats["restarts"]++
		case op < 94:
			// Allocations under way while the network changes under them.
			var wg sync.WaitGroup
			var mu sync.Mutex
			busy := map[mesh.PeerName]bool{}
			for range 6 {
				nd := pick()
				busy[nd.name] = true
				idents++
				id := fmt.Sprintf("t%d", idents)
				wg.Add(1)
				go func() {
					defer wg.Done()
					p, err := nd.alloc(id, "")
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						model[id] = propHold{nd.name, p.Addr()}
						stats["allocated"]++
					case errors.Is(err, ErrNoSpace), errors.Is(err, ErrUnreachableSpace):
						stats["refused"]++
					default:
						t.Errorf("allocation on %v while the network changes: %v", nd.name, err)
					}
				}()
			}
			switch rnd.IntN(3) {
			case 0:
				groups := map[mesh.PeerName]int{}
				for _, nd := range n.live() {
					groups[nd.name] = rnd.IntN(2)
				}
				n.partition(groups)
				partitioned = true
			case 1:
				n.heal()
			case 2:
				for range 3 {
					if nd := pick(); !busy[nd.name] {
						n.restart(nd.name)
					}
				}
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
			stats["chaos"]++
		default:
			settled()
			stats["settles"]++
		}
		n.settle()
		n.checkNoDuplicates(t)
		if step%50 == 49 {
			settled()
		}
	}
	settled()
	held := 0
	for _, nd := range n.live() {
		held += int(nd.a.Status().Pools[0].Held)
	}
	if held != len(model) {
		t.Fatalf("%d addresses held, %d expected", held, len(model))
	}
	st := n.statsNow()
	t.Logf("seed %d: %v; %d routers live; %d messages, %d broadcast bytes", seed, stats, len(n.live()), st.msgs, st.broadcastBytes)
}
