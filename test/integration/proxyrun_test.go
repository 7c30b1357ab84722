package integration

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/weftnet/weft/test/netns"
)

// weftEnv runs `weft env` on d's host and returns the DOCKER_HOST it
// exports (the proxy).
func weftEnv(t testing.TB, d *netns.Dockerd) string {
	t.Helper()
	out := strings.TrimSpace(d.MustWeft(t, "env"))
	for _, f := range strings.Fields(strings.TrimPrefix(out, "export ")) {
		if v, ok := strings.CutPrefix(f, "DOCKER_HOST="); ok {
			return strings.Trim(v, "'")
		}
	}
	t.Fatalf("weft env printed %q: no DOCKER_HOST", out)
	return ""
}

// via runs docker through the proxy at host and fails the test unless it
// exits 0; it returns stdout.
func via(t *testing.T, d *netns.Dockerd, host string, args ...string) string {
	t.Helper()
	r := d.DockerVia(host, args...)
	if !r.OK() {
		t.Fatalf("docker %s (through the proxy): %v", strings.Join(args, " "), r)
	}
	return r.Stdout
}

// firstLines is a container command that prints its ethweft addresses
// first, then stays.
const firstLines = `ip -4 -o addr show dev ethweft | awk '{print "first:", $4}'; hostname; cat /etc/resolv.conf; exec sleep 3600`

