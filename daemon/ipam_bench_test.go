package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/weftnet/weft/ipam"
	"github.com/weftnet/weft/mesh"
	"github.com/weftnet/weft/state"
)

type loneTransport struct{}

func (loneTransport) Broadcast(mesh.GossipData)           {}
func (loneTransport) Unicast(mesh.PeerName, []byte) error { return nil }

type lonePeers struct{ self mesh.PeerName }

func (p lonePeers) ReachablePeers() []mesh.PeerName { return []mesh.PeerName{p.self} }
func (lonePeers) PeerNickName(mesh.PeerName) string { return "" }

// BenchmarkAllocatePersisted is an automatic allocation as the router makes
// it when it owns free space: the allocator's work plus the bbolt
// transaction that persists it. It reports the 50th and 99th percentile.
func BenchmarkAllocatePersisted(b *testing.B) {
	st, err := state.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	self := mesh.PeerName(0x7a0000000001)
	a, err := ipam.New(ipam.Config{Self: self, Range: netip.MustParsePrefix("10.32.0.0/12"),
		Transport: loneTransport{}, Peers: lonePeers{self}, Persister: ipamStore{st}})
	if err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if _, err := a.Allocate(ctx, fmt.Sprintf("netns:c%d", i), netip.Prefix{}); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
