package mesh

import (
	"fmt"
	"slices"
	"testing"
)

func TestTopologySummary(t *testing.T) {
	self := signed(1, peerEntry{UID: 9, Version: 2})
	e1, e2 := signed(2, peerEntry{UID: 1, Version: 3}), signed(3, peerEntry{UID: 1, Version: 5})
	a, b := newTopology(&self), newTopology(&self)
	a.merge([]peerEntry{e1, e2})
	b.merge([]peerEntry{e2, e1})
	sa := a.summary()
	if sa.count != 3 {
		t.Fatalf("summary counts %d entries, want 3 (self and two peers)", sa.count)
	}
	if sb := b.summary(); sb != sa {
		t.Fatalf("same entries merged in another order: %+v and %+v", sa, sb)
	}
	// A placeholder (version 0) is never gossiped: it does not count.
	b.merge([]peerEntry{{Name: testIdentity(4).Name(), UID: 7}})
	if sb := b.summary(); sb != sa {
		t.Fatalf("a placeholder changed the summary: %+v and %+v", sa, sb)
	}
	// A newer version of one entry changes it.
	a.merge([]peerEntry{signed(2, peerEntry{UID: 1, Version: 4})})
	if a.summary() == sa {
		t.Fatal("a newer version left the summary unchanged")
	}
	got, err := decodeSummary(encodeSummary(sa))
	if err != nil || got != sa {
		t.Fatalf("decode(encode(%+v)) = %+v, %v", sa, got, err)
	}
	if _, err := decodeSummary(encodeSummary(sa)[:5]); err == nil {
		t.Fatal("a truncated summary decoded")
	}
}

func TestRelayedTo(t *testing.T) {
	self, c, x, y := testIdentity(1).Name(), testIdentity(2).Name(), testIdentity(3).Name(), testIdentity(4).Name()
	n := &Node{cfg: Config{Name: self}}
	nb := &conn{node: n, remote: features{Name: c, UID: 20}}
	changed := []peerEntry{
		{Name: self, UID: 10, Version: 2, Conns: []connEntry{{Peer: c}}}, // ours: always
		{Name: c, UID: 20, Version: 3},                                   // c's own: it has it
		{Name: c, UID: 21, Version: 9},                                   // another router with c's name: c must see it
		{Name: x, UID: 30, Version: 4, Conns: []connEntry{{Peer: c}}},    // x sends it to c itself
		{Name: y, UID: 40, Version: 5, Conns: []connEntry{{Peer: x}}},    // y is not c's neighbour: relay
	}
	var got []string
	for _, e := range relayedTo(nb, changed) {
		got = append(got, fmt.Sprintf("%v/%d", e.Name, e.UID))
	}
	want := []string{fmt.Sprintf("%v/10", self), fmt.Sprintf("%v/21", c), fmt.Sprintf("%v/40", y)}
	if !slices.Equal(got, want) {
		t.Fatalf("relayed %v, want %v", got, want)
	}
}
