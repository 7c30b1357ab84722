package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/test/netns"
)

// Issue 19: the kernel's VXLAN carries plain traffic between directly
// connected peers (the fast path); the router's userspace path (the
// sleeve) keeps encrypted and relayed traffic, peers without a fast path,
// and every peer whose fast path heartbeats stop.

// vxlanDevice is the fast path's device on every host.
const vxlanDevice = "weft-vxlan"

// pathOf returns the path (fastdp or sleeve) and its reason that h's
// report shows for its established connection with other.
func pathOf(h, other *netns.Host) (string, string, error) {
	rep, err := h.Report()
	if err != nil {
		return "", "", err
	}
	for _, c := range rep.Router.Connections {
		if strings.HasPrefix(c.Address, other.Addr+":") && c.State == "established" {
			return c.Path, c.PathReason, nil
		}
	}
	return "", "", fmt.Errorf("%s: no established connection with %s", h.Nick, other.Nick)
}

// waitPath waits until h's connection with other takes path, with a reason
// containing why, and returns how long that took.
func waitPath(t *testing.T, h, other *netns.Host, path, why string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	netns.Eventually(t, timeout, fmt.Sprintf("%s-%s on %s", h.Nick, other.Nick, path), func() error {
		got, reason, err := pathOf(h, other)
		if err != nil {
			return err
		}
		if got != path || !strings.Contains(reason, why) {
			return fmt.Errorf("%s-%s: path %q (%s), want %s (%s)", h.Nick, other.Nick, got, reason, path, why)
		}
		return nil
	})
	return time.Since(start)
}

// linkStat reads one counter of the link in h's namespace.
func linkStat(t *testing.T, h *netns.Host, link, name string) uint64 {
	t.Helper()
	r := h.Run("cat", "/sys/class/net/"+link+"/statistics/"+name)
	if !r.OK() {
		t.Fatalf("%s: read %s %s: %v", h.Nick, link, name, r)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(r.Stdout), 10, 64)
	if err != nil {
		t.Fatalf("%s: %s %s: %v", h.Nick, link, name, err)
	}
	return v
}

// routerBytes is what a router's userspace path moved: bytes read from and
// written to its TAP, and sent and received over UDP.
func routerBytes(t *testing.T, h *netns.Host) uint64 {
	t.Helper()
	s := rawReportOf(t, h).Router.Stats
	return s["tap_bytes_in"] + s["tap_bytes_out"] + s["udp_bytes_in"] + s["udp_bytes_out"]
}

// zeroTransfer sends n zero bytes over TCP from one container to another
// and checks that n arrive.
func zeroTransfer(t *testing.T, from, to *netns.Container, n int64, port int) time.Duration {
	t.Helper()
	srv := to.Start(t, "sh", "-c", fmt.Sprintf("nc -l -p %d | wc -c", port))
	waitListening(t, to, port)
	start := time.Now()
	r := from.Run("sh", "-c", fmt.Sprintf("head -c %d /dev/zero | nc -N -w 10 %s %d", n, to.IP, port))
	if !r.OK() {
		t.Fatalf("send %d bytes %s -> %s: %v", n, from.Nick, to.Nick, r)
	}
	res := srv.Wait(60 * time.Second)
	took := time.Since(start)
	if !res.OK() {
		t.Fatalf("receive on %s: %v", to.Nick, res)
	}
	if got := strings.TrimSpace(res.Stdout); got != strconv.FormatInt(n, 10) {
		t.Fatalf("%s -> %s: %s bytes arrived, %d sent", from.Nick, to.Nick, got, n)
	}
	t.Logf("%d MB %s -> %s in %v (%.0f Mbit/s)", n>>20, from.Nick, to.Nick, took.Round(time.Millisecond),
		float64(n)*8/took.Seconds()/1e6)
	return took
}

