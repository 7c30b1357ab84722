package nameserver

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/weftnet/weft/mesh"
)

// TestStoreConvergence runs random adds and removes on three stores and
// exchanges their updates (broadcast deltas and full gossip) in random
// orders, with re-asserted records broadcast like the integrator will. Once
// every store has heard every other, all hold the same records.
func TestStoreConvergence(t *testing.T) {
	for seed := range uint64(50) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			clock := newFakeClock()
			peers := []mesh.PeerName{peerA, peerB, peerC}
			stores := make([]*Store, len(peers))
			for i, p := range peers {
				stores[i] = newTestStore(t, p, clock)
			}
			// pending[i] holds messages on their way to store i.
			pending := make([][]*RecordSet, len(stores))
			broadcast := func(from int, set *RecordSet) {
				if set.Len() == 0 {
					return
				}
				for j := range stores {
					if j != from {
						pending[j] = append(pending[j], set)
					}
				}
			}
			deliver := func(i int) {
				if len(pending[i]) == 0 {
					return
				}
				k := rng.IntN(len(pending[i])) // out of order
				msg := pending[i][k]
				pending[i] = slices.Delete(pending[i], k, k+1)
				// Round-trip through the codec as the mesh would.
				for _, b := range msg.Encode() {
					set, err := DecodeRecordSet(b)
					if err != nil {
						t.Fatal(err)
					}
					delta, reassert := stores[i].Merge(set)
					broadcast(i, delta)
					broadcast(i, reassert)
				}
			}
			for range 300 {
				i := rng.IntN(len(stores))
				name := fmt.Sprintf("n%d.weft.local.", rng.IntN(4))
				addr := fmt.Sprintf("10.0.0.%d", 1+rng.IntN(3))
				switch op := rng.IntN(10); {
				case op < 4:
					set, err := stores[i].Add(name, ip(addr), "t")
					if err != nil {
						t.Fatal(err)
					}
					broadcast(i, set)
				case op < 6:
					broadcast(i, stores[i].Remove(Filter{Name: name}))
				case op < 7 && rng.IntN(8) == 0:
					// Restart: the router keeps its own live records
					// (persisted) and loses everything else, including
					// messages on their way to it.
					own := stores[i].Own()
					stores[i] = newTestStore(t, peers[i], clock)
					pending[i] = nil
					for _, r := range own {
						set, err := stores[i].Add(r.Name, r.Addr, r.Target)
						if err != nil {
							t.Fatal(err)
						}
						broadcast(i, set)
					}
				case op < 7:
					j := rng.IntN(len(stores))
					if j != i {
						pending[j] = append(pending[j], stores[i].Gossip())
					}
				default:
					deliver(i)
				}
			}
			// Drain, then rounds of full gossip until nobody learns anything.
			drain := func() {
				for busy := true; busy; {
					busy = false
					for i := range stores {
						for len(pending[i]) > 0 {
							busy = true
							deliver(i)
						}
					}
				}
			}
			drain()
			for round := 0; ; round++ {
				if round == 10 {
					t.Fatal("still changing after 10 rounds of full gossip")
				}
				changed := false
				for i := range stores {
					for j := range stores {
						if i != j {
							delta, reassert := stores[j].Merge(stores[i].Gossip())
							changed = changed || delta.Len() > 0 || reassert.Len() > 0
							broadcast(j, reassert)
						}
					}
				}
				drain()
				if !changed {
					break
				}
			}
			want := stores[0].Snapshot(true)
			if len(want) == 0 {
				t.Fatal("no records at all: the test exercises nothing")
			}
			for i, s := range stores[1:] {
				if got := s.Snapshot(true); !slices.Equal(got, want) {
					t.Fatalf("store %d differs from store 0:\n%v\n%v", i+1, got, want)
				}
			}
		})
	}
}
