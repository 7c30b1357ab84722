package integration

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weftnet/weft/test/netns"
)

// ipamRange is small on purpose: three hosts share 62 usable addresses, so
// the test can run a host out of space and see rmpeer hand a dead host's
// range to the others.
const ipamRange = "10.40.0.0/26"

// attachAuto attaches c with `weft attach [ARGS...] netns:NAME` (no address:
// IPAM allocates) and returns the address printed.
func attachAuto(t testing.TB, c *netns.Container, args ...string) string {
	t.Helper()
	out := strings.TrimSpace(c.Host.MustWeft(t, append(append([]string{"attach"}, args...), c.Target())...))
	if _, err := netip.ParseAddr(out); err != nil {
		t.Fatalf("%s: weft attach printed %q, want one address", c.Nick, out)
	}
	c.IP = out
	return out
}

// ipamView returns `weft status ipam` of h.
func ipamView(t testing.TB, h *netns.Host) string {
	t.Helper()
	return h.MustWeft(t, "status", "ipam")
}

// mustFail runs weft on h, expects exit 1 with one line on stderr that
// contains want, and returns that line.
func mustFail(t *testing.T, h *netns.Host, want string, args ...string) {
	t.Helper()
	r := h.Weft(args...)
	if r.OK() || r.ExitCode != 1 {
		t.Fatalf("%s: weft %s: want exit 1, got %v", h.Nick, strings.Join(args, " "), r)
	}
	line := strings.TrimSpace(r.Stderr)
	if strings.Count(line, "\n") > 0 || !strings.Contains(line, want) || strings.Contains(line, "goroutine") {
		t.Fatalf("%s: weft %s: stderr %q, want one line containing %q", h.Nick, strings.Join(args, " "), line, want)
	}
}

