package integration

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"

	"github.com/weftnet/weft/router"
	"github.com/weftnet/weft/test/netns"
)

var mtuField = regexp.MustCompile(`MTU:(\d+)`)

// connMTU returns the verified MTU of h's established connection to other,
// from its report.
func connMTU(h, other *netns.Host) (int, error) {
	conns, err := h.ConnectionsWith(other)
	if err != nil {
		return 0, err
	}
	for _, c := range conns {
		if c.State != "established" {
			continue
		}
		if m := mtuField.FindStringSubmatch(c.Line); m != nil {
			return strconv.Atoi(m[1])
		}
	}
	return 0, fmt.Errorf("%s: no established connection with an mtu to %s: %+v", h.Nick, other.Nick, conns)
}

// TestPathMTU: h1's underlay link has MTU 1200 (both ends), the rest of
// the underlay 1500, so frames from h2 that do not fit are dropped silently
// on the way to h1 unless weft measured the path. Pings with 1400 bytes of
// payload and a TCP transfer must still get through in both directions: weft
// answers with ICMP "fragmentation needed" or fragments. The path MTU is
// found exactly, and the connections that do not cross h1's link (h2-h3)
// keep the full one.
func TestPathMTU(t *testing.T) {
	t.Parallel()
	w := netns.NewWorld(t, 3)
	h1, h2, h3 := w.Hosts[0], w.Hosts[1], w.Hosts[2]
	h1.SetUnderlayMTU(t, 1200)
	h1.Launch(t)
	h2.Launch(t, h1.PeerAddr())
	h3.Launch(t, h1.PeerAddr())
	small := 1200 - router.UnderlayOverhead - router.FrameOverhead
	full := 1500 - router.UnderlayOverhead - router.FrameOverhead
	for _, tc := range []struct {
		a, b *netns.Host
		want int
	}{{h2, h1, small}, {h1, h2, small}, {h3, h1, small}, {h2, h3, full}, {h3, h2, full}} {
		netns.Eventually(t, connectTimeout, fmt.Sprintf("%s's path MTU to %s is %d", tc.a.Nick, tc.b.Nick, tc.want), func() error {
			got, err := connMTU(tc.a, tc.b)
			if err == nil && got != tc.want {
				err = fmt.Errorf("mtu=%d", got)
			}
			return err
		})
	}
	c1 := h1.AddContainer(t, "c1", "10.2.1.1/24")
	c2 := h2.AddContainer(t, "c2", "10.2.1.2/24")
	c1.WaitPing(t, c2.IP, pingTimeout)
	c2.WaitPing(t, c1.IP, pingTimeout)

	for _, size := range []int{1400, 3000} {
		for _, pair := range [][2]*netns.Container{{c1, c2}, {c2, c1}} {
			a, b := pair[0], pair[1]
			netns.Eventually(t, pingTimeout, "large ping "+a.Nick+" -> "+b.Nick, func() error {
				return a.Ping(b.IP, size)
			})
		}
	}
	transfer(t, c2, c1, 2<<20, 7003)
	transfer(t, c1, c2, 2<<20, 7004)

	// The fast path's heartbeats are full-sized, so they are its path MTU
	// probe: h2's and h3's (1406 bytes of MTU plus VXLAN's 50 on the wire)
	// do not fit h1's link, and their connections with h1 stay on
	// the userspace path, while h2-h3 takes the fast path.
	waitPath(t, h2, h3, "fastdp", "", connectTimeout)
	waitPath(t, h3, h2, "fastdp", "", connectTimeout)
	for _, p := range [][2]*netns.Host{{h1, h2}, {h2, h1}, {h1, h3}, {h3, h1}} {
		if path, why, err := pathOf(p[0], p[1]); err != nil || path != "sleeve" {
			t.Errorf("%s-%s: path %q (%s, %v), want sleeve: full-sized frames do not fit", p[0].Nick, p[1].Nick, path, why, err)
		}
	}
}
