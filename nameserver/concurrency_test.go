package nameserver

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// TestStoreConcurrentUse runs lookups, queries, local changes, merges and
// snapshots at once; run with -race.
func TestStoreConcurrentUse(t *testing.T) {
	clock := newFakeClock()
	s, other := newTestStore(t, peerA, clock), newTestStore(t, peerB, clock)
	h, _ := newTestHandler(t, HandlerConfig{Store: s})
	for i := range 20 {
		mustAdd(t, other, fmt.Sprintf("o%d.weft.local.", i), fmt.Sprintf("10.33.0.%d", i+1), "")
	}
	remote := other.Gossip()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 200 {
				switch g {
				case 0:
					name := fmt.Sprintf("n%d.weft.local.", i%10)
					if _, err := s.Add(name, ip(fmt.Sprintf("10.32.0.%d", 1+i%5)), ""); err != nil {
						t.Error(err)
						return
					}
					s.Remove(Filter{Name: name})
				case 1:
					s.Merge(remote)
					s.PeerGone(peerB)
				case 2:
					h.ServeDNS(&fakeWriter{}, query(fmt.Sprintf("N%d.weft.local.", i%10), dns.TypeA))
				case 3:
					s.Snapshot(true)
					s.LookupAddr(nil, ip("10.32.0.1"))
					s.Gossip().Encode()
				}
			}
		})
	}
	wg.Wait()
}

func TestLookupNameAllocatesNothing(t *testing.T) {
	s := newTestStore(t, peerA, newFakeClock())
	for i := range 3 {
		mustAdd(t, s, "web.weft.local.", fmt.Sprintf("10.32.0.%d", i+1), "")
	}
	var buf [8]netip.Addr
	allocs := testing.AllocsPerRun(1000, func() {
		if len(s.LookupName(buf[:0], "web.weft.local.")) != 3 {
			t.Fatal("lookup failed")
		}
	})
	if allocs != 0 {
		t.Errorf("LookupName allocates %v times per call", allocs)
	}
}
