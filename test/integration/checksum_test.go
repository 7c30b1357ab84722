package integration

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/test/netns"
)

// weft carries the checksums of TCP frames unfinished (a partial checksum
// in the virtio-net header: where the sum starts and where it goes) and
// writes them into the receiving TAP that way. Between namespaces the
// kernel trusts such a frame without computing its checksum, so the
// transfers of the data path matrix pass even when weft delivers a wrong
// checksum offset with a frame that is not a super-frame (tried: they do).
// Here every frame leaves weft's path through a device that computes
// checksums and cuts segments in software (ethtool tx, tso and gso off),
// into a receiver that checks every checksum itself (rx off), both into a
// container and out of the host through IP forwarding: a wrong offset, or
// a super-frame header software segmentation cannot follow, makes the
// transfer stall or arrive damaged (tried: both fail this test).

// checksumTransferSize is the size of each transfer in this test.
const checksumTransferSize = 50 << 20

// TestChecksumsWhereFramesLeave sends TCP both ways between containers on
// two hosts, then between a container and a namespace outside weft that
// one host routes to (weft expose, IP forwarding), with every receiver
// verifying checksums. In the "mixed" world the second host runs without
// offloads (WEFT_NO_OFFLOAD=1), as on a kernel without virtio-net headers:
// its router must cut the first host's super-frames into segments and
// compute their checksums itself.
func TestChecksumsWhereFramesLeave(t *testing.T) {
	t.Parallel()
	netns.SkipUnlessRoot(t)
	src, sum := randomFile(t, checksumTransferSize)
	for _, mixed := range []bool{false, true} {
		name := "offloads"
		if mixed {
			name = "mixed"
		}
		t.Run(name, func(t *testing.T) { testChecksums(t, mixed, src, sum) })
	}
}