// TestProxyRun: `eval $(weft env)`, then `docker run` with each form of
// WEFT_CIDR and none: the container's command sees its ethweft address
// on its first line, resolves and pings a container on another host by
// name, and docker inspect shows the container as made.
func TestProxyRun(t *testing.T) {
	t.Parallel()
	h1, h2, d1, d2 := dockerPair(t)
	p1, p2 := weftEnv(t, d1), weftEnv(t, d2)

	step := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}
	logs := func(t *testing.T, d *netns.Dockerd, host, name string) string {
		return via(t, d, host, "logs", name)
	}
	// firstAddr waits for the container's first line and returns the
	// address on it.
	firstAddr := func(t *testing.T, d *netns.Dockerd, host, name string) string {
		t.Helper()
		var line string
		netns.Eventually(t, connectTimeout, name+" printed its first line", func() error {
			out := logs(t, d, host, name)
			first, _, _ := strings.Cut(out, "\n")
			if first == "" {
				return fmt.Errorf("no output yet")
			}
			line = first
			return nil
		})
		addr, ok := strings.CutPrefix(line, "first: ")
		if !ok {
			t.Fatalf("%s: first line %q, want its ethweft address (the command ran before its interface was up)", name, line)
		}
		return addr
	}

	step("WEFT_CIDR forms", func(t *testing.T) {
		for _, tc := range []struct {
			name, cidr, want string
		}{
			{"p-exact", "10.2.1.1/24", "10.2.1.1/24"},
			{"p-ip", "ip:10.2.1.2/24", "10.2.1.2/24"},
			{"p-net", "net:10.32.8.0/24", "10.32.8."},
			{"p-default", "net:default", "10.32."},
			{"p-none-given", "", "10.32."},
		} {
			args := []string{"run", "-d", "--name", tc.name}
			if tc.cidr != "" {
				args = append(args, "-e", "WEFT_CIDR="+tc.cidr)
			}
			via(t, d1, p1, append(args, netns.BusyboxImage, "sh", "-c", firstLines)...)
			if got := firstAddr(t, d1, p1, tc.name); !strings.HasPrefix(got, tc.want) {
				t.Errorf("%s (WEFT_CIDR=%q): first line shows %q, want %s...", tc.name, tc.cidr, got, tc.want)
			}
			out := logs(t, d1, p1, tc.name)
			if !strings.Contains(out, "\n"+tc.name+"\n") || !strings.Contains(out, "nameserver 169.254.53.53") || !strings.Contains(out, "search weft.local") {
				t.Errorf("%s: hostname or resolv.conf not weft's:\n%s", tc.name, out)
			}
		}
	})

	step("ping by name across hosts", func(t *testing.T) {
		// A container with an automatic address reaches one with an
		// automatic address; one in 10.2.1.0/24 reaches one there.
		out := via(t, d2, p2, "run", "--rm", "--name", "q1", netns.BusyboxImage, "ping", "-c", "2", "-W", "2", "p-default")
		if !strings.Contains(out, "2 packets received") {
			t.Errorf("ping p-default from h2:\n%s", out)
		}
		out = via(t, d2, p2, "run", "--rm", "-e", "WEFT_CIDR=10.2.1.3/24", netns.BusyboxImage, "ping", "-c", "2", "-W", "2", "p-exact.weft.local")
		if !strings.Contains(out, "10.2.1.1") || !strings.Contains(out, "2 packets received") {
			t.Errorf("ping p-exact from h2:\n%s", out)
		}
	})

	step("inspect shows the container as made", func(t *testing.T) {
		var got []struct {
			Path   string
			Args   []string
			Config struct {
				Entrypoint []string
				Cmd        []string
				Hostname   string
			}
			Mounts []struct{ Destination string }
		}
		if err := json.Unmarshal([]byte(via(t, d1, p1, "inspect", "p-exact")), &got); err != nil || len(got) != 1 {
			t.Fatalf("inspect: %v", err)
		}
		c := got[0]
		if c.Path != "sh" || !slices.Equal(c.Args, []string{"-c", firstLines}) || c.Config.Entrypoint != nil ||
			!slices.Equal(c.Config.Cmd, []string{"sh", "-c", firstLines}) || len(c.Mounts) != 0 || c.Config.Hostname != "p-exact" {
			t.Errorf("inspect through the proxy: %+v", c)
		}
		ps := via(t, d1, p1, "ps", "--no-trunc", "--format", "{{.Command}}", "--filter", "name=p-exact")
		if strings.Contains(ps, "wait-for-interface") {
			t.Errorf("docker ps shows the hold entrypoint: %s", ps)
		}
	})

	step("bad WEFT_CIDR refused, proxy still serves", func(t *testing.T) {
		via(t, d1, p1, "run", "-d", "--name", "taken1", "-e", "WEFT_CIDR=10.2.9.9/24", netns.BusyboxImage, "sleep", "3600")
		for cidr, want := range map[string]string{
			"garbage":          "garbage",
			"net:10.99.0.0/24": "outside",
			"10.2.9.9/24":      "taken",
		} {
			r := d1.DockerVia(p1, "run", "-d", "-e", "WEFT_CIDR="+cidr, netns.BusyboxImage, "true")
			if r.OK() || !strings.Contains(r.Stderr, want) {
				t.Errorf("WEFT_CIDR=%s: %v, want an error saying %q", cidr, r, want)
			}
		}
		via(t, d1, p1, "version")
	})

	// Issue 14's tutorial, typed as weave's users type it, after eval
	// $(weft env): no --ipam-driver, no --dns. Through the proxy the
	// network gets weft's IPAM, and its containers weft's DNS.
	step("the weave tutorial, literally", func(t *testing.T) {
		for _, pd := range []struct {
			d    *netns.Dockerd
			host string
		}{{d1, p1}, {d2, p2}} {
			via(t, pd.d, pd.host, "network", "create", "--driver=weft", "--subnet", "10.1.1.0/24", "--gateway", "10.1.1.1", "weftnet1")
		}
		if drv := strings.TrimSpace(via(t, d1, p1, "network", "inspect", "-f", "{{.IPAM.Driver}}", "weftnet1")); drv != "weft" {
			t.Errorf("weftnet1's IPAM driver through the proxy: %q, want weft", drv)
		}
		via(t, d1, p1, "run", "-d", "--network", "weftnet1", "--name", "web", netns.BusyboxImage, "httpd", "-f", "-p", "80", "-h", "/etc")
		out := via(t, d2, p2, "run", "--rm", "--network", "weftnet1", netns.BusyboxImage, "ping", "-c", "3", "web")
		if !strings.Contains(out, "10.1.1.") || strings.Contains(out, " 0 packets received") {
			t.Errorf("ping -c 3 web from h2:\n%s", out)
		}
		t.Logf("ping -c 3 web from h2: %s", strings.TrimSpace(out[strings.LastIndex(out, "---"):]))
	})

	step("router restart keeps proxy-started containers attached", func(t *testing.T) {
		before, _ := psAddrs(t, h1, "container:"+strings.TrimSpace(via(t, d1, p1, "inspect", "-f", "{{.Id}}", "p-net")))
		// p-late is made through the proxy and started straight through
		// Docker while no router runs: its command waits, and the router
		// attaches it when it comes up.
		via(t, d1, p1, "create", "--name", "p-late", "-e", "WEFT_CIDR=10.2.1.20/24", netns.BusyboxImage, "sh", "-c", firstLines)
		h1.Stop(t)
		d1.MustDocker(t, "start", "p-late")
		d1.Launch(t)
		if got := firstAddr(t, d1, p1, "p-late"); got != "10.2.1.20/24" {
			t.Errorf("p-late, started while no router ran: first line shows %q, want 10.2.1.20/24", got)
		}
		id := strings.TrimSpace(d1.MustDocker(t, "inspect", "-f", "{{.Id}}", "p-net"))
		netns.Eventually(t, connectTimeout, "p-net attached after the restart", func() error {
			after, ok := psAddrs(t, h1, "container:"+id)
			if !ok || !slices.Equal(after, before) {
				return fmt.Errorf("weft ps shows %v (listed %v), want %v", after, ok, before)
			}
			return nil
		})
		// Restarting the container reattaches it with the same address.
		via(t, d1, weftEnv(t, d1), "restart", "-t", "1", "p-net")
		netns.Eventually(t, connectTimeout, "p-net attached after docker restart", func() error {
			after, ok := psAddrs(t, h1, "container:"+id)
			if !ok || !slices.Equal(after, before) {
				return fmt.Errorf("weft ps shows %v (listed %v), want %v", after, ok, before)
			}
			return nil
		})
		// p-net is in 10.32.8.0/24: only that subnet reaches it (as weave's
		// subnets isolate), so the pinger joins it too.
		netns.Eventually(t, connectTimeout, "h2 connected to h1 again", func() error { return h2.EstablishedWith(h1) })
		want, _, _ := strings.Cut(before[0], "/")
		waitDNS(t, h2, "p-net", want, true, dnsTimeout)
		out := via(t, d2, p2, "run", "--rm", "-e", "WEFT_CIDR=net:10.32.8.0/24", netns.BusyboxImage, "ping", "-c", "1", "-W", "5", "p-net")
		if !strings.Contains(out, want) {
			t.Errorf("ping p-net after restarts: %s", out)
		}
		if _, err := netip.ParsePrefix(before[0]); err != nil {
			t.Errorf("p-net's address %q", before)
		}
	})
}
