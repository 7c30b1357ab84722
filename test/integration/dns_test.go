package integration

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/weftnet/weft/daemon"
	"github.com/weftnet/weft/test/netns"
)

// dnsTimeout bounds how long a DNS change may take to reach every host.
const dnsTimeout = 10 * time.Second

// upstreamName is served by the test's own upstream resolver.
const (
	upstreamName = "upstream.test"
	upstreamAddr = "10.77.0.1"
)

// TestDNS runs weft's embedded DNS on three hosts, with a dnsmasq on a
// fourth namespace of the underlay as every router's upstream resolver
// (each router gets --resolv-conf naming it). One container per host.
func TestDNS(t *testing.T) {
	t.Parallel()
	w := netns.NewWorld(t, 4)
	h1, h2, h3, up := w.Hosts[0], w.Hosts[1], w.Hosts[2], w.Hosts[3]
	startUpstream(t, up)
	resolv := filepath.Join(w.Dir, "upstream-resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver "+up.Addr+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h1.Launch(t, "--resolv-conf", resolv)
	h2.Launch(t, "--resolv-conf", resolv, h1.PeerAddr())
	h3.Launch(t, "--resolv-conf", resolv, h1.PeerAddr())
	c1 := h1.AddContainer(t, "c1", "10.2.1.1/24")
	c2 := h2.AddContainer(t, "c2", "10.2.1.2/24")
	c3 := h3.AddContainer(t, "c3", "10.2.1.3/24")
	// Attached without --name, a netns:NAME target is registered as NAME.
	n1, n2, n3 := c1.Name, c2.Name, c3.Name

	t.Run("names across hosts", func(t *testing.T) {
		start := time.Now()
		for _, c := range []*netns.Container{c1, c2, c3} {
			eventuallyResolves(t, c, n1, "10.2.1.1")
			eventuallyResolves(t, c, n2+".weft.local", "10.2.1.2")
			eventuallyResolves(t, c, strings.ToUpper(n3), "10.2.1.3")
			eventuallyResolves(t, c, strings.ToUpper(n1)+".WEFT.LOCAL.", "10.2.1.1")
		}
		t.Logf("every name resolves in every container after %v", time.Since(start).Round(time.Millisecond))
		out := h1.MustWeft(t, "status", "dns")
		for _, n := range []string{n1, n2, n3} {
			if !strings.Contains(out, n+".weft.local.") {
				t.Errorf("status dns on h1 lacks %s:\n%s", n, out)
			}
		}
		if got := strings.TrimSpace(h3.MustWeft(t, "dns-lookup", n2)); got != "10.2.1.2" {
			t.Errorf("dns-lookup %s on h3: %q", n2, got)
		}
	})

	t.Run("listens only on the DNS address", func(t *testing.T) {
		for _, proto := range []string{"-Hlun", "-Hltn"} {
			out := h1.MustRun(t, "ss", proto, "sport", "=", ":53")
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if f := strings.Fields(line); len(f) < 4 || f[3] != daemon.DNSAddr+":53" {
					t.Errorf("ss %s on h1: socket on port 53 not bound to %s: %q", proto, daemon.DNSAddr, line)
				}
			}
		}
	})

	t.Run("reverse lookups", func(t *testing.T) {
		r := c1.Run("getent", "hosts", "10.2.1.3")
		if !r.OK() || !strings.Contains(r.Stdout, n3+".weft.local") {
			t.Errorf("getent hosts 10.2.1.3 in c1: %v", r)
		}
		in := query(t, c2, "2.1.2.10.in-addr.arpa.", dns.TypePTR, "udp")
		if len(in.Answer) != 1 || !strings.Contains(in.Answer[0].String(), n2+".weft.local.") {
			t.Errorf("PTR of 10.2.1.2 from c2: %v", in.Answer)
		}
	})

	t.Run("unknown names NXDOMAIN at once", func(t *testing.T) {
		start := time.Now()
		in := query(t, c1, "nosuch.weft.local.", dns.TypeA, "udp")
		if took := time.Since(start); in.Rcode != dns.RcodeNameError || took > time.Second {
			t.Errorf("nosuch.weft.local. from c1: %s after %v, want NXDOMAIN within 1s", dns.RcodeToString[in.Rcode], took)
		}
		if len(in.Ns) == 0 {
			t.Errorf("NXDOMAIN without SOA: %v", in)
		}
		r := h1.Weft("dns-lookup", "nosuch")
		if r.ExitCode != 1 || !strings.Contains(r.Stderr, "NXDOMAIN") {
			t.Errorf("weft dns-lookup nosuch: %v", r)
		}
		// Over TCP too.
		if in := query(t, c3, strings.ToUpper(n1)+".weft.local.", dns.TypeA, "tcp"); len(in.Answer) != 1 {
			t.Errorf("TCP query from c3: %v", in)
		}
	})

	t.Run("upstream names through weft", func(t *testing.T) {
		for _, c := range []*netns.Container{c1, c3} {
			r := c.Run("getent", "hosts", upstreamName)
			if !r.OK() || !strings.HasPrefix(r.Stdout, upstreamAddr) {
				t.Errorf("getent hosts %s in %s: %v", upstreamName, c.Nick, r)
			}
		}
		if got := strings.TrimSpace(h2.MustWeft(t, "dns-lookup", upstreamName+".")); got != upstreamAddr {
			t.Errorf("dns-lookup %s on h2: %q", upstreamName, got)
		}
	})

	t.Run("dns-add and dns-remove travel", func(t *testing.T) {
		h2.MustWeft(t, "dns-add", "10.2.1.42", "10.2.1.43", "-h", "extra")
		h2.MustWeft(t, "dns-add", c2.Target(), "-h", "alias.weft.local.")
		start := time.Now()
		eventuallyResolves(t, c1, "extra", "10.2.1.42", "10.2.1.43")
		eventuallyResolves(t, c3, "alias", "10.2.1.2")
		t.Logf("dns-add seen on h1 and h3 after %v", time.Since(start).Round(time.Millisecond))
		h2.MustWeft(t, "dns-remove", "10.2.1.43", "-h", "extra")
		eventuallyResolves(t, c3, "extra", "10.2.1.42")
		h2.MustWeft(t, "dns-remove", "--fqdn", "extra")
		h2.MustWeft(t, "dns-remove", c2.Target(), "-h", "alias")
		start = time.Now()
		eventuallyGone(t, c1, "extra")
		eventuallyGone(t, c3, "alias")
		t.Logf("dns-remove seen on h1 and h3 after %v", time.Since(start).Round(time.Millisecond))
		for _, args := range [][]string{
			{"dns-add", "10.2.1.300", "-h", "x"},
			{"dns-add", "10.2.1.5", "-h", "a..b"},
			{"dns-add", "netns:" + w.Prefix + "-nosuch"},
			{"dns-lookup"},
		} {
			r := h2.Weft(args...)
			if r.ExitCode != 1 || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 || !strings.HasPrefix(r.Stderr, "weft: ") {
				t.Errorf("weft %v: want exit 1 and one line on stderr: %v", args, r)
			}
		}
	})

	t.Run("many addresses: truncated over UDP, complete over TCP", func(t *testing.T) {
		args := []string{"dns-add"}
		for i := 1; i <= 100; i++ {
			args = append(args, fmt.Sprintf("10.3.0.%d", i))
		}
		h3.MustWeft(t, append(args, "-h", "many")...)
		netns.Eventually(t, dnsTimeout, "c1 sees 100 addresses over TCP", func() error {
			if in := query(t, c1, "many.weft.local.", dns.TypeA, "tcp"); len(in.Answer) != 100 {
				return fmt.Errorf("%d answers", len(in.Answer))
			}
			return nil
		})
		in := query(t, c1, "many.weft.local.", dns.TypeA, "udp")
		in.Compress = true // as sent: Len then counts the packed size
		if !in.Truncated || len(in.Answer) == 0 || len(in.Answer) >= 100 || in.Len() > 512 {
			t.Errorf("UDP answer: TC %v, %d records, %d bytes; want TC, some records, at most 512 bytes", in.Truncated, len(in.Answer), in.Len())
		}
		if got, err := resolve(c2, "many"); err != nil || len(got) != 100 {
			t.Errorf("getent in c2 (retries over TCP): %d addresses, %v", len(got), err)
		}
		h3.MustWeft(t, "dns-remove", "--fqdn", "many")
		eventuallyGone(t, c1, "many")
	})

	t.Run("detach removes the name everywhere", func(t *testing.T) {
		extra := h3.NewContainer(t, "c4")
		h3.MustWeft(t, "attach", "--name", "four", "10.2.1.4/24", extra.Target())
		eventuallyResolves(t, c1, "four", "10.2.1.4")
		h3.MustWeft(t, "detach", extra.Target())
		eventuallyGone(t, c1, "four")
		eventuallyGone(t, c2, "four")
		if _, err := os.Stat("/etc/netns/" + extra.Name + "/resolv.conf"); err == nil {
			t.Errorf("resolv.conf of %s left after detach", extra.Name)
		}
	})

	t.Run("detaching a deleted container forgets its name", func(t *testing.T) {
		gone := h1.NewContainer(t, "c5")
		h1.MustWeft(t, "attach", "--name", "five", "10.2.1.5/24", gone.Target())
		eventuallyResolves(t, c3, "five", "10.2.1.5")
		deleteNamespace(t, gone.Name)
		if got := strings.TrimSpace(h1.MustWeft(t, "detach", gone.Target())); got != "10.2.1.5" {
			t.Errorf("detach of deleted %s printed %q", gone.Name, got)
		}
		eventuallyGone(t, c3, "five")
		if _, err := os.Stat("/etc/netns/" + gone.Name + "/resolv.conf"); err == nil {
			t.Errorf("resolv.conf of deleted %s left after detach", gone.Name)
		}
	})

	t.Run("restarted router's names come back", func(t *testing.T) {
		h2.MustWeft(t, "dns-add", "10.2.1.52", "-h", "kept")
		eventuallyResolves(t, c1, "kept", "10.2.1.52")
		h2.Stop(t)
		h2.Launch(t, "--resolv-conf", resolv)
		start := time.Now()
		for _, c := range []*netns.Container{c1, c3, c2} {
			eventuallyResolves(t, c, n2, "10.2.1.2")
			eventuallyResolves(t, c, "kept", "10.2.1.52")
		}
		t.Logf("names of restarted h2 resolve everywhere %v after its launch", time.Since(start).Round(time.Millisecond))
		// Once the full gossip of reconnection has gone both ways, the names
		// stay: a router that forgot its records would tombstone them now.
		for _, h := range []*netns.Host{h1, h3} {
			netns.Eventually(t, connectTimeout, "h2 reconnected to "+h.Nick, func() error { return h2.EstablishedWith(h) })
		}
		netns.Consistently(t, 2*time.Second, "names of restarted h2 stay", func() error {
			for _, n := range []string{n2, "kept"} {
				if got, err := resolve(c1, n); err != nil || len(got) != 1 {
					return fmt.Errorf("%s from c1: %v %v", n, got, err)
				}
			}
			return nil
		})
	})
}

