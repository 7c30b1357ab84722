package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/test/netns"
)

// TestCore runs the core's checks on one world of three hosts: h1 is
// launched alone, h2 and h3 are pointed at h1 only; one container per host
// in 10.2.1.0/24. The subtests share the world and run in order; the restart
// comes last.
func TestCore(t *testing.T) {
	t.Parallel()
	w := netns.NewWorld(t, 3)
	h1, h2, h3 := w.Hosts[0], w.Hosts[1], w.Hosts[2]
	h1.Launch(t)
	h2.Launch(t, h1.PeerAddr())
	h3.Launch(t, h1.PeerAddr())
	c1 := h1.AddContainer(t, "c1", "10.2.1.1/24")
	c2 := h2.AddContainer(t, "c2", "10.2.1.2/24")
	c3 := h3.AddContainer(t, "c3", "10.2.1.3/24")
	containers := []*netns.Container{c1, c2, c3}

	t.Run("discovery", func(t *testing.T) {
		// h2 and h3 were given only h1; they must find each other.
		for _, pair := range [][2]*netns.Host{{h1, h2}, {h1, h3}, {h2, h3}, {h3, h2}} {
			netns.Eventually(t, connectTimeout, pair[0].Nick+" connected to "+pair[1].Nick,
				func() error { return pair[0].EstablishedWith(pair[1]) })
		}
		for _, h := range w.Hosts {
			netns.Eventually(t, connectTimeout, h.Nick+" knows 3 peers", func() error {
				lines, err := h.PeerLines()
				if err != nil {
					return err
				}
				rep, err := h.Report()
				if err != nil {
					return err
				}
				if len(lines) != 3 || len(rep.Router.Peers) != 3 {
					return fmt.Errorf("status peers has %d lines, report %d peers:\n%s",
						len(lines), len(rep.Router.Peers), strings.Join(lines, "\n"))
				}
				return nil
			})
		}
		// The text of `status connections` agrees: two established lines.
		r := h3.MustWeft(t, "status", "connections")
		n := 0
		for _, c := range netns.ParseConnections(r) {
			if c.State == "established" {
				n++
			}
		}
		if n != 2 {
			t.Errorf("h3: weft status connections: %d established, want 2:\n%s", n, r)
		}
	})

	t.Run("ping", func(t *testing.T) {
		for _, a := range containers {
			for _, b := range containers {
				if a != b {
					a.WaitPing(t, b.IP, pingTimeout)
				}
			}
		}
	})

	t.Run("tcp", func(t *testing.T) {
		srv := c3.Start(t, "nc", "-l", "-p", "7001")
		waitListening(t, c3, 7001)
		c1.MustRun(t, "sh", "-c", "echo hello over weft | nc -N -w 5 10.2.1.3 7001")
		res := srv.Wait(10 * time.Second)
		if !res.OK() || strings.TrimSpace(res.Stdout) != "hello over weft" {
			t.Fatalf("c3 received %q: %v", res.Stdout, res)
		}
	})

	t.Run("arp-and-broadcast", func(t *testing.T) {
		for _, c := range containers {
			c.Sysctl(t, "net.ipv4.icmp_echo_ignore_broadcasts", "0")
			c.MustRun(t, "ip", "neigh", "flush", "all")
		}
		// A broadcast ping from each container is answered by the other two:
		// the broadcast frame reached every host.
		for _, a := range containers {
			netns.Eventually(t, pingTimeout, a.Nick+"'s broadcast ping answered by all", func() error {
				r := a.Run("ping", "-n", "-b", "-c", "3", "-i", "0.3", "-W", "2", "10.2.1.255")
				for _, b := range containers {
					if b != a && !strings.Contains(r.Stdout, "from "+b.IP+":") {
						return fmt.Errorf("no answer from %s:\n%s%s", b.IP, r.Stdout, r.Stderr)
					}
				}
				return nil
			})
		}
		// ARP resolved every remote container to the MAC weft attached it with.
		for _, a := range containers {
			for _, b := range containers {
				if a == b {
					continue
				}
				want := attachedMAC(t, b)
				if err := a.Ping(b.IP, 0); err != nil {
					t.Fatal(err)
				}
				got, err := neighbourMAC(a, b.IP)
				if err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("%s resolves %s to %s; weft ps on %s says %s", a.Nick, b.IP, got, b.Host.Nick, want)
				}
			}
		}
	})

	t.Run("transfer-20MB", func(t *testing.T) {
		transfer(t, c1, c2, 20<<20, 7002)
	})

	t.Run("relay-around-blocked-link", func(t *testing.T) {
		name2, err := h2.PeerName()
		if err != nil {
			t.Fatal(err)
		}
		name3, err := h3.PeerName()
		if err != nil {
			t.Fatal(err)
		}
		const n = 100
		start := time.Now()
		w.Block(t, h1, h2)
		unblocked := false
		t.Cleanup(func() {
			if !unblocked {
				w.Unblock(t, h1, h2)
			}
		})
		netns.Eventually(t, rerouteTimeout, "h1 routes to h2 via h3", func() error {
			rep, err := h1.Report()
			if err != nil {
				return err
			}
			if via, _ := netns.RouteVia(rep, name2); via != name3 {
				return fmt.Errorf("route to %s is via %q, want %s: %+v", name2, via, name3, rep.Router.UnicastRoutes)
			}
			return nil
		})
		t.Logf("blocked h1-h2: h1 routes to h2 via h3 after %v", time.Since(start).Round(time.Millisecond))
		c1.WaitPing(t, c2.IP, rerouteTimeout)
		c2.WaitPing(t, c1.IP, rerouteTimeout)
		rx, answered := relayedPackets(t, h3, c1, c2, n)
		if answered < n*9/10 || rx < n {
			t.Fatalf("blocked h1-h2: %d of %d pings answered, h3 received %d packets; want >= %d and >= %d",
				answered, n, rx, n*9/10, n)
		}
		t.Logf("blocked: %d/%d answered, relay h3 received %d packets", answered, n, rx)

		start = time.Now()
		w.Unblock(t, h1, h2)
		unblocked = true
		netns.Eventually(t, rerouteTimeout, "h1 routes to h2 directly again", func() error {
			if err := h1.EstablishedWith(h2); err != nil {
				return err
			}
			rep, err := h1.Report()
			if err != nil {
				return err
			}
			if via, _ := netns.RouteVia(rep, name2); via != name2 {
				return fmt.Errorf("route to %s is via %q: %+v", name2, via, rep.Router.UnicastRoutes)
			}
			return nil
		})
		t.Logf("unblocked: h1 routes to h2 directly after %v", time.Since(start).Round(time.Millisecond))
		netns.Eventually(t, rerouteTimeout, "c1-c2 traffic bypasses h3", func() error {
			rx, answered := relayedPackets(t, h3, c1, c2, n)
			if answered < n*9/10 || rx >= n/2 {
				return fmt.Errorf("%d of %d pings answered, h3 received %d packets", answered, n, rx)
			}
			t.Logf("unblocked: %d/%d answered, h3 received %d packets", answered, n, rx)
			return nil
		})
	})

	t.Run("bad-input", func(t *testing.T) {
		empty := filepath.Join(w.Dir, "no-router")
		if err := os.MkdirAll(empty, 0o700); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name string
			run  func() netns.Result
		}{
			{"missing namespace", func() netns.Result {
				return h1.Weft("attach", "10.2.1.50/24", "netns:"+w.Prefix+"-nosuch")
			}},
			{"bad CIDR", func() netns.Result { return h1.Weft("attach", "10.2.1.300/24", c1.Target()) }},
			{"not a CIDR", func() netns.Result { return h1.Weft("attach", "ten.two/24", c1.Target()) }},
			{"bad target", func() netns.Result { return h1.Weft("attach", "10.2.1.51/24", "nosuchkind:x") }},
			{"peer with bad port", func() netns.Result { return h1.Weft("connect", "10.99.0.2:99999") }},
			{"peer with text port", func() netns.Result { return h1.Weft("connect", "10.99.0.2:port") }},
			{"peer with bad bracket", func() netns.Result { return h1.Weft("connect", "[10.99.0.2:6783") }},
			{"forget malformed peer", func() netns.Result { return h1.Weft("forget", "10.99.0.2::") }},
			{"unknown command", func() netns.Result { return h1.Weft("frobnicate") }},
			{"no router: status", func() netns.Result { return h1.WeftStateDir(empty, "status") }},
			{"no router: attach", func() netns.Result {
				return h1.WeftStateDir(empty, "attach", "10.2.1.52/24", c1.Target())
			}},
			{"no router: connect", func() netns.Result { return h1.WeftStateDir(empty, "connect", h2.PeerAddr()) }},
		}
		for _, tc := range cases {
			t.Run(strings.ReplaceAll(tc.name, " ", "-"), func(t *testing.T) {
				checkUserError(t, tc.run())
				if r := h1.Weft("status"); !r.OK() {
					t.Fatalf("router on h1 no longer answers after %s: %v", tc.name, r)
				}
			})
		}
		// Nothing changed: c1 keeps its one address, and still reaches c2.
		if out := h1.MustWeft(t, "ps", c1.Target()); strings.Contains(out, "10.2.1.5") {
			t.Errorf("weft ps after bad input: %s", out)
		}
		c1.WaitPing(t, c2.IP, pingTimeout)
	})

	t.Run("restart", func(t *testing.T) {
		name, err := h2.PeerName()
		if err != nil {
			t.Fatal(err)
		}
		h2.Stop(t)
		// Stopped: no control socket, but the attachment stays.
		checkUserError(t, h2.Weft("status"))
		if r := c2.Run("ip", "-o", "addr", "show"); !strings.Contains(r.Stdout, "10.2.1.2/24") {
			t.Fatalf("c2 lost its address when the router stopped: %v", r)
		}
		// Launched again without peers: it remembers them and its name.
		h2.Launch(t)
		netns.Eventually(t, connectTimeout, "h2 reconnects to h1", func() error { return h2.EstablishedWith(h1) })
		if again, err := h2.PeerName(); err != nil || again != name {
			t.Errorf("peer name after restart %q (%v), want %q", again, err, name)
		}
		if out := h2.MustWeft(t, "ps"); !strings.Contains(out, c2.Target()) || !strings.Contains(out, "10.2.1.2/24") {
			t.Errorf("weft ps after restart does not show %s 10.2.1.2/24:\n%s", c2.Target(), out)
		}
		rep, err := h2.Report()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(rep.Router.Targets, func(s string) bool { return strings.HasPrefix(s, h1.Addr) }) {
			t.Errorf("h2's targets after restart %v do not include %s", rep.Router.Targets, h1.PeerAddr())
		}
		for _, c := range []*netns.Container{c1, c3} {
			c.WaitPing(t, c2.IP, pingTimeout)
			c2.WaitPing(t, c.IP, pingTimeout)
		}
	})
}
