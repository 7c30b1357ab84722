package integration

import (
	"strings"
	"testing"

	"github.com/weftnet/weft/test/netns"
)

// TestSourceGuard is issue 16's "a container can send with any source MAC
// or IP". Containers that weft addressed itself (IPAM) may send only with
// their ethweft's MAC and from the addresses weft gave them, to this host
// and across the mesh; one attached with an exact address is not guarded
// unless asked (--source-check), and one can opt out (--no-source-check).
// A partial detach takes the address out of the guard.
func TestSourceGuard(t *testing.T) {
	t.Parallel()
	const rng = "10.47.0.0/16"
	w := netns.NewWorld(t, 2)
	h1, h2 := w.Hosts[0], w.Hosts[1]
	h1.Launch(t, "--ipalloc-range", rng)
	h2.Launch(t, "--ipalloc-range", rng, h1.PeerAddr())
	netns.Eventually(t, connectTimeout, "h1 and h2 connected", func() error { return h1.EstablishedWith(h2) })

	auto := func(h *netns.Host, name string) *netns.Container {
		c := h.NewContainer(t, name)
		out := h.MustWeft(t, "attach", c.Target())
		c.IP = strings.TrimSpace(out)
		return c
	}
	c1, c2, far := auto(h1, "c1"), auto(h1, "c2"), auto(h2, "far")
	c1.WaitPing(t, c2.IP, pingTimeout)
	c1.WaitPing(t, far.IP, pingTimeout)

	// spoofFails adds addr to c's ethweft by hand and checks that pings
	// from it reach neither a local nor a remote container, while pings
	// from c's own address still do.
	spoofFails := func(c *netns.Container, addr string, want bool) {
		t.Helper()
		c.MustRun(t, "ip", "addr", "add", addr+"/16", "dev", "ethweft")
		defer c.Run("ip", "addr", "del", addr+"/16", "dev", "ethweft")
		for _, dst := range []*netns.Container{c2, far} {
			if dst == c {
				continue
			}
			r := c.Run("ping", "-n", "-c", "2", "-W", "1", "-I", addr, dst.IP)
			if r.OK() == want {
				t.Errorf("%s: ping %s from %s (not weft's): answered %v, want %v", c.Nick, dst.Nick, addr, r.OK(), !want)
			}
			if err := c.Ping(dst.IP, 0); err != nil {
				t.Errorf("%s: its own address no longer reaches %s: %v", c.Nick, dst.Nick, err)
			}
		}
	}
	spoofFails(c1, "10.47.200.1", true)

	// Another source MAC: nothing gets through, until the MAC is back.
	mac := strings.Fields(c1.MustRun(t, "cat", "/sys/class/net/ethweft/address"))[0]
	c1.MustRun(t, "ip", "link", "set", "ethweft", "address", "02:de:ad:be:ef:01")
	if err := c1.Ping(c2.IP, 0); err == nil {
		t.Error("c1 reached c2 under another MAC")
	}
	c1.MustRun(t, "ip", "link", "set", "ethweft", "address", mac)
	c1.MustRun(t, "ip", "neigh", "flush", "dev", "ethweft")
	c2.MustRun(t, "ip", "neigh", "flush", "dev", "ethweft")
	c1.WaitPing(t, c2.IP, pingTimeout)

	// An exact address: not guarded by default; guarded when asked.
	ex := h1.NewContainer(t, "ex")
	h1.MustWeft(t, "attach", "10.47.100.1/16", ex.Target())
	ex.IP = "10.47.100.1"
	ex.WaitPing(t, c2.IP, pingTimeout)
	spoofFails(ex, "10.47.200.2", false)
	h1.MustWeft(t, "attach", "--source-check", "10.47.100.1/16", ex.Target())
	spoofFails(ex, "10.47.200.2", true)

	// Opting out.
	h1.MustWeft(t, "attach", "--no-source-check", c1.Target())
	spoofFails(c1, "10.47.200.3", false)
	h1.MustWeft(t, "attach", "--source-check", c1.Target())

	// A second address, then detached: it leaves the guard.
	h1.MustWeft(t, "attach", "ip:10.47.150.1/16", c1.Target())
	if r := c1.Run("ping", "-n", "-c", "1", "-W", "1", "-I", "10.47.150.1", c2.IP); !r.OK() {
		t.Errorf("c1's second address does not reach c2: %v", r)
	}
	h1.MustWeft(t, "detach", "10.47.150.1/16", c1.Target())
	spoofFails(c1, "10.47.150.1", true)

	// Bad input.
	if r := h1.Weft("attach", "--source-check", "--no-source-check", c1.Target()); r.OK() || !strings.Contains(r.Stderr, "contradict") {
		t.Errorf("both flags: %v", r)
	}
	// An error names the operation and the target once (issue 18: they
	// used to repeat).
	missing := "netns:" + w.Prefix + "-missing"
	r := h1.Weft("attach", missing)
	t.Logf("attach of a missing namespace: %s", strings.TrimSpace(r.Stderr))
	if r.OK() || strings.Count(r.Stderr, "attach "+missing) != 1 {
		t.Errorf("attach of a missing namespace: %v", r)
	}
	if r = h1.Weft("detach", missing); r.OK() || strings.Count(r.Stderr, "detach "+missing) != 1 {
		t.Errorf("detach of a missing namespace: %v", r)
	}
}