// blockFastPath drops (op -I) or lets through again (op -D) the fast
// path's UDP port between h and other, in h's namespace, both ways.
func blockFastPath(t *testing.T, h, other *netns.Host, op string) {
	t.Helper()
	for _, rule := range [][]string{
		{"INPUT", "-s", other.Addr},
		{"OUTPUT", "-d", other.Addr},
	} {
		args := append([]string{"iptables", "-w", "5", op, rule[0]}, rule[1:]...)
		args = append(args, "-p", "udp", "--dport", "6784", "-j", "DROP")
		if r := h.Run(args...); !r.OK() {
			t.Fatalf("%s: %v", h.Nick, r)
		}
	}
}

// TestFastdp: h1 and h2 run the fast path, h3 runs with --no-fastdp; all
// three connect to each other, one container on each.
func TestFastdp(t *testing.T) {
	t.Parallel()
	netns.SkipUnlessRoot(t)
	w := netns.NewWorld(t, 3)
	h1, h2, h3 := w.Hosts[0], w.Hosts[1], w.Hosts[2]
	h1.Launch(t)
	h2.Launch(t, h1.PeerAddr())
	h3.Launch(t, "--no-fastdp", h1.PeerAddr(), h2.PeerAddr())
	c1 := h1.AddContainer(t, "c1", "10.2.19.1/24")
	c2 := h2.AddContainer(t, "c2", "10.2.19.2/24")
	c3 := h3.AddContainer(t, "c3", "10.2.19.3/24")
	waitPath(t, h1, h2, "fastdp", "", connectTimeout)
	waitPath(t, h2, h1, "fastdp", "", connectTimeout)
	for _, p := range [][2]*netns.Host{{h1, h3}, {h2, h3}} {
		waitPath(t, p[0], p[1], "sleeve", "the peer runs without a fast path", connectTimeout)
		waitPath(t, p[1], p[0], "sleeve", "this router runs without a fast path", connectTimeout)
	}
	if r := h3.Run("ip", "link", "show", vxlanDevice); r.OK() {
		t.Errorf("h3 runs with --no-fastdp but has %s", vxlanDevice)
	}
	out := h1.MustWeft(t, "status", "connections")
	if !strings.Contains(out, " fastdp ") || !strings.Contains(out, " sleeve ") {
		t.Errorf("weft status connections on h1 does not show both paths:\n%s", out)
	}
	t.Logf("h1: weft status connections:\n%s", out)
	all := []*netns.Container{c1, c2, c3}
	for _, a := range all {
		for _, b := range all {
			if a != b {
				a.WaitPing(t, b.IP, pingTimeout)
			}
		}
	}

	t.Run("kernel-carries-1GB", func(t *testing.T) {
		zeroTransfer(t, c1, c2, 4<<20, 7190) // the first frames miss and take the sleeve
		r1, r2 := routerBytes(t, h1), routerBytes(t, h2)
		tx, rx := linkStat(t, h1, vxlanDevice, "tx_bytes"), linkStat(t, h2, vxlanDevice, "rx_bytes")
		const n = 1 << 30
		zeroTransfer(t, c1, c2, n, 7191)
		d1, d2 := routerBytes(t, h1)-r1, routerBytes(t, h2)-r2
		dtx, drx := linkStat(t, h1, vxlanDevice, "tx_bytes")-tx, linkStat(t, h2, vxlanDevice, "rx_bytes")-rx
		t.Logf("during 1 GiB: routers moved %d and %d bytes; %s sent %d, received %d", d1, d2, vxlanDevice, dtx, drx)
		if d1 > n/100 || d2 > n/100 {
			t.Errorf("the routers moved %d (h1) and %d (h2) bytes during a 1 GiB transfer: not the kernel's path", d1, d2)
		}
		if dtx < n || drx < n {
			t.Errorf("%s carried %d bytes out of h1 and %d into h2, want at least %d", vxlanDevice, dtx, drx, n)
		}
		// /metrics counts both paths.
		r := h1.Run("curl", "-sf", "http://127.0.0.1:6784/metrics")
		if !r.OK() {
			t.Fatalf("h1: /metrics: %v", r)
		}
		for _, c := range []string{"weft_fastdp_sent_bytes_total", "weft_fastdp_heartbeats_received_total", "weft_fastdp_entries_installed_total", "weft_device_read_bytes_total"} {
			if !strings.Contains(r.Stdout, "\n"+c+" ") {
				t.Errorf("h1: /metrics has no counter %s", c)
			}
		}
		for _, line := range strings.Split(r.Stdout, "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "weft_fastdp_sent_bytes_total" {
				if v, _ := strconv.ParseFloat(f[1], 64); v < n {
					t.Errorf("h1: /metrics: fastdp_bytes_out %s after 1 GiB", f[1])
				}
			}
		}
	})

	t.Run("no-fastdp-host", func(t *testing.T) {
		before := linkStat(t, h1, vxlanDevice, "tx_bytes")
		transfer(t, c3, c1, 4<<20, 7192)
		transfer(t, c2, c3, 4<<20, 7193)
		if d := linkStat(t, h1, vxlanDevice, "tx_bytes") - before; d > 1<<20 {
			t.Errorf("h1's %s sent %d bytes while only h3, without a fast path, talked to it", vxlanDevice, d)
		}
	})

	t.Run("broadcast-multicast-once", func(t *testing.T) {
		c1.MustRun(t, "ip", "route", "add", "224.0.0.0/4", "dev", "ethweft")
		caps := map[*netns.Container]*pcapFile{}
		for _, c := range all {
			caps[c] = startPcap(t, c, "arp or host 239.19.19.19")
		}
		c1.MustRun(t, "ip", "neigh", "flush", "all")
		c1.Run("ping", "-n", "-c", "2", "-W", "1", "10.2.19.77") // ARP requests nobody answers
		c1.MustRun(t, "sh", "-c", "for i in 1 2 3 4 5; do echo mcast$i; sleep 0.05; done | nc -u -w 1 239.19.19.19 7194")
		time.Sleep(time.Second) // let the last frames arrive
		texts := map[*netns.Container]string{}
		for _, c := range all {
			texts[c] = caps[c].stop(t)
		}
		for _, what := range []string{"who-has 10.2.19.77", "239.19.19.19.7194"} {
			sent := strings.Count(texts[c1], what)
			if sent == 0 {
				t.Fatalf("c1 sent no %q:\n%s", what, texts[c1])
			}
			for _, c := range []*netns.Container{c2, c3} {
				if got := strings.Count(texts[c], what); got != sent {
					t.Errorf("%s received %d frames %q, c1 sent %d: want each exactly once", c.Nick, got, what, sent)
				}
			}
			t.Logf("%q: c1 sent %d, each other container received as many", what, sent)
		}
	})

	t.Run("block-and-back", func(t *testing.T) {
		src, sum := randomFile(t, 150<<20)
		// Slow the sender, so that the transfer outlasts both switches.
		c1.MustRun(t, "tc", "qdisc", "add", "dev", "ethweft", "root", "tbf", "rate", "150mbit", "burst", "256kb", "latency", "100ms")
		defer c1.Run("tc", "qdisc", "del", "dev", "ethweft", "root")
		out := filepath.Join(t.TempDir(), "received")
		srv := c2.Start(t, "sh", "-c", fmt.Sprintf("exec nc -l -p 7195 > %s", out))
		waitListening(t, c2, 7195)
		start := time.Now()
		snd := c1.Start(t, "sh", "-c", fmt.Sprintf("exec nc -N -w 30 %s 7195 < %s", c2.IP, src))
		time.Sleep(1500 * time.Millisecond)
		sleeveBefore := routerBytes(t, h1)
		blockFastPath(t, h1, h2, "-I")
		down1 := waitPath(t, h1, h2, "sleeve", "", 15*time.Second)
		down2 := waitPath(t, h2, h1, "sleeve", "", 15*time.Second)
		t.Logf("fast path blocked: h1 on the sleeve after %v, h2 after %v", down1.Round(100*time.Millisecond), down2.Round(100*time.Millisecond))
		// The transfer resumes on the userspace path once TCP retransmits
		// (its timer backed off while packets went into the block).
		netns.Eventually(t, 15*time.Second, "the transfer continues through h1's router", func() error {
			if d := routerBytes(t, h1) - sleeveBefore; d < 4<<20 {
				return fmt.Errorf("h1's router moved %d bytes since the block", d)
			}
			return nil
		})
		blockFastPath(t, h1, h2, "-D")
		up1 := waitPath(t, h1, h2, "fastdp", "", 15*time.Second)
		up2 := waitPath(t, h2, h1, "fastdp", "", 15*time.Second)
		t.Logf("unblocked: h1 back on the fast path after %v, h2 after %v", up1.Round(100*time.Millisecond), up2.Round(100*time.Millisecond))
		time.Sleep(500 * time.Millisecond) // misses install the entries again
		back := routerBytes(t, h1)
		time.Sleep(time.Second)
		if d := routerBytes(t, h1) - back; !snd.Exited() && d > 1<<20 {
			t.Errorf("h1's router moved %d bytes in a second after the fast path came back", d)
		}
		if r := snd.Wait(90 * time.Second); !r.OK() {
			t.Fatalf("send: %v", r)
		}
		if r := srv.Wait(30 * time.Second); !r.OK() {
			t.Fatalf("receive: %v", r)
		}
		n, got, err := fileSum(out)
		if err != nil {
			t.Fatal(err)
		}
		if n != 150<<20 || got != sum {
			t.Fatalf("received %d bytes with sha256 %x; sent %d with %x", n, got, 150<<20, sum)
		}
		t.Logf("150 MB intact across both switches in %v", time.Since(start).Round(time.Millisecond))
	})

	t.Run("relayed", func(t *testing.T) {
		// h1 and h2 lose each other; h3 relays between them, in userspace.
		w.Block(t, h1, h2)
		defer w.Unblock(t, h1, h2)
		name3, err := h3.PeerName()
		if err != nil {
			t.Fatal(err)
		}
		name2, err := h2.PeerName()
		if err != nil {
			t.Fatal(err)
		}
		netns.Eventually(t, 60*time.Second, "h1 routes to h2 via h3", func() error {
			rep, err := h1.Report()
			if err != nil {
				return err
			}
			if via, ok := netns.RouteVia(rep, name2); !ok || via != name3 {
				return fmt.Errorf("h1 routes to h2 via %q (%v)", via, ok)
			}
			return nil
		})
		c1.WaitPing(t, c2.IP, pingTimeout)
		relayed := rawReportOf(t, h3).Router.Stats["relayed"]
		tx := linkStat(t, h1, vxlanDevice, "tx_packets")
		got, out := pingCount(c1, c2.IP, 10)
		if got != 10 {
			t.Fatalf("relayed pings: %d of 10 answered:\n%s", got, out)
		}
		if d := rawReportOf(t, h3).Router.Stats["relayed"] - relayed; d < 20 {
			t.Errorf("h3 relayed %d records for 10 pings and their answers", d)
		}
		if d := linkStat(t, h1, vxlanDevice, "tx_packets") - tx; d > 5 {
			t.Errorf("h1's %s sent %d packets while h2 was reached only through h3", vxlanDevice, d)
		}
	})

	t.Run("stop", func(t *testing.T) {
		// relayed unblocked h1-h2 when it ended.
		waitPath(t, h1, h2, "fastdp", "", 60*time.Second)
		c1.WaitPing(t, c2.IP, pingTimeout)
		stopSubtest(t, h1, h2)
	})
}

