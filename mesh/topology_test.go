package mesh

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"
)

func entry(name PeerName, uid, version uint64, conns ...PeerName) peerEntry {
	e := peerEntry{Name: name, NickName: "n" + name.String(), UID: uid, Version: version}
	for _, c := range conns {
		e.Conns = append(e.Conns, connEntry{Peer: c, Addr: netip.MustParseAddrPort("10.0.0.1:6783"), Outbound: true, Established: true})
	}
	return e
}

func TestTopologyMerge(t *testing.T) {
	self := entry(1, 100, 5, 2)
	topo := newTopology(&self)

	delta, floor := topo.merge([]peerEntry{entry(2, 200, 3, 1, 3), entry(3, 300, 1, 2)})
	if !slices.Equal(delta, []PeerName{2, 3}) || floor != 0 {
		t.Fatalf("first merge: delta %v floor %d", delta, floor)
	}
	// The same and older versions change nothing.
	delta, _ = topo.merge([]peerEntry{entry(2, 200, 3, 1), entry(2, 200, 2, 1)})
	if len(delta) != 0 || len(topo.peers[2].Conns) != 2 {
		t.Fatalf("stale merge: delta %v, entry %+v", delta, topo.peers[2])
	}
	// A newer version replaces.
	delta, _ = topo.merge([]peerEntry{entry(2, 200, 4, 1)})
	if !slices.Equal(delta, []PeerName{2}) || len(topo.peers[2].Conns) != 1 {
		t.Fatalf("newer merge: delta %v, entry %+v", delta, topo.peers[2])
	}
	// A restarted peer (new UID) with a lower version loses until it bumps
	// its version above its old incarnation, then replaces it.
	delta, _ = topo.merge([]peerEntry{entry(2, 201, 1, 1)})
	if len(delta) != 0 || topo.peers[2].UID != 200 {
		t.Fatalf("restart at low version replaced: %+v", topo.peers[2])
	}
	delta, _ = topo.merge([]peerEntry{entry(2, 201, 5, 1)})
	if !slices.Equal(delta, []PeerName{2}) || topo.peers[2].UID != 201 {
		t.Fatalf("restart at higher version: %+v", topo.peers[2])
	}
	// Equal versions, different UIDs: the higher UID wins everywhere.
	delta, _ = topo.merge([]peerEntry{entry(2, 199, 5, 1)})
	if len(delta) != 0 {
		t.Fatal("lower UID at equal version won")
	}
	// Entries about ourselves are never taken; an older incarnation at
	// our version or above asks us to bump.
	delta, floor = topo.merge([]peerEntry{entry(1, 99, 9)})
	if len(delta) != 0 || floor != 10 || topo.peers[1].UID != 100 {
		t.Fatalf("self merge: delta %v floor %d", delta, floor)
	}
	if _, floor = topo.merge([]peerEntry{entry(1, 99, 2)}); floor != 0 {
		t.Fatalf("old self with lower version: floor %d", floor)
	}
}

func TestTopologyMergeDoesNotAlias(t *testing.T) {
	self := entry(1, 1, 1)
	topo := newTopology(&self)
	in := []peerEntry{entry(2, 2, 1, 1)}
	topo.merge(in)
	in[0].Conns[0].Peer = 9
	if topo.peers[2].Conns[0].Peer != 1 {
		t.Fatal("merge kept a reference to the input")
	}
}

func TestTopologyGC(t *testing.T) {
	self := entry(1, 1, 1, 2)
	topo := newTopology(&self)
	// 1-2-3 reachable; 4-5 an island; 6 known to nobody.
	topo.merge([]peerEntry{entry(2, 2, 1, 1, 3), entry(3, 3, 1, 2), entry(4, 4, 1, 5), entry(5, 5, 1, 4), entry(6, 6, 1)})
	gone := topo.gc()
	if !slices.Equal(gone, []PeerName{4, 5, 6}) {
		t.Fatalf("gone = %v", gone)
	}
	if len(topo.peers) != 3 {
		t.Fatalf("left %d peers", len(topo.peers))
	}
	// 2 drops its link to 3: 3 is unreachable.
	topo.merge([]peerEntry{entry(2, 2, 2, 1)})
	if gone := topo.gc(); !slices.Equal(gone, []PeerName{3}) {
		t.Fatalf("gone = %v", gone)
	}
}

func TestTopologyEncoding(t *testing.T) {
	in := []peerEntry{
		{Name: 1, NickName: "one", UID: 11, Version: 3, Conns: []connEntry{
			{Peer: 2, Addr: netip.MustParseAddrPort("192.0.2.1:6783"), Outbound: true, Established: true},
			{Peer: 3, Addr: netip.MustParseAddrPort("[2001:db8::1]:40000")},
			{Peer: 4},
		}},
		{Name: 2, UID: 22, Version: 1},
	}
	got, err := decodeTopology(encodeTopology(in))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("got %+v\nwant %+v", got, in)
	}
	b := encodeTopology(in)
	for i := 0; i < len(b); i++ {
		if _, err := decodeTopology(b[:i]); err == nil {
			t.Errorf("truncated at %d: no error", i)
		}
	}
	if _, err := decodeTopology(append(b, 0)); err == nil {
		t.Error("trailing byte accepted")
	}
	if _, err := decodeTopology(encodeTopology([]peerEntry{{Name: 1}})); err == nil {
		t.Error("zero UID accepted")
	}
}
