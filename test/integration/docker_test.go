package integration

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/daemon"
	"github.com/weftnet/weft/test/netns"
)

// Docker's side of the test: the networks, their subnets and the
// gateway of the first.
const (
	net1, subnet1, gateway1 = "weftnet1", "10.1.1.0/24", "10.1.1.1"
	net2, subnet2           = "weftnet2", "10.1.2.0/24"
	net3, subnet3           = "weftnet3", "10.1.4.0/24" // Docker's own IPAM
)

// dnsFlags make a container resolve weft's names: Docker's embedded DNS
// forwards to weft's, and bare names get the weft domain.
var dnsFlags = []string{"--dns", daemon.DNSAddr, "--dns-search", "weft.local"}

// forgetTimeout bounds how long a destroyed container's name may stay in
// DNS: well under the 30 s grace period a dead one gets.
const forgetTimeout = 10 * time.Second

// dockerRun runs `docker run -d --name NAME ARGS... busybox CMD...` on d
// and returns the container's full ID.
func dockerRun(t *testing.T, d *netns.Dockerd, name string, args []string, cmd ...string) string {
	t.Helper()
	argv := append(append([]string{"run", "-d", "--name", name}, args...), netns.BusyboxImage)
	return strings.TrimSpace(d.MustDocker(t, append(argv, cmd...)...))
}

// netAddr is the address of container name on Docker network nw.
func netAddr(t *testing.T, d *netns.Dockerd, name, nw string) string {
	t.Helper()
	out := strings.TrimSpace(d.MustDocker(t, "inspect", "-f",
		fmt.Sprintf("{{with index .NetworkSettings.Networks %q}}{{.IPAddress}}{{end}}", nw), name))
	if _, err := netip.ParseAddr(out); err != nil {
		t.Fatalf("%s has no address on %s: %q", name, nw, out)
	}
	return out
}

// psAddrs returns the addresses `weft ps` on h shows for target, and
// whether it shows the target at all.
func psAddrs(t *testing.T, h *netns.Host, target string) ([]string, bool) {
	t.Helper()
	for _, line := range strings.Split(h.MustWeft(t, "ps"), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == target {
			return f[2:], true
		}
	}
	return nil, false
}

// dnsEntry reports whether `weft status dns` on h has name (in the weft
// domain) with address addr; addr "" matches any address.
func dnsEntry(h *netns.Host, name, addr string) (bool, error) {
	r := h.Weft("status", "dns")
	if !r.OK() {
		return false, fmt.Errorf("%s: %v", h.Nick, r)
	}
	for _, line := range strings.Split(r.Stdout, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == name+".weft.local." && (addr == "" || f[1] == addr) {
			return true, nil
		}
	}
	return false, nil
}

// waitDNS waits until h's DNS has (want) or lacks (!want) name.
func waitDNS(t *testing.T, h *netns.Host, name, addr string, want bool, timeout time.Duration) {
	t.Helper()
	netns.Eventually(t, timeout, fmt.Sprintf("%s: %s in weft status dns: %v", h.Nick, name, want), func() error {
		has, err := dnsEntry(h, name, addr)
		if err != nil {
			return err
		}
		if has != want {
			return fmt.Errorf("has %s %s: %v", name, addr, has)
		}
		return nil
	})
}

// execFails checks that `docker exec ARGS...` on d fails.
func execFails(t *testing.T, d *netns.Dockerd, what string, args ...string) {
	t.Helper()
	if r := d.Docker(append([]string{"exec"}, args...)...); r.OK() {
		t.Errorf("%s: succeeded, want failure:\n%v", what, r)
	}
}

// dockerFails runs docker ARGS... on d and expects it to fail with a
// message containing each of want; it logs the message.
func dockerFails(t *testing.T, d *netns.Dockerd, want []string, args ...string) {
	t.Helper()
	r := d.Docker(args...)
	if r.OK() {
		t.Errorf("docker %s succeeded, want an error", strings.Join(args, " "))
		return
	}
	msg := strings.TrimSpace(r.Stderr)
	t.Logf("docker %s: %s", args[0], msg)
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("docker %s: error %q does not mention %q", strings.Join(args, " "), msg, w)
		}
	}
}