// TestIPAM runs the IPAM checks on one world of three hosts: concurrent
// automatic attaches on every host, a restart, bad input, and rmpeer of a
// stopped host. The subtests share the world and run in order.
func TestIPAM(t *testing.T) {
	t.Parallel()
	w := netns.NewWorld(t, 3)
	h1, h2, h3 := w.Hosts[0], w.Hosts[1], w.Hosts[2]
	rng := netip.MustParsePrefix(ipamRange)
	per := map[*netns.Host][]*netns.Container{}
	held := map[string]string{} // address -> container

	// h1 allocates alone at once; h2 attaches right after its launch,
	// before it is connected: it must not start a range of its own (that
	// would clash with h1's) but wait for h1's.
	h1.Launch(t, "--ipalloc-range", ipamRange)
	first := attachAuto(t, h1.NewContainer(t, "first"))
	held[first] = "h1/first"
	w.Block(t, h1, h2)
	h2.Launch(t, "--ipalloc-range", ipamRange, h1.PeerAddr())
	ec := h2.NewContainer(t, "early")
	res := make(chan netns.Result, 1)
	go func() { res <- h2.Weft("attach", ec.Target()) }()
	time.Sleep(time.Second)
	if v := ipamView(t, h2); !strings.Contains(v, "waiting for peers") {
		t.Errorf("h2, told to join h1 and cut off from it, while an attach waits:\n%s", v)
	}
	w.Unblock(t, h1, h2)
	r := <-res
	early := strings.TrimSpace(r.Stdout)
	if !r.OK() {
		t.Fatalf("h2: attach while joining: %v", r)
	}
	if early == first {
		t.Fatalf("h2 attached before it was connected got %s, which h1 holds: it seeded a range of its own", early)
	}
	held[early] = "h2/early"
	h3.Launch(t, "--ipalloc-range", ipamRange, h1.PeerAddr())
	for _, pair := range [][2]*netns.Host{{h1, h2}, {h1, h3}, {h2, h3}} {
		netns.Eventually(t, connectTimeout, pair[0].Nick+" connected to "+pair[1].Nick,
			func() error { return pair[0].EstablishedWith(pair[1]) })
	}

	t.Run("concurrent attaches", func(t *testing.T) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, h := range w.Hosts {
			for i := range 8 {
				c := h.NewContainer(t, fmt.Sprintf("%s-a%d", h.Nick, i))
				per[h] = append(per[h], c)
				wg.Add(1)
				go func() {
					defer wg.Done()
					r := h.Weft("attach", c.Target())
					mu.Lock()
					defer mu.Unlock()
					if !r.OK() {
						t.Errorf("%s: attach %s: %v", h.Nick, c.Nick, r)
						return
					}
					c.IP = strings.TrimSpace(r.Stdout)
				}()
			}
		}
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		for _, h := range w.Hosts {
			for _, c := range per[h] {
				a, err := netip.ParseAddr(c.IP)
				if err != nil || !rng.Contains(a) {
					t.Fatalf("%s/%s got %q, want an address in %s", h.Nick, c.Nick, c.IP, rng)
				}
				if other, dup := held[c.IP]; dup {
					t.Fatalf("%s given to both %s and %s/%s", c.IP, other, h.Nick, c.Nick)
				}
				held[c.IP] = h.Nick + "/" + c.Nick
			}
		}
		if len(held) != 26 {
			t.Fatalf("%d distinct addresses, want 24 and the 2 attached first", len(held))
		}
		// Each container reaches one container on each other host, and the
		// first of each host reaches every container.
		for i, h := range w.Hosts {
			for j, o := range w.Hosts {
				if i == j {
					continue
				}
				for k := range per[h] {
					per[h][k].WaitPing(t, per[o][(k+i)%8].IP, pingTimeout)
				}
			}
		}
		for _, h := range w.Hosts {
			v := ipamView(t, h)
			if !strings.Contains(v, "state: ready") || strings.Count(v, "% of") == 0 && strings.Count(v, "addresses (") < 3 {
				t.Errorf("%s: weft status ipam:\n%s", h.Nick, v)
			}
		}
	})

	t.Run("same target keeps its address", func(t *testing.T) {
		c := per[h2][0]
		if got := attachAuto(t, c); got != c.IP {
			t.Fatalf("attaching %s again gave %s, want %s", c.Nick, got, c.IP)
		}
	})

	t.Run("restart keeps addresses", func(t *testing.T) {
		before := h2.MustWeft(t, "ps")
		h2.Stop(t)
		h2.Launch(t, "--ipalloc-range", ipamRange, h1.PeerAddr())
		netns.Eventually(t, connectTimeout, "h2 reconnected", func() error { return h2.EstablishedWith(h1) })
		if after := h2.MustWeft(t, "ps"); after != before {
			t.Fatalf("weft ps changed across a restart:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		c := h2.NewContainer(t, "fresh")
		ip := attachAuto(t, c)
		if who, dup := held[ip]; dup {
			t.Fatalf("after the restart %s got %s, which %s holds", c.Nick, ip, who)
		}
		held[ip] = "h2/fresh"
		per[h2][0].WaitPing(t, per[h1][0].IP, pingTimeout)
		c.WaitPing(t, per[h3][0].IP, pingTimeout)
	})

	t.Run("bad input", func(t *testing.T) {
		c := h1.NewContainer(t, "bad")
		mustFail(t, h1, "not inside the IP allocation range", "attach", "net:10.99.0.0/24", c.Target())
		mustFail(t, h1, "subnet too small", "attach", "net:10.40.0.8/31", c.Target())
		taken := per[h3][1].IP
		mustFail(t, h1, "already in use by "+per[h3][1].Target(), "attach", "ip:"+taken+"/26", c.Target())
		mustFail(t, h1, "no peer is named", "rmpeer", "nosuchpeer")
		mustFail(t, h1, "owns no addresses", "rmpeer", "7a:00:00:00:00:99")
		// The router still serves, and the failed attaches left nothing held.
		if v := h1.MustWeft(t, "ps"); strings.Contains(v, c.Name) {
			t.Fatalf("a refused attach left %s attached:\n%s", c.Name, v)
		}
		// An address outside the range is recorded as given.
		h1.MustWeft(t, "attach", "10.99.0.7/24", c.Target())
	})

	t.Run("rmpeer of a stopped host", func(t *testing.T) {
		name3, err := h3.PeerName()
		if err != nil {
			t.Fatal(err)
		}
		h3.Stop(t)
		netns.Eventually(t, rerouteTimeout, "h1 sees h3 unreachable", func() error {
			if v := ipamView(t, h1); !strings.Contains(v, "unreachable") {
				return fmt.Errorf("no unreachable peer in:\n%s", v)
			}
			return nil
		})
		// Fill what h1 and h2 own; then the only free space is h3's.
		var filled int
		for i := 0; ; i++ {
			c := h1.NewContainer(t, fmt.Sprintf("f%d", i))
			r := h1.Weft("attach", c.Target())
			if !r.OK() {
				if !strings.Contains(r.Stderr, "unreachable") || !strings.Contains(r.Stderr, "rmpeer") {
					t.Fatalf("attach with only h3's space left: %v", r)
				}
				break
			}
			ip := strings.TrimSpace(r.Stdout)
			if who, dup := held[ip]; dup {
				t.Fatalf("%s handed out twice (%s)", ip, who)
			}
			held[ip] = "h1/" + c.Nick
			if filled++; filled > 64 {
				t.Fatal("the range never filled up")
			}
		}
		// h3 is gone for good: what its containers held is free again.
		for ip, who := range held {
			if strings.HasPrefix(who, "h3/") {
				delete(held, ip)
			}
		}
		out := h1.MustWeft(t, "rmpeer", name3)
		if !strings.Contains(out, "addresses taken over from "+name3) {
			t.Fatalf("rmpeer said %q", out)
		}
		c := h1.NewContainer(t, "afterrm")
		ip := attachAuto(t, c)
		if who, dup := held[ip]; dup {
			t.Fatalf("after rmpeer %s got %s, which %s holds", c.Nick, ip, who)
		}
		c.WaitPing(t, per[h2][0].IP, pingTimeout)
		if v := ipamView(t, h2); strings.Contains(v, "\n  "+name3) {
			t.Errorf("h2 still lists h3 as an owner after rmpeer:\n%s", v)
		}
	})

	t.Run("reset hands the ranges over", func(t *testing.T) {
		name2, err := h2.PeerName()
		if err != nil {
			t.Fatal(err)
		}
		h2.MustWeft(t, "reset")
		netns.Eventually(t, 15*time.Second, "h1 owns h2's ranges", func() error {
			if v := ipamView(t, h1); strings.Contains(v, "\n  "+name2) {
				return fmt.Errorf("h2 still owns ranges after its reset:\n%s", v)
			}
			return nil
		})
		// h2's containers went with the reset: their addresses are free.
		c := h1.NewContainer(t, "afterreset")
		attachAuto(t, c)
	})
}

// TestIPAMSeparateSeeds launches two hosts apart: each seeds the range and
// allocates the same low addresses. Joined, they stay connected, the
// younger side reports the conflicts, and new allocations on either side
// collide with nothing.
func TestIPAMSeparateSeeds(t *testing.T) {
	t.Parallel()
	w := netns.NewWorld(t, 3)
	h1, h2, h3 := w.Hosts[0], w.Hosts[1], w.Hosts[2]
	h1.Launch(t, "--ipalloc-range", ipamRange)
	var c1, c2 []*netns.Container
	for i := range 2 {
		c := h1.NewContainer(t, fmt.Sprintf("x%d", i))
		attachAuto(t, c)
		c1 = append(c1, c)
	}
	time.Sleep(10 * time.Millisecond) // h2's seed is younger
	h2.Launch(t, "--ipalloc-range", ipamRange)
	for i := range 3 {
		c := h2.NewContainer(t, fmt.Sprintf("y%d", i))
		attachAuto(t, c)
		c2 = append(c2, c)
	}
	if c1[0].IP != c2[0].IP {
		t.Fatalf("apart, both should start at the lowest address: %s and %s", c1[0].IP, c2[0].IP)
	}
	h2.MustWeft(t, "connect", h1.PeerAddr())
	netns.Eventually(t, connectTimeout, "h2 connected to h1", func() error { return h2.EstablishedWith(h1) })
	netns.Eventually(t, 20*time.Second, "h2 reports the conflicts", func() error {
		v := ipamView(t, h2)
		if n := strings.Count(v, "conflict:"); n != 2 {
			return fmt.Errorf("%d conflicts, want 2 (%s and %s held on both):\n%s", n, c1[0].IP, c1[1].IP, v)
		}
		return nil
	})
	held := map[string]bool{}
	for _, c := range append(c1, c2...) {
		held[c.IP] = true
	}
	// y2's address was not taken on h1: h2 keeps it, and owns it now.
	for _, h := range []*netns.Host{h1, h2, h1, h2} {
		c := h.NewContainer(t, fmt.Sprintf("%s-n%d", h.Nick, len(held)))
		ip := attachAuto(t, c)
		if held[ip] {
			t.Fatalf("%s: new attach after the meeting got %s, which is held already", h.Nick, ip)
		}
		held[ip] = true
	}
	// The connection stayed up the whole time.
	if err := h2.EstablishedWith(h1); err != nil {
		t.Fatal(err)
	}
	c2[2].WaitPing(t, c1[0].IP, pingTimeout)

	t.Run("different range is refused on both sides", func(t *testing.T) {
		h3.Launch(t, "--ipalloc-range", "10.50.0.0/16", h1.PeerAddr())
		want := "differs from the peer's"
		for _, h := range []*netns.Host{h1, h3} {
			netns.Eventually(t, connectTimeout, h.Nick+" shows the refusal", func() error {
				v := h.MustWeft(t, "status", "connections")
				if !strings.Contains(v, want) || !strings.Contains(v, "10.50.0.0/16") || !strings.Contains(v, ipamRange) {
					return fmt.Errorf("status connections:\n%s", v)
				}
				return nil
			})
		}
	})
}

// TestIPAMGoneTarget: a container whose namespace is deleted keeps its
// address for the grace period (30 s), then the address is freed: IPAM no
// longer holds it and a new container gets it.
func TestIPAMGoneTarget(t *testing.T) {
	t.Parallel()
	w := netns.NewWorld(t, 1)
	h := w.Hosts[0]
	h.Launch(t, "--ipalloc-range", ipamRange)
	c := h.NewContainer(t, "gone")
	ip := attachAuto(t, c)
	start := time.Now()
	h.MustRun(t, "ip", "netns", "del", c.Name)
	// The world removes its namespaces at the end: give it one back then.
	t.Cleanup(func() { h.Run("ip", "netns", "add", c.Name) })
	time.Sleep(10 * time.Second)
	if v := ipamView(t, h); !strings.Contains(v, " 1 held here") {
		t.Fatalf("the address went before the grace period ended:\n%s", v)
	}
	netns.Eventually(t, 45*time.Second, "the gone container's address is freed", func() error {
		if v := ipamView(t, h); !strings.Contains(v, " 0 held here") {
			return fmt.Errorf("still held after %s:\n%s", time.Since(start).Round(time.Second), v)
		}
		return nil
	})
	if d := time.Since(start); d < 30*time.Second {
		t.Fatalf("freed after %s, before the 30 s grace period", d)
	}
	n := h.NewContainer(t, "next")
	if got := attachAuto(t, n); got != ip {
		t.Fatalf("a new container got %s, want the freed %s", got, ip)
	}
}
