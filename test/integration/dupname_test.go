package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/test/netns"
)

// TestDuplicatePeerName is issue 16's "a peer name shared by two hosts
// knocks both off": h2 runs with a copy of h1's state dir (so h1's peer
// name) and reaches h3, which holds h1. h3 refuses h2 with a reason that
// both h2 and h3 show in `weft status connections`, and keeps h1.
func TestDuplicatePeerName(t *testing.T) {
	t.Parallel()
	w := netns.NewWorld(t, 3)
	h1, h2, h3 := w.Hosts[0], w.Hosts[1], w.Hosts[2]
	h1.Launch(t)
	name, err := h1.PeerName()
	if err != nil {
		t.Fatal(err)
	}
	h1.Stop(t)
	db, err := os.ReadFile(filepath.Join(h1.StateDir, "weft.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h2.StateDir, "weft.db"), db, 0o600); err != nil {
		t.Fatal(err)
	}
	h1.Launch(t)
	h3.Launch(t, h1.PeerAddr())
	netns.Eventually(t, connectTimeout, "h3 connected to h1", func() error { return h3.EstablishedWith(h1) })
	h2.Launch(t, h3.PeerAddr())
	if n2, err := h2.PeerName(); err != nil || n2 != name {
		t.Fatalf("h2's peer name %q (%v), want h1's %q", n2, err, name)
	}
	refused := func(h *netns.Host, other *netns.Host) error {
		out := h.MustWeft(t, "status", "connections")
		for _, c := range netns.ParseConnections(out) {
			if c.Host() == other.Addr && strings.Contains(c.Line, "duplicate peer name") {
				return nil
			}
		}
		return fmt.Errorf("%s shows no duplicate-name refusal for %s:\n%s", h.Nick, other.Addr, out)
	}
	netns.Eventually(t, connectTimeout, "h2 shows it was refused", func() error { return refused(h2, h3) })
	netns.Eventually(t, connectTimeout, "h3 shows it refused h2", func() error { return refused(h3, h2) })
	// h1 keeps its connection through h2's retries.
	for range 6 {
		if err := h3.EstablishedWith(h1); err != nil {
			t.Fatal(err)
		}
		if err := h3.EstablishedWith(h2); err == nil {
			t.Fatal("h3 holds a connection to h2")
		}
		time.Sleep(500 * time.Millisecond)
	}
}