// dockerPair makes two hosts, each with a dockerd and a router launched
// beside it (h2's joined to h1's), and waits until they are connected.
func dockerPair(t testing.TB) (h1, h2 *netns.Host, d1, d2 *netns.Dockerd) {
	t.Helper()
	w := netns.NewWorld(t, 2)
	h1, h2 = w.Hosts[0], w.Hosts[1]
	d1, d2 = h1.StartDockerd(t), h2.StartDockerd(t)
	d1.Launch(t)
	d2.Launch(t, h1.PeerAddr())
	netns.Eventually(t, connectTimeout, "h2 connected to h1", func() error { return h2.EstablishedWith(h1) })
	return h1, h2, d1, d2
}

// TestDocker runs weft with a real dockerd on each of two hosts, the
// router serving the network and IPAM driver to its host's daemon:
// containers attached by name across hosts, kept across restarts and
// forgotten at once when removed; a weft Docker network on both hosts
// with names across hosts, connect and disconnect; two networks isolated;
// bad input (Docker's own IPAM handing out one address on both hosts
// included); a restart of the router, with an attached container
// restarted meanwhile; the other commands taking a container's name. The
// subtests share the world and run in order: a step that fails ends the
// test, as the steps after it count on it.
func TestDocker(t *testing.T) {
	t.Parallel()
	h1, h2, d1, d2 := dockerPair(t)
	both := []*netns.Dockerd{d1, d2}
	hosts := []*netns.Host{h1, h2}

	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	b1ID := func(t *testing.T) string {
		return strings.TrimSpace(d2.MustDocker(t, "inspect", "-f", "{{.Id}}", "b1"))
	}
	var a1ID, a1IP, b1IP, b1CIDR, b2IP string
	step("attach by name across hosts", func(t *testing.T) {
		a1ID = dockerRun(t, d1, "a1", []string{"--network", "none"}, "sleep", "3600")
		dockerRun(t, d2, "b1", []string{"--network", "none"}, "sleep", "3600")
		a1IP = strings.TrimSpace(h1.MustWeft(t, "attach", "a1"))
		b1IP = strings.TrimSpace(h2.MustWeft(t, "attach", "b1"))
		for _, ip := range []string{a1IP, b1IP} {
			if _, err := netip.ParseAddr(ip); err != nil {
				t.Fatalf("weft attach printed %q, want an address", ip)
			}
		}
		if a1IP == b1IP {
			t.Fatalf("a1 and b1 were both given %s", a1IP)
		}
		addrs, ok := psAddrs(t, h1, "container:"+a1ID)
		if !ok || len(addrs) != 1 || !strings.HasPrefix(addrs[0], a1IP+"/") {
			t.Errorf("weft ps on h1: container:%s shows %v (listed: %v), want %s", a1ID, addrs, ok, a1IP)
		}
		if addrs, _ := psAddrs(t, h2, "container:"+b1ID(t)); len(addrs) == 1 {
			b1CIDR = addrs[0]
		} else {
			t.Errorf("weft ps on h2: b1 shows %v, want one address", addrs)
		}
		dockerPing(t, d1, "a1", b1IP)
		dockerPing(t, d2, "b1", a1IP)
		netns.Eventually(t, dnsTimeout, "a1 resolves b1 through weft's DNS", func() error {
			r := d1.Docker("exec", "a1", "nslookup", "b1.weft.local", daemon.DNSAddr)
			if !r.OK() || !strings.Contains(r.Stdout, b1IP) {
				return fmt.Errorf("%v", r)
			}
			return nil
		})
	})

	// Not a step: nothing after it counts on it.
	t.Run("ps takes a container name", func(t *testing.T) {
		if r := h1.Weft("ps", "a1"); !r.OK() || !strings.Contains(r.Stdout, "container:"+a1ID+" ") || !strings.Contains(r.Stdout, a1IP+"/") {
			t.Errorf("weft ps a1 does not show a1 (container:%s %s): %v", a1ID, a1IP, r)
		}
	})

	step("restart keeps the address", func(t *testing.T) {
		d1.MustDocker(t, "restart", "-t", "0", "a1")
		netns.Eventually(t, pingTimeout, "a1 has its address again", func() error {
			r := d1.Docker("exec", "a1", "ip", "-4", "addr", "show")
			if !r.OK() || !strings.Contains(r.Stdout, " "+a1IP+"/") {
				return fmt.Errorf("%v", r)
			}
			return nil
		})
		if addrs, _ := psAddrs(t, h1, "container:"+a1ID); len(addrs) != 1 || !strings.HasPrefix(addrs[0], a1IP+"/") {
			t.Errorf("weft ps on h1 after restart: a1 shows %v, want %s", addrs, a1IP)
		}
		dockerPing(t, d2, "b1", a1IP)
		waitDNS(t, h2, "a1", a1IP, true, dnsTimeout)
	})

	step("rm -f forgets the container at once", func(t *testing.T) {
		b1ID := b1ID(t)
		for _, h := range hosts {
			waitDNS(t, h, "b1", b1IP, true, dnsTimeout)
		}
		// While b1 holds its address, no other container is given it.
		dockerRun(t, d2, "b2", []string{"--network", "none"}, "sleep", "3600")
		if r := h2.Weft("attach", b1CIDR, "b2"); r.OK() {
			t.Fatalf("b2 was given b1's address %s while b1 holds it", b1CIDR)
		} else {
			t.Logf("b1's address refused to b2 while b1 holds it: %s", strings.TrimSpace(r.Stderr))
		}
		began := time.Now()
		d2.MustDocker(t, "rm", "-f", "b1")
		for _, h := range hosts {
			waitDNS(t, h, "b1", "", false, forgetTimeout)
		}
		t.Logf("b1's name gone on both hosts %v after docker rm -f", time.Since(began).Round(time.Millisecond))
		if _, ok := psAddrs(t, h2, "container:"+b1ID); ok {
			t.Errorf("weft ps on h2 still lists b1 after docker rm -f")
		}
		// Its address is free: b2 is given it now.
		b2IP = b1IP
		h2.MustWeft(t, "attach", b1CIDR, "b2")
		dockerPing(t, d1, "a1", b2IP)
	})

	var webIP, web2IP string
	step("plugin network across hosts with names", func(t *testing.T) {
		for _, d := range both {
			d.MustDocker(t, "network", "create", "-d", "weft", "--ipam-driver", "weft",
				"--subnet", subnet1, "--gateway", gateway1, net1)
			if gw := strings.TrimSpace(d.MustDocker(t, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", net1)); gw != gateway1 {
				t.Errorf("docker network inspect %s: gateway %q, want %s", net1, gw, gateway1)
			}
		}
		web := append([]string{"--network", net1}, dnsFlags...)
		dockerRun(t, d1, "web", web, "sh", "-c", "echo hello from web >/tmp/index.html; exec httpd -f -p 80 -h /tmp")
		dockerRun(t, d2, "web2", web, "sleep", "3600")
		webIP, web2IP = netAddr(t, d1, "web", net1), netAddr(t, d2, "web2", net1)

		began := time.Now()
		netns.Eventually(t, pingTimeout, "a container on h2 pings web by name", func() error {
			run := append(append([]string{"run", "--rm", "--network", net1}, dnsFlags...), netns.BusyboxImage, "ping", "-c", "3", "-W", "2", "web")
			if r := d2.Docker(run...); !r.OK() {
				return fmt.Errorf("%v", r)
			}
			return nil
		})
		t.Logf("web answers by name from h2 after %v", time.Since(began).Round(time.Millisecond))

		// More containers on each host: no address given twice, none the gateway.
		for i := range 3 {
			dockerRun(t, d1, fmt.Sprintf("m1-%d", i), []string{"--network", net1}, "sleep", "3600")
			dockerRun(t, d2, fmt.Sprintf("m2-%d", i), []string{"--network", net1}, "sleep", "3600")
		}
		seen := map[string]string{webIP: "web", web2IP: "web2"}
		if webIP == web2IP {
			t.Errorf("web and web2 both have %s", webIP)
		}
		for i := range 3 {
			for _, c := range []struct {
				d    *netns.Dockerd
				name string
			}{{d1, fmt.Sprintf("m1-%d", i)}, {d2, fmt.Sprintf("m2-%d", i)}} {
				ip := netAddr(t, c.d, c.name, net1)
				if other, dup := seen[ip]; dup {
					t.Errorf("%s and %s both have %s", c.name, other, ip)
				}
				seen[ip] = c.name
			}
		}
		if c, ok := seen[gateway1]; ok {
			t.Errorf("%s was given the gateway %s", c, gateway1)
		}
		for ip, c := range seen {
			if !netip.MustParsePrefix(subnet1).Contains(netip.MustParseAddr(ip)) {
				t.Errorf("%s has %s, outside %s", c, ip, subnet1)
			}
		}
		for _, d := range both {
			d.MustDocker(t, "rm", "-f", "m1-0", "m1-1", "m1-2", "m2-0", "m2-1", "m2-2")
		}

		// Disconnect and connect a running container: its name follows.
		dockerRun(t, d2, "cn", []string{"--network", net1}, "sleep", "3600")
		cnIP := netAddr(t, d2, "cn", net1)
		waitDNS(t, h1, "cn", cnIP, true, dnsTimeout)
		d2.MustDocker(t, "network", "disconnect", net1, "cn")
		waitDNS(t, h1, "cn", "", false, dnsTimeout)
		execFails(t, d1, "web pings cn after it left "+net1, "web", "ping", "-c", "1", "-W", "1", cnIP)
		d2.MustDocker(t, "network", "connect", net1, "cn")
		cnIP = netAddr(t, d2, "cn", net1)
		waitDNS(t, h1, "cn", cnIP, true, dnsTimeout)
		netns.Eventually(t, pingTimeout, "web pings cn by name after it joined again", func() error {
			if r := d1.Docker("exec", "web", "ping", "-c", "1", "-W", "1", "cn"); !r.OK() {
				return fmt.Errorf("%v", r)
			}
			return nil
		})
	})

	step("two networks isolated", func(t *testing.T) {
		for _, d := range both {
			d.MustDocker(t, "network", "create", "-d", "weft", "--ipam-driver", "weft", "--subnet", subnet2, net2)
		}
		admin := []string{"--cap-add", "NET_ADMIN"}
		dockerRun(t, d2, "x2", append([]string{"--network", net2}, admin...), "sleep", "3600")
		dockerRun(t, d2, "y1", append([]string{"--network", net1}, admin...), "sleep", "3600")
		// Each takes an address of its own in weftnet1's subnet, not given out by weft.
		d2.MustDocker(t, "exec", "x2", "ip", "addr", "add", "10.1.1.250/24", "dev", "eth0")
		d2.MustDocker(t, "exec", "y1", "ip", "addr", "add", "10.1.1.251/24", "dev", "eth0")
		// The control: from weftnet1, the trick reaches web and web2.
		for _, ip := range []string{webIP, web2IP} {
			netns.Eventually(t, pingTimeout, "y1 pings "+ip+" from 10.1.1.251", func() error {
				if r := d2.Docker("exec", "y1", "ping", "-c", "1", "-W", "1", "-I", "10.1.1.251", ip); !r.OK() {
					return fmt.Errorf("%v", r)
				}
				return nil
			})
		}
		// From weftnet2 it reaches neither, across hosts or on its own host.
		execFails(t, d2, "x2 (weftnet2) pings web across hosts", "x2", "ping", "-c", "2", "-W", "1", webIP)
		execFails(t, d2, "x2 (weftnet2) pings web2 on its host", "x2", "ping", "-c", "2", "-W", "1", web2IP)
		// Nor the other way.
		execFails(t, d2, "web2 pings x2's weftnet1 address", "web2", "ping", "-c", "2", "-W", "1", "10.1.1.250")
	})

	step("bad input", func(t *testing.T) {
		r := h1.Weft("attach", "nosuch")
		checkUserError(t, r)
		if !strings.Contains(r.Stderr, "nosuch") {
			t.Errorf("weft attach nosuch: %q does not name the container", r.Stderr)
		}
		dockerFails(t, d1, []string{"10.1.3.300/24"}, "network", "create", "-d", "weft", "--ipam-driver", "weft", "--subnet", "10.1.3.300/24", "bad1")
		dockerFails(t, d1, []string{"10.9.9.9"}, "run", "--rm", "--network", net1, "--ip", "10.9.9.9", netns.BusyboxImage, "true")
		// Overlapping weftnet1 (and, the first, weftnet2: either may be named).
		dockerFails(t, d1, []string{"overlap", "10.1.0.0/16"}, "network", "create", "-d", "weft", "--ipam-driver", "weft", "--subnet", "10.1.0.0/16", "bad2")
		dockerFails(t, d1, []string{"overlap", "10.1.1.128/25", subnet1}, "network", "create", "-d", "weft", "--subnet", "10.1.1.128/25", "bad3") // Docker's own IPAM
		nets := d1.MustDocker(t, "network", "ls", "--format", "{{.Name}}")
		for _, bad := range []string{"bad1", "bad2", "bad3"} {
			if slices.Contains(strings.Fields(nets), bad) {
				t.Errorf("network %s was made", bad)
				d1.Docker("network", "rm", bad)
			}
		}
		// Docker's own IPAM gives each host the same first address: the
		// second host's is refused, pointing at --ipam-driver weft.
		for _, d := range both {
			d.MustDocker(t, "network", "create", "-d", "weft", "--subnet", subnet3, net3)
		}
		dockerRun(t, d1, "z1", []string{"--network", net3}, "sleep", "3600")
		dockerFails(t, d2, []string{"--ipam-driver weft"}, "run", "-d", "--network", net3, "--name", "z2", netns.BusyboxImage, "sleep", "3600")
		d2.Docker("rm", "-f", "z2") // Docker keeps a container it could not start
		d1.MustDocker(t, "rm", "-f", "z1")
		for _, d := range both {
			d.MustDocker(t, "network", "rm", net3)
		}
		// weftnet2 goes once its containers are gone.
		d2.MustDocker(t, "rm", "-f", "x2")
		for _, d := range both {
			d.MustDocker(t, "network", "rm", net2)
		}
		// The routers still serve.
		for _, h := range hosts {
			h.MustWeft(t, "status")
		}
		dockerPing(t, d1, "a1", b2IP)
		dockerPing(t, d2, "web2", webIP)
	})

	step("router restart keeps everything", func(t *testing.T) {
		h1.Stop(t)
		// a1 restarts while no router runs: launch attaches it again.
		d1.MustDocker(t, "restart", "-t", "0", "a1")
		d1.Launch(t)
		netns.Eventually(t, connectTimeout, "h2 connected to h1 again", func() error { return h2.EstablishedWith(h1) })
		if addrs, _ := psAddrs(t, h1, "container:"+a1ID); len(addrs) != 1 || !strings.HasPrefix(addrs[0], a1IP+"/") {
			t.Errorf("weft ps on h1 after the restart: a1 shows %v, want %s", addrs, a1IP)
		}
		netns.Eventually(t, pingTimeout, "a1 has its address again", func() error {
			r := d1.Docker("exec", "a1", "ip", "-4", "addr", "show")
			if !r.OK() || !strings.Contains(r.Stdout, " "+a1IP+"/") {
				return fmt.Errorf("%v", r)
			}
			return nil
		})
		dockerPing(t, d1, "a1", b2IP)
		dockerPing(t, d2, "b2", a1IP)
		for _, h := range hosts {
			waitDNS(t, h, "web", webIP, true, dnsTimeout)
		}
		// (busybox-static 1.35's wget crashes with -T: DefaultTimeout bounds it.)
		netns.Eventually(t, pingTimeout, "web2 fetches from web by name", func() error {
			r := d2.Docker("exec", "web2", "wget", "-q", "-O", "-", "http://web/")
			if !r.OK() || !strings.Contains(r.Stdout, "hello from web") {
				return fmt.Errorf("%v", r)
			}
			return nil
		})
		// weftnet1 still takes new containers, with addresses of their own.
		dockerRun(t, d1, "new1", []string{"--network", net1}, "sleep", "3600")
		ip := netAddr(t, d1, "new1", net1)
		if ip == webIP || ip == web2IP || ip == gateway1 {
			t.Errorf("new1 was given %s, already web's, web2's or the gateway", ip)
		}
		dockerPing(t, d2, "web2", ip)
		waitDNS(t, h2, "new1", ip, true, dnsTimeout)
	})

	// Not a step: the last; it leaves a1 attached as it was.
	t.Run("commands take a container name", func(t *testing.T) {
		h1.MustWeft(t, "dns-add", "a1", "-h", "alias1.weft.local")
		waitDNS(t, h2, "alias1", a1IP, true, dnsTimeout)
		h1.MustWeft(t, "dns-remove", "a1", "-h", "alias1.weft.local")
		waitDNS(t, h2, "alias1", "", false, dnsTimeout)
		a1CIDR, _ := psAddrs(t, h1, "container:"+a1ID)
		if len(a1CIDR) != 1 {
			t.Fatalf("weft ps on h1: a1 shows %v", a1CIDR)
		}
		h1.MustWeft(t, "detach", "a1")
		if _, ok := psAddrs(t, h1, "container:"+a1ID); ok {
			t.Errorf("weft ps on h1 lists a1 after weft detach a1")
		}
		waitDNS(t, h2, "a1", "", false, dnsTimeout)
		h1.MustWeft(t, "attach", a1CIDR[0], "a1")
		dockerPing(t, d2, "b2", a1IP)
		waitDNS(t, h2, "a1", a1IP, true, dnsTimeout)
	})
}
