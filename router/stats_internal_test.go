package router

import "testing"

// TestPeerCountersSuperFrames: a super-frame cut into segments counts as
// one frame on both ends, its datagrams and bytes each.
func TestPeerCountersSuperFrames(t *testing.T) {
	for _, tc := range superVariants() {
		t.Run(tc.name, func(t *testing.T) {
			p := newSuperPair(t, tc.suite)
			p.fillSuper(8, superFrameLen)
			p.roundTrip(8)
			ca, cb := (*p.a.conns.Load())[peerB], (*p.b.conns.Load())[peerA]
			if tx, rx := ca.pc.txFrames.Load(), cb.pc.rxFrames.Load(); tx != 8 || rx != 8 {
				t.Errorf("frames: a sent %d, b received %d; want 8 and 8", tx, rx)
			}
			if tx, rx := ca.pc.txDatagrams.Load(), cb.pc.rxDatagrams.Load(); tx != rx || tx < 8*(superFrameLen/1500) {
				t.Errorf("datagrams: a sent %d, b received %d; want equal, at least %d", tx, rx, 8*(superFrameLen/1500))
			}
			if tx, rx := ca.pc.txBytes.Load(), cb.pc.rxBytes.Load(); tx != rx || tx < 8*superFrameLen {
				t.Errorf("bytes: a sent %d, b received %d; want equal, at least %d", tx, rx, 8*superFrameLen)
			}
		})
	}
}
