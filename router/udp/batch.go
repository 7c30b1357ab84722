package udp

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/router"
)

// batch is the reusable state of one recvmmsg or sendmmsg call: message
// headers, one iovec and one socket address per datagram. Its arrays grow
// to the largest batch seen and are then reused, so a call allocates
// nothing. do is the RawConn callback, bound once so that passing it does
// not allocate either.
type batch struct {
	v6     bool
	hdrs   []unix.Mmsghdr
	iovs   []unix.Iovec
	names  []unix.RawSockaddrInet6 // large enough for IPv4 too
	ctrl   []byte                  // one UDP_SEGMENT or UDP_GRO control message per datagram
	gro    bool                    // receive: ask for each datagram's UDP_GRO message
	dgrams []router.Datagram
	count  int   // messages to transfer
	n      int   // messages transferred
	err    error // errno of the first failed message
	do     func(fd uintptr) bool
}

// prepare points the headers at dgrams' buffers.
func (b *batch) prepare(dgrams []router.Datagram) {
	if len(dgrams) > len(b.hdrs) {
		b.hdrs = make([]unix.Mmsghdr, len(dgrams))
		b.iovs = make([]unix.Iovec, len(dgrams))
		b.names = make([]unix.RawSockaddrInet6, len(dgrams))
		b.ctrl = make([]byte, len(dgrams)*ctrlSpace)
	}
	b.dgrams, b.count, b.n, b.err = dgrams, len(dgrams), 0, nil
	for i := range dgrams {
		buf := dgrams[i].Buf
		iov := &b.iovs[i]
		iov.Base = nil
		if len(buf) > 0 {
			iov.Base = &buf[0]
		}
		iov.SetLen(len(buf))
		h := &b.hdrs[i]
		h.Hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Hdr.Namelen = unix.SizeofSockaddrInet6
		h.Hdr.Iov = iov
		h.Hdr.SetIovlen(1)
		h.Hdr.Control = nil
		h.Hdr.SetControllen(0)
		c := b.ctrl[i*ctrlSpace : (i+1)*ctrlSpace]
		if b.gro {
			h.Hdr.Control = &c[0]
			h.Hdr.SetControllen(len(c))
		} else if seg := dgrams[i].Segment; seg > 0 {
			putSegmentCmsg(c, seg)
			h.Hdr.Control = &c[0]
			h.Hdr.SetControllen(segCmsgSpace)
		}
		h.Hdr.Flags = 0
		h.Len = 0
	}
}

// prepareSend prepares dgrams for sending, writing each destination. It
// returns how many leading datagrams can be sent and, when a destination
// is unusable, the error for the datagram after them.
func (b *batch) prepareSend(dgrams []router.Datagram) (int, error) {
	b.prepare(dgrams)
	for i := range dgrams {
		n, ok := putSockaddr(&b.names[i], dgrams[i].Addr, b.v6)
		if !ok {
			b.count = i
			return i, ErrAddressFamily
		}
		b.hdrs[i].Hdr.Namelen = n
	}
	return len(dgrams), nil
}

// recv is the RawConn.Read callback: one recvmmsg. It returns false to wait
// for readability when nothing is queued. The call is MSG_DONTWAIT and
// never sleeps, so it is made without telling the Go scheduler (as
// router/tap does), which saves the bookkeeping of a possibly blocking
// system call on every batch.
func (b *batch) recv(fd uintptr) bool {
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])),
			uintptr(b.count), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			b.n = int(r)
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			b.err = e
			return true
		}
	}
}

// send is the RawConn.Write callback: sendmmsg (MSG_DONTWAIT, made like
// recv's) until every message is sent or one fails. It returns false to
// wait for writability when the socket buffer is full; the next call
// resumes where this one stopped.
func (b *batch) send(fd uintptr) bool {
	for b.n < b.count {
		r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[b.n])),
			uintptr(b.count-b.n), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			b.n += int(r)
		case unix.EINTR:
		case unix.EAGAIN:
			return false
		default:
			b.err = e
			return true
		}
	}
	return true
}

// addrAt decodes the source address of received message i.
func (b *batch) addrAt(i int) netip.AddrPort {
	sa := &b.names[i]
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), portFrom(&sa4.Port))
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), portFrom(&sa.Port))
	}
	return netip.AddrPort{}
}

// putSockaddr writes ap into sa for a socket of the given family and
// returns the address length.
func putSockaddr(sa *unix.RawSockaddrInet6, ap netip.AddrPort, v6 bool) (uint32, bool) {
	ip := ap.Addr()
	if !ip.IsValid() {
		return 0, false
	}
	if !v6 {
		ip = ip.Unmap()
		if !ip.Is4() {
			return 0, false
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		*sa4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ip.As4()}
		putPort(&sa4.Port, ap.Port())
		return unix.SizeofSockaddrInet4, true
	}
	*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ip.As16()}
	putPort(&sa.Port, ap.Port())
	return unix.SizeofSockaddrInet6, true
}

// portFrom reads a port stored in network byte order.
func portFrom(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// putPort stores port in network byte order.
func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

// segCmsgSpace is the size of a UDP_SEGMENT control message (a uint16);
// groCmsgSpace that of a UDP_GRO one (an int); ctrlSpace fits either.
var (
	segCmsgSpace = unix.CmsgSpace(2)
	groCmsgSpace = unix.CmsgSpace(4)
	ctrlSpace    = max(segCmsgSpace, groCmsgSpace)
)

// segmentAt returns the segment size of received message i from its
// UDP_GRO control message: the size of each coalesced datagram, or 0 when
// the message is a single datagram.
func (b *batch) segmentAt(i int) int {
	if !b.gro {
		return 0
	}
	h := &b.hdrs[i].Hdr
	c := b.ctrl[i*ctrlSpace : i*ctrlSpace+min(int(h.Controllen), ctrlSpace)]
	return groSegment(c, int(b.hdrs[i].Len))
}

// groSegment finds the UDP_GRO control message in c and returns its
// segment size when it says that a message of n bytes holds more than
// one datagram.
func groSegment(c []byte, n int) int {
	for len(c) >= unix.CmsgLen(0) {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
		l := int(h.Len)
		if l < unix.CmsgLen(0) || l > len(c) {
			return 0
		}
		if h.Level == unix.IPPROTO_UDP && h.Type == unix.UDP_GRO && l >= unix.CmsgLen(4) {
			seg := int(*(*int32)(unsafe.Pointer(&c[unix.CmsgLen(0)])))
			if seg > 0 && seg < n {
				return seg
			}
			return 0
		}
		c = c[min(len(c), unix.CmsgSpace(l-unix.CmsgLen(0))):]
	}
	return 0
}

// putSegmentCmsg writes a UDP_SEGMENT control message with the segment
// size into c.
func putSegmentCmsg(c []byte, seg int) {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
	h.Level = unix.IPPROTO_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&c[unix.CmsgLen(0)])) = uint16(seg)
}
