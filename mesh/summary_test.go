package mesh

import "testing"

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