// stopSubtest: a router that stops takes its VXLAN device with it, and its
// peer removes every entry towards it.
func stopSubtest(t *testing.T, h1, h2 *netns.Host) {
	if out := h1.MustRun(t, "bridge", "fdb", "show", "dev", vxlanDevice); !strings.Contains(out, "dst "+h2.Addr) {
		t.Fatalf("h1 has no entry towards h2 before it stops:\n%s", out)
	}
	h2.Stop(t)
	if r := h2.Run("ip", "link", "show", vxlanDevice); r.OK() {
		t.Errorf("h2's router stopped but %s is still there", vxlanDevice)
	}
	netns.Eventually(t, 10*time.Second, "h1 forgets its entries towards h2", func() error {
		out := h1.MustRun(t, "bridge", "fdb", "show", "dev", vxlanDevice)
		if strings.Contains(out, "dst "+h2.Addr+" ") {
			return fmt.Errorf("h1 still has entries towards h2:\n%s", out)
		}
		return nil
	})
}

// TestFastdpEncrypted: with a password nothing takes the fast path; the
// underlay shows no plaintext and the VXLAN devices send nothing.
func TestFastdpEncrypted(t *testing.T) {
	t.Parallel()
	netns.SkipUnlessRoot(t)
	w := netns.NewWorld(t, 2)
	h1, h2 := w.Hosts[0], w.Hosts[1]
	pw := writePassword(t, w, "password", "fast paths are for plain traffic")
	h1.Launch(t, "--password-file", pw)
	h2.Launch(t, "--password-file", pw, h1.PeerAddr())
	c1 := h1.AddContainer(t, "c1", "10.2.19.1/24")
	c2 := h2.AddContainer(t, "c2", "10.2.19.2/24")
	waitPath(t, h1, h2, "sleeve", "encrypted", connectTimeout)
	waitPath(t, h2, h1, "sleeve", "encrypted", connectTimeout)
	c1.WaitPing(t, c2.IP, pingTimeout)
	m := newMarkers(t)
	pcap := capture(t, h1, h2, func() { exchange(t, c1, c2, m, 7196, 7197) })
	if in := found(pcap, m); len(in) > 0 {
		t.Errorf("capture of h1's underlay contains %q in clear", in)
	}
	for _, h := range w.Hosts {
		if n := linkStat(t, h, vxlanDevice, "tx_packets"); n != 0 {
			t.Errorf("%s: %s sent %d packets in an encrypted mesh", h.Nick, vxlanDevice, n)
		}
	}
}

