package daemon

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/weftnet/weft/mesh"
	"github.com/weftnet/weft/nameserver"
)

// TestDNSBroadcastForeignRecord (issue 16): a DNS broadcast whose source is
// B but that carries a tombstone of A's record, built from the wire format,
// is refused whole; the same record in B's own broadcast of its records is
// merged.
func TestDNSBroadcastForeignRecord(t *testing.T) {
	const peerA, peerB, self mesh.PeerName = 0x0a0000000001, 0x0a0000000002, 0x0a0000000003
	store, err := nameserver.NewStore(nameserver.StoreConfig{Self: self})
	if err != nil {
		t.Fatal(err)
	}
	g := &dnsGossiper{store: store}
	x := nameserver.Record{Name: "x.weft.local.", Addr: netip.MustParseAddr("10.32.0.1"), Owner: peerA, Version: 1}
	if _, err := g.OnGossipBroadcast(peerA, nameserver.NewRecordSet(x).Encode()[0]); err != nil {
		t.Fatalf("A's own broadcast: %v", err)
	}
	forged := x
	forged.Version, forged.Tombstone = 2, true
	mine := nameserver.Record{Name: "b.weft.local.", Addr: netip.MustParseAddr("10.32.0.2"), Owner: peerB, Version: 1}
	msg := nameserver.NewRecordSet(forged, mine).Encode()[0]
	if d, err := g.OnGossipBroadcast(peerB, msg); !errors.Is(err, nameserver.ErrForeignRecord) || d != nil {
		t.Fatalf("B's broadcast with A's record: delta %v, err %v", d, err)
	}
	if got := store.LookupName(nil, x.Name); len(got) != 1 {
		t.Fatalf("A's record deleted by B's broadcast: %v", got)
	}
	if got := store.LookupName(nil, mine.Name); len(got) != 0 {
		t.Fatalf("part of a refused broadcast merged: %v", got)
	}
}