func testChecksums(t *testing.T, mixed bool, src string, sum [32]byte) {
	w := netns.NewWorld(t, 2)
	h1, h2 := w.Hosts[0], w.Hosts[1]
	h1.Launch(t)
	launchVariant(t, h2, datapathVariant{noOffload: mixed}, h1.PeerAddr())
	waitConnWord(t, h1, h2, "unencrypted")
	waitConnWord(t, h2, h1, "unencrypted")
	c1 := h1.AddContainer(t, "c1", "10.2.7.1/24")
	c2 := h2.AddContainer(t, "c2", "10.2.7.2/24")
	for _, c := range []*netns.Container{c1, c2} {
		softwareChecksums(t, c.Host, hostVeth(t, c))
		c.MustRun(t, "ethtool", "-K", "ethweft", "rx", "off")
	}
	c1.WaitPing(t, c2.IP, pingTimeout)
	// In the mixed world h2's router segments what h1 sends.
	segmented := func(transfer func()) {
		before := rawReportOf(t, h2).Router.Stats["segmented"]
		superFrames(t, h1, transfer)
		after := rawReportOf(t, h2).Router.Stats["segmented"]
		t.Logf("%s cut %d segments from super-frames", h2.Nick, after-before)
		if mixed && after == before {
			t.Errorf("%s runs without offloads but segmented nothing", h2.Nick)
		}
		if !mixed && after != before {
			t.Errorf("%s has offloads but segmented %d frames", h2.Nick, after-before)
		}
	}

	t.Run("container-to-container", func(t *testing.T) {
		segmented(func() { bigTransfer(t, c1, c2, src, sum, 7401) })
		if mixed {
			bigTransfer(t, c2, c1, src, sum, 7402)
		} else {
			superFrames(t, h2, func() { bigTransfer(t, c2, c1, src, sum, 7402) })
		}
	})

	t.Run("container-to-container-ipv6", func(t *testing.T) {
		// IPv6 TCP (TSO6 super-frames) between the containers' link-local
		// addresses, which every interface has.
		c1v6, c2v6 := *c1, *c2
		c1v6.IP, c2v6.IP = linkLocal(t, c1), linkLocal(t, c2)
		segmented(func() { bigTransfer(t, &c1v6, &c2v6, src, sum, 7405) })
		bigTransfer(t, &c2v6, &c1v6, src, sum, 7406)
	})

	t.Run("out-of-the-host", func(t *testing.T) {
		// h2 joins the weft network and routes between it and "outside",
		// a namespace on a veth of its own.
		h2.MustWeft(t, "expose", "10.2.7.254/24")
		out := h2.NewContainer(t, "outside")
		h2.MustRun(t, "ip", "link", "add", "wo", "type", "veth", "peer", "name", "eth0", "netns", out.Name)
		h2.MustRun(t, "ip", "addr", "add", "10.77.0.254/24", "dev", "wo")
		h2.MustRun(t, "ip", "link", "set", "wo", "up")
		h2.MustRun(t, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
		softwareChecksums(t, h2, "wo")
		out.MustRun(t, "ip", "addr", "add", "10.77.0.1/24", "dev", "eth0")
		out.MustRun(t, "ip", "link", "set", "eth0", "up")
		out.MustRun(t, "ip", "route", "add", "default", "via", "10.77.0.254")
		out.MustRun(t, "ethtool", "-K", "eth0", "rx", "off")
		out.IP = "10.77.0.1"
		c1.MustRun(t, "ip", "route", "add", "10.77.0.0/24", "via", "10.2.7.254")
		c1.WaitPing(t, out.IP, pingTimeout)
		segmented(func() { bigTransfer(t, c1, out, src, sum, 7403) })
		bigTransfer(t, out, c1, src, sum, 7404)
	})

	t.Run("drops", func(t *testing.T) {
		for _, h := range w.Hosts {
			stats := rawReportOf(t, h).Router.Stats
			for _, k := range corruptionDrops {
				if n := stats[k]; n != 0 {
					t.Errorf("%s: %s = %d after the transfers, want 0", h.Nick, k, n)
				}
			}
		}
	})
}

// softwareChecksums turns off checksum offload and segmentation on dev in
// h's namespace, so that the kernel computes checksums and cuts TCP
// segments itself when frames leave through it.
func softwareChecksums(t *testing.T, h *netns.Host, dev string) {
	t.Helper()
	h.MustRun(t, "ethtool", "-K", dev, "tx", "off", "tso", "off", "gso", "off")
	out := h.MustRun(t, "ethtool", "-k", dev)
	for _, feature := range []string{"tx-checksumming", "tcp-segmentation-offload", "generic-segmentation-offload"} {
		if !strings.Contains(out, feature+": off") {
			t.Fatalf("%s: ethtool -K %s did not turn %s off:\n%s", h.Nick, dev, feature, out)
		}
	}
}

var iflinkRE = regexp.MustCompile(`ethweft@if(\d+):`)

// hostVeth returns the name of the host end of c's veth: the interface
// whose index ethweft's peer index names.
func hostVeth(t *testing.T, c *netns.Container) string {
	t.Helper()
	m := iflinkRE.FindStringSubmatch(c.MustRun(t, "ip", "-o", "link", "show", "ethweft"))
	if m == nil {
		t.Fatalf("%s: cannot tell the peer of ethweft", c.Nick)
	}
	re := regexp.MustCompile(`(?m)^` + m[1] + `: ([^:@]+)[@:]`)
	hm := re.FindStringSubmatch(c.Host.MustRun(t, "ip", "-o", "link", "show"))
	if hm == nil {
		t.Fatalf("%s: no interface %s in %s", c.Nick, m[1], c.Host.Nick)
	}
	return hm[1]
}

// superFrames runs transfer and fails the test unless h's router read TCP
// super-frames from its TAP meanwhile: only then did partial checksums
// cross weft.
func superFrames(t *testing.T, h *netns.Host, transfer func()) {
	t.Helper()
	before := rawReportOf(t, h).Router.Stats
	transfer()
	after := rawReportOf(t, h).Router.Stats
	frames := after["tap_frames_in"] - before["tap_frames_in"]
	bytes := after["tap_bytes_in"] - before["tap_bytes_in"]
	if frames == 0 {
		t.Fatalf("%s: tap_frames_in did not grow during the transfer", h.Nick)
	}
	if avg := bytes / frames; avg <= maxPlainFrame {
		t.Errorf("%s read frames of %d bytes on average from its TAP: no TCP super-frames, so no partial checksums crossed", h.Nick, avg)
	} else {
		t.Logf("%s read %d frames, %d bytes on average", h.Nick, frames, avg)
	}
}

var linkLocalRE = regexp.MustCompile(`inet6 (fe80::[0-9a-f:]+)/64 scope link`)

// linkLocal returns c's IPv6 link-local address on ethweft, scoped to it
// as a peer on the same link reaches it, once duplicate address detection
// is over.
func linkLocal(t *testing.T, c *netns.Container) string {
	t.Helper()
	var addr string
	netns.Eventually(t, 10*time.Second, c.Nick+" has a link-local IPv6 address", func() error {
		out := c.MustRun(t, "ip", "-6", "addr", "show", "dev", "ethweft")
		m := linkLocalRE.FindStringSubmatch(out)
		if m == nil || strings.Contains(out, "tentative") {
			return fmt.Errorf("none yet:\n%s", out)
		}
		addr = m[1]
		return nil
	})
	return addr + "%ethweft"
}
