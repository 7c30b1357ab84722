package integration

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/test/netns"
)

// TestForget: h2 is pointed at h1; `weft forget` on h2 closes the
// connection, and neither side connects again.
func TestForget(t *testing.T) {
	t.Parallel()
	w := netns.NewWorld(t, 2)
	h1, h2 := w.Hosts[0], w.Hosts[1]
	h1.Launch(t)
	h2.Launch(t, h1.PeerAddr())
	netns.Eventually(t, connectTimeout, "h2 connected to h1", func() error { return h2.EstablishedWith(h1) })
	netns.Eventually(t, connectTimeout, "h1 connected to h2", func() error { return h1.EstablishedWith(h2) })

	h2.MustWeft(t, "forget", h1.PeerAddr())
	gone := func(a, b *netns.Host) func() error {
		return func() error {
			with, err := a.ConnectionsWith(b)
			if err != nil {
				return err
			}
			if len(with) > 0 {
				return fmt.Errorf("%s still has connections with %s: %+v", a.Nick, b.Nick, with)
			}
			return nil
		}
	}
	netns.Eventually(t, connectTimeout, "connection closed on h2", gone(h2, h1))
	netns.Eventually(t, connectTimeout, "connection closed on h1", gone(h1, h2))
	// Not retried, not even after several backoff periods.
	netns.Consistently(t, 8*time.Second, "forgotten peer stays forgotten", func() error {
		if err := gone(h2, h1)(); err != nil {
			return err
		}
		return gone(h1, h2)()
	})
	rep, err := h2.Report()
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range rep.Router.Targets {
		if strings.HasPrefix(target, h1.Addr) {
			t.Errorf("h2 still targets %s after forget: %v", h1.Addr, rep.Router.Targets)
		}
	}
}

// TestConnLimit: h1 accepts one connection (--conn-limit 1); h2 gets it,
// h3 is refused and the limit holds.
func TestConnLimit(t *testing.T) {
	t.Parallel()
	w := netns.NewWorld(t, 3)
	h1, h2, h3 := w.Hosts[0], w.Hosts[1], w.Hosts[2]
	h1.Launch(t, "--conn-limit", "1")
	h2.Launch(t, h1.PeerAddr())
	netns.Eventually(t, connectTimeout, "h2 connected to h1", func() error { return h2.EstablishedWith(h1) })

	h3.Launch(t, h1.PeerAddr())
	// h3 tries: its connection to h1 shows up, but never gets established.
	netns.Eventually(t, connectTimeout, "h3 tries h1", func() error {
		with, err := h3.ConnectionsWith(h1)
		if err != nil {
			return err
		}
		if len(with) == 0 {
			return fmt.Errorf("h3 shows no connection to h1")
		}
		return nil
	})
	netns.Consistently(t, 8*time.Second, "h1 keeps to its limit", func() error {
		if err := h3.EstablishedWith(h1); err == nil {
			return fmt.Errorf("h3 got a connection to h1 beyond the limit")
		}
		conns, err := h1.Connections()
		if err != nil {
			return err
		}
		n := 0
		for _, c := range conns {
			if c.State == "established" {
				n++
			}
		}
		if n > 1 {
			return fmt.Errorf("h1 has %d established connections, limit 1: %+v", n, conns)
		}
		return h2.EstablishedWith(h1)
	})
}