// pcapFile is a tcpdump running in a container, writing text to a file.
type pcapFile struct {
	c    *netns.Container
	p    *netns.Proc
	path string
	text *string
}

// startPcap starts tcpdump on the container's ethweft with filter and
// waits until it captures.
func startPcap(t *testing.T, c *netns.Container, filter string) *pcapFile {
	t.Helper()
	path := filepath.Join(c.Host.World().Dir, fmt.Sprintf("fastdp-%s-%d.pcap", c.Nick, time.Now().UnixNano()))
	p := c.Start(t, "tcpdump", "-n", "-U", "--immediate-mode", "-i", "ethweft", "-w", path, filter)
	netns.Eventually(t, 10*time.Second, c.Nick+": tcpdump started", func() error {
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		if st.Size() < 24 {
			return fmt.Errorf("%s: %d bytes", path, st.Size())
		}
		return nil
	})
	time.Sleep(200 * time.Millisecond) // the header is written just before capturing starts
	return &pcapFile{c: c, p: p, path: path}
}

// stop ends the capture (once) and returns it as tcpdump's text.
func (f *pcapFile) stop(t *testing.T) string {
	t.Helper()
	if f.text != nil {
		return *f.text
	}
	f.p.Kill()
	f.p.Wait(2 * time.Second)
	r := f.c.Run("tcpdump", "-n", "-r", f.path)
	if !r.OK() {
		t.Fatalf("%s: read capture: %v", f.c.Nick, r)
	}
	f.text = &r.Stdout
	return r.Stdout
}
