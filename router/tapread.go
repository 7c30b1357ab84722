package router

import "net/netip"

// tapHeadroom is the room Device.Read leaves in front of each frame: the
// datagram and record headers, so that a future single-frame fast path can
// encapsulate in place.
const tapHeadroom = HeaderLen + RecordHeaderLen

// tapBufLen holds the largest frame a record can carry, after headroom.
const tapBufLen = tapHeadroom + 65535

// tapReader is the goroutine reading frames from the device, or from
// one queue of a MultiQueue device.
type tapReader struct {
	forwarder
	dev   Device
	bufs  [][]byte
	sizes []int
}

func newTAPReader(r *Router, dev Device) *tapReader {
	n := r.cfg.BatchSize
	t := &tapReader{
		forwarder: newForwarder(r, r.tapStats, n),
		dev:       dev,
		bufs:      make([][]byte, n),
		sizes:     make([]int, n),
	}
	for i := range t.bufs {
		t.bufs[i] = make([]byte, tapBufLen)
	}
	return t
}

// run reads batches until the device is closed or keeps failing.
func (t *tapReader) run() error {
	var errs errorRun
	for {
		n, err := t.dev.Read(t.bufs, t.sizes, tapHeadroom)
		if n > 0 {
			t.handle(n)
		}
		if err := errs.check(t.r, "read device", err); err != nil {
			return err
		}
	}
}

// handle switches the first n frames read.
func (t *tapReader) handle(n int) {
	t.begin()
	var bytes uint64
	for i := range n {
		fr := t.bufs[i][tapHeadroom : tapHeadroom+t.sizes[i]]
		bytes += uint64(len(fr))
		t.vhdr = nil
		if t.r.vnet {
			if h := t.bufs[i][tapHeadroom-VnetHdrLen : tapHeadroom]; !vnetPlain(h) {
				t.vhdr = h
			}
		}
		t.frame(fr)
	}
	t.vhdr = nil
	t.st.tapFramesIn.Add(uint64(n))
	t.st.tapBytesIn.Add(bytes)
	t.finish()
}

// frame switches one captured frame.
func (t *tapReader) frame(fr []byte) {
	if len(fr) < EthernetHeaderLen || fr[6]&1 != 0 {
		t.st.drops[dropBadFrame].Add(1)
		return
	}
	if isLinkLocal(fr) {
		t.st.drops[dropLinkLocal].Add(1)
		return
	}
	if len(t.r.cfg.HostLocal) > 0 && isHostLocalARP(fr, t.r.cfg.HostLocal) {
		t.st.drops[dropHostLocal].Add(1)
		return
	}
	self := t.r.self
	switch t.learn(fr[6:12], self) {
	case learnLoop:
		t.st.drops[dropLoop].Add(1)
		return
	case learnMoved:
		t.noteMoved(fr[6:12], self)
	}
	if fr[0]&1 == 0 {
		if owner, ok := t.lookup(fr[0:6]); ok {
			if owner == self {
				return // the bridge delivered it already
			}
			if t.unicast(self, owner, fr, true) {
				t.noteMiss(fr[0:6], owner)
				return
			}
			// No route to the owner (any more): flood, so that the
			// owner's new location answers and is learned.
		}
	}
	t.st.flooded.Add(1)
	t.broadcast(self, fr, true)
}

// isLinkLocal reports whether the frame goes to an IEEE 802.1D reserved
// link-local group address 01:80:c2:00:00:0x (STP BPDUs, pause, LACP,
// LLDP), which bridges never forward.
func isLinkLocal(fr []byte) bool {
	return fr[0] == 0x01 && fr[1] == 0x80 && fr[2] == 0xc2 && fr[3] == 0 && fr[4] == 0 && fr[5]&0xf0 == 0
}

// isHostLocalARP reports whether the frame is an IPv4 ARP packet whose
// sender or target address is one of the host-local addresses.
func isHostLocalARP(fr []byte, local []netip.Addr) bool {
	if len(fr) < 42 || fr[12] != 0x08 || fr[13] != 0x06 || fr[16] != 0x08 || fr[17] != 0x00 {
		return false
	}
	spa := netip.AddrFrom4([4]byte(fr[28:32]))
	tpa := netip.AddrFrom4([4]byte(fr[38:42]))
	for _, a := range local {
		if a == spa || a == tpa {
			return true
		}
	}
	return false
}