// startUpstream runs dnsmasq on host h as the upstream resolver: only its
// own hosts file, no other upstream; ended by PID at cleanup.
func startUpstream(t *testing.T, h *netns.Host) {
	t.Helper()
	dir := h.World().Dir
	hosts := filepath.Join(dir, "upstream-hosts")
	if err := os.WriteFile(hosts, []byte(upstreamAddr+" "+upstreamName+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := h.Start(t, "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv", "--no-hosts",
		"--addn-hosts="+hosts, "--listen-address="+h.Addr, "--bind-interfaces", "--user=root",
		"--pid-file="+filepath.Join(dir, "dnsmasq.pid"))
	t.Cleanup(p.Kill)
	netns.Eventually(t, 10*time.Second, "dnsmasq answers", func() error {
		if p.Exited() {
			return fmt.Errorf("dnsmasq exited: %v", p.Wait(0))
		}
		c, err := dialIn(h.Name, "udp", net.JoinHostPort(h.Addr, "53"))
		if err != nil {
			return err
		}
		defer c.Close()
		m := new(dns.Msg)
		m.SetQuestion(upstreamName+".", dns.TypeA)
		dc := &dns.Conn{Conn: c}
		c.SetDeadline(time.Now().Add(time.Second))
		if err := dc.WriteMsg(m); err != nil {
			return err
		}
		in, err := dc.ReadMsg()
		if err != nil {
			return err
		}
		if len(in.Answer) == 0 {
			return fmt.Errorf("no answer: %v", in)
		}
		return nil
	})
}

// dialIn opens a socket inside the named network namespace (under
// /var/run/netns) and connects it to addr; the socket stays in that
// namespace whichever thread uses it later.
func dialIn(ns, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := netns.Inside(ns, func() (err error) {
		c, err = net.DialTimeout(network, addr, 2*time.Second)
		return err
	})
	return c, err
}

// query asks the DNS server of the container's host (at daemon.DNSAddr, as
// the container's resolv.conf says) from inside the container.
func query(t *testing.T, c *netns.Container, name string, qtype uint16, network string) *dns.Msg {
	t.Helper()
	conn, err := dialIn(c.Name, network, net.JoinHostPort(daemon.DNSAddr, "53"))
	if err != nil {
		t.Fatalf("query %s from %s: %v", name, c.Nick, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	dc := &dns.Conn{Conn: conn}
	if err := dc.WriteMsg(m); err != nil {
		t.Fatalf("query %s from %s: %v", name, c.Nick, err)
	}
	in, err := dc.ReadMsg()
	if err != nil {
		t.Fatalf("query %s from %s: %v", name, c.Nick, err)
	}
	return in
}

// resolve runs `getent ahostsv4 NAME` in the container (its resolv.conf
// is the one weft wrote) and returns the distinct addresses, sorted.
func resolve(c *netns.Container, name string) ([]string, error) {
	r := c.Run("getent", "ahostsv4", name)
	if r.ExitCode == 2 {
		return nil, nil // not found
	}
	if !r.OK() {
		return nil, fmt.Errorf("getent ahostsv4 %s in %s: %v", name, c.Nick, r)
	}
	var out []string
	for _, line := range strings.Split(r.Stdout, "\n") {
		if f := strings.Fields(line); len(f) > 0 && !slices.Contains(out, f[0]) {
			out = append(out, f[0])
		}
	}
	slices.Sort(out)
	return out, nil
}

func eventuallyResolves(t *testing.T, c *netns.Container, name string, want ...string) {
	t.Helper()
	netns.Eventually(t, dnsTimeout, fmt.Sprintf("%s resolves %s", c.Nick, name), func() error {
		got, err := resolve(c, name)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("got %v, want %v", got, want)
		}
		return nil
	})
}

func eventuallyGone(t *testing.T, c *netns.Container, name string) {
	t.Helper()
	netns.Eventually(t, dnsTimeout, fmt.Sprintf("%s no longer resolves %s", c.Nick, name), func() error {
		got, err := resolve(c, name)
		if err != nil {
			return err
		}
		if len(got) > 0 {
			return fmt.Errorf("still resolves to %v", got)
		}
		return nil
	})
}

// deleteNamespace deletes a container's namespace as a container runtime
// would, then makes an empty one of the same name once the test is done, so
// that the world's cleanup (which deletes every namespace it made) finds it.
func deleteNamespace(t *testing.T, name string) {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "delete", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns delete %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns add %s: %v: %s", name, err, out)
		}
	})
}
