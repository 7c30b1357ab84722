package daemon

import (
	"net/netip"
	"testing"
	"time"

	"github.com/weftnet/weft/router/routertest"
	"github.com/weftnet/weft/state"
)

// A state directory from before peer names came from identity keys (a
// name, no key) gets a key and the key's name at the next start, and the
// address ranges of the old name are taken over: the addresses it handed
// out stay its own and are not handed out again.
func TestFormerPeerNameRangesTakenOver(t *testing.T) {
	nw := routertest.NewNetwork(21)
	dir, host := t.TempDir(), newFakeHost()
	mod := func(c *Config) { c.IPAllocRange = netip.MustParsePrefix("10.41.0.0/24") }
	r := startRouterWith(t, nw, dir, host, 7101, mod)
	if got := attachAddrs(t, r, "netns:c1"); got[0] != "10.41.0.1/24" {
		t.Fatalf("first address %v", got)
	}
	oldName := r.report(t).Router.Name
	r.stop()

	// Make the state look like an older router's: the name stays, the
	// key is gone.
	st, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetIdentity(nil); err != nil {
		t.Fatal(err)
	}
	st.Close()

	r = startRouterWith(t, nw, dir, host, 7101, mod)
	rep := r.report(t)
	if rep.Router.Name == oldName {
		t.Fatalf("the name %s did not change to the new key's", oldName)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		peers := r.report(t).IPAM.Pools[0].Peers
		if len(peers) == 1 && peers[0].Self && peers[0].Owned == 256 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old name's ranges were not taken over: %+v", peers)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := attachAddrs(t, r, "netns:c1"); got[0] != "10.41.0.1/24" {
		t.Fatalf("c1 attached again got %v, want its address back", got)
	}
	if got := attachAddrs(t, r, "netns:c2"); got[0] == "10.41.0.1/24" {
		t.Fatalf("c2 got c1's address %v", got)
	}
	// Done once: the next start keeps the name and has nothing to take.
	r.stop()
	r = startRouterWith(t, nw, dir, host, 7101, mod)
	if again := r.report(t).Router.Name; again != rep.Router.Name {
		t.Fatalf("name changed again: %s -> %s", rep.Router.Name, again)
	}
}
