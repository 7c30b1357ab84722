package mesh

import (
	"errors"
	"math"
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
		signed(1, peerEntry{NickName: "one", UID: 11, Version: 3, Conns: []connEntry{
			{Peer: 2, Addr: netip.MustParseAddrPort("192.0.2.1:6783"), Outbound: true, Established: true},
			{Peer: 3, Addr: netip.MustParseAddrPort("[2001:db8::1]:40000")},
			{Peer: 4},
		}}),
		signed(2, peerEntry{UID: 22, Version: 1}),
	}
	b := encodeTopologyMessage(in)
	got, err := decodeTopology(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, in) {
		t.Fatalf("got %+v\nwant %+v", got, in)
	}
	for i := range got {
		if err := verifyEntry(&got[i]); err != nil {
			t.Fatalf("entry %d after the round trip: %v", i, err)
		}
	}
	for i := 0; i < len(b); i++ {
		if _, err := decodeTopology(b[:i]); err == nil {
			t.Errorf("truncated at %d: no error", i)
		}
	}
	if _, err := decodeTopology(append(b, 0)); err == nil {
		t.Error("trailing byte accepted")
	}
	if _, err := decodeTopology(encodeTopologyMessage([]peerEntry{signed(1, peerEntry{})})); err == nil {
		t.Error("zero UID accepted")
	}
}

// The whole topology goes out in bounded messages: 65,540 entries (more
// than a 16-bit count) make messages of at most maxEntriesPerMessage
// entries that all decode, and a message claiming more is refused.
func TestTopologySplitIntoBoundedMessages(t *testing.T) {
	e := signed(1, peerEntry{UID: 1, Version: 1})
	in := make([]peerEntry, 65540)
	for i := range in {
		in[i] = e
	}
	msgs := encodeTopology(in)
	if want := (len(in) + maxEntriesPerMessage - 1) / maxEntriesPerMessage; len(msgs) != want {
		t.Fatalf("%d messages, want %d", len(msgs), want)
	}
	total := 0
	for i, m := range msgs {
		got, err := decodeTopology(m)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		total += len(got)
	}
	if total != len(in) {
		t.Fatalf("%d entries decoded, want %d", total, len(in))
	}
	big := encodeTopologyMessage(in[:maxEntriesPerMessage+1])
	if _, err := decodeTopology(big); err == nil {
		t.Fatal("a message of more than maxEntriesPerMessage entries decoded")
	}
}

// Only a peer's own key can sign its entry: an entry under another's name,
// a changed entry, and a name that is not the key's are refused.
func TestVerifyEntry(t *testing.T) {
	good := signed(1, peerEntry{NickName: "one", UID: 1, Version: 5, Conns: []connEntry{{Peer: 2, Established: true}}})
	if err := verifyEntry(&good); err != nil {
		t.Fatalf("good entry: %v", err)
	}
	// A member (identity 9) speaks for peer 1 with its own key.
	forged := good
	forged.Version = 1 << 63
	signEntry(testIdentity(9), &forged)
	if err := verifyEntry(&forged); !errors.Is(err, ErrNameNotKey) {
		t.Fatalf("entry signed by another key: %v, want ErrNameNotKey", err)
	}
	// ... or keeps peer 1's key and signature but changes the entry.
	for name, edit := range map[string]func(*peerEntry){
		"version":  func(e *peerEntry) { e.Version = math.MaxUint64 },
		"nickname": func(e *peerEntry) { e.NickName = "evil" },
		"conns":    func(e *peerEntry) { e.Conns = nil },
		"uid":      func(e *peerEntry) { e.UID++ },
		"sig":      func(e *peerEntry) { e.Sig = slices.Clone(e.Sig); e.Sig[0] ^= 1 },
	} {
		e := good
		edit(&e)
		if err := verifyEntry(&e); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s changed: %v, want ErrBadSignature", name, err)
		}
	}
}

// Our own version saturates instead of wrapping: an old incarnation at the
// highest version cannot send us back to 0.
func TestSelfVersionFloorSaturates(t *testing.T) {
	self := entry(1, 100, 5)
	topo := newTopology(&self)
	if _, floor := topo.merge([]peerEntry{entry(1, 99, math.MaxUint64)}); floor != math.MaxUint64 {
		t.Fatalf("floor %d, want %d", floor, uint64(math.MaxUint64))
	}
}
