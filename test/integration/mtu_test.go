package integration

import (
	"testing"

	"github.com/weftnet/weft/test/netns"
)

// TestPathMTU: h1's underlay link has MTU 1200 (both ends), the rest of
// the underlay 1500, so frames from h2 that do not fit are dropped silently
// on the way to h1 unless weft measured the path. Pings with 1400 bytes of
// payload and a TCP transfer must still get through in both directions: weft
// answers with ICMP "fragmentation needed" or fragments.
func TestPathMTU(t *testing.T) {
	t.Parallel()
	w := netns.NewWorld(t, 2)
	h1, h2 := w.Hosts[0], w.Hosts[1]
	h1.SetUnderlayMTU(t, 1200)
	h1.Launch(t)
	h2.Launch(t, h1.PeerAddr())
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
}
