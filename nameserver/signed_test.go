package nameserver

import (
	"crypto/ed25519"
	"testing"

	"github.com/weftnet/weft/mesh"
)

// testKeys holds one identity key per test peer, as the mesh would know
// them.
type testKeys map[mesh.PeerName]ed25519.PrivateKey

func newTestKeys(peers ...mesh.PeerName) testKeys {
	k := testKeys{}
	for _, p := range peers {
		seed := make([]byte, ed25519.SeedSize)
		p.Put(seed)
		k[p] = ed25519.NewKeyFromSeed(seed)
	}
	return k
}

func (k testKeys) sign(p mesh.PeerName, msg []byte) []byte {
	return ed25519.Sign(k[p], append([]byte(SignatureContext+"\x00"), msg...))
}

func (k testKeys) verify(owner mesh.PeerName, msg, sig []byte) bool {
	priv, ok := k[owner]
	return ok && len(sig) == ed25519.SignatureSize &&
		ed25519.Verify(priv.Public().(ed25519.PublicKey), append([]byte(SignatureContext+"\x00"), msg...), sig)
}

// newSignedStore is a store that signs its records with self's key and
// checks received ones against keys, as the daemon wires it.
func newSignedStore(t *testing.T, self mesh.PeerName, clock *fakeClock, keys testKeys) *Store {
	t.Helper()
	s, err := NewStore(StoreConfig{Self: self, Now: clock.Now,
		Sign:   func(msg []byte) []byte { return keys.sign(self, msg) },
		Verify: keys.verify})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// With signed records only a record's owner can make or change it: a
// member (C) cannot remove, repoint, pin or add records in A's name, nor
// change a signed record of A's, on B's store or on A's own; A's real
// changes still go through.
func TestSignedRecordsOnlyOwnerChanges(t *testing.T) {
	clock := newFakeClock()
	keys := newTestKeys(peerA, peerB, peerC)
	a, b := newSignedStore(t, peerA, clock, keys), newSignedStore(t, peerB, clock, keys)
	set := mustAdd(t, a, "x.weft.local.", "10.32.0.1", "netns:c1")
	if delta, _ := b.Merge(fromWire(t, set.Records()...)); delta.Len() != 1 {
		t.Fatalf("B did not take A's signed record: %v", delta.Records())
	}
	x := set.Records()[0]
	signedByC := func(r Record) Record {
		r.Sig = keys.sign(peerC, r.signedBytes())
		return r
	}
	tomb := x
	tomb.Version, tomb.Tombstone = x.Version+1, true
	repoint := x
	repoint.Addr, repoint.Version = ip("10.32.0.66"), 1
	pinned := x
	pinned.Version = VersionCeiling(clock.Now(), DefaultVersionAhead)
	added := Record{Name: "bank.weft.local.", Addr: ip("10.32.0.66"), Owner: peerA, Version: 1}
	keptSig := tomb
	keptSig.Sig = x.Sig // A's signature, over another version
	forged := []Record{signedByC(tomb), signedByC(repoint), signedByC(pinned), signedByC(added), keptSig,
		{Name: "y.weft.local.", Addr: ip("10.32.0.9"), Owner: peerA, Version: 1}} // unsigned
	for i, f := range forged {
		if delta, _ := b.Merge(fromWire(t, f)); delta.Len() != 0 {
			t.Errorf("forgery %d (%v) changed B: %v", i, f, delta.Records())
		}
		if delta, reassert := a.Merge(fromWire(t, f)); delta.Len()+reassert.Len() != 0 {
			t.Errorf("forgery %d (%v) changed A: delta %v, reassert %v", i, f, delta.Records(), reassert.Records())
		}
	}
	if got := b.Refused(); got != uint64(len(forged)) {
		t.Errorf("B refused %d records, want %d", got, len(forged))
	}
	if got := lookup(b, "x.weft.local."); len(got) != 1 || got[0] != "10.32.0.1" {
		t.Fatalf("B resolves x to %v after the forgeries", got)
	}
	if got := lookup(b, "bank.weft.local."); len(got) != 0 {
		t.Fatalf("B resolves a name added in A's name: %v", got)
	}
	// A's own removal goes through.
	rm := a.Remove(Filter{Name: "x.weft.local."})
	if delta, _ := b.Merge(fromWire(t, rm.Records()...)); delta.Len() != 1 || len(lookup(b, "x.weft.local.")) != 0 {
		t.Fatalf("A's own removal: delta %v, lookup %v", delta.Records(), lookup(b, "x.weft.local."))
	}
}
