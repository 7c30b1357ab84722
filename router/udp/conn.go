// Package udp is the data socket of the mesh: a UDP socket that implements
// router.Transport with batched system calls (recvmmsg and sendmmsg) and
// the "don't fragment" bit on every datagram.
//
// Where the kernel offers them, the socket also uses UDP segmentation
// offload (UDP_SEGMENT: one send hands the kernel a train of up to 64
// equal-sized datagrams) and UDP receive coalescing (UDP_GRO: one receive
// may bring a train of datagrams from one sender, reported through
// router.Datagram.Segment). Options turns either off.
//
// The socket is set to IP_PMTUDISC_PROBE: the kernel sets DF but ignores
// its own path MTU cache, so the router can probe the path MTU itself and
// the only size limit the kernel enforces is the outgoing interface's MTU
// (a larger datagram fails with EMSGSIZE).
//
// Goroutines: the package starts none. ReadBatch is called by one reader
// goroutine (the router's); WriteBatch may be called by several, which take
// turns on a mutex that guards the reused send state. Neither allocates in
// steady state.
package udp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/router"
)

var _ router.Transport = (*Conn)(nil)

// socketBufferSize is the receive and send buffer size asked of the kernel.
const socketBufferSize = 4 << 20

// Conn is a batched UDP socket. Create it with Listen.
type Conn struct {
	conn *net.UDPConn
	raw  syscall.RawConn
	port uint16
	v6   bool // an AF_INET6 socket (IPv6 only)

	rx batch // owned by the one ReadBatch caller

	txMu sync.Mutex
	tx   batch // guarded by txMu

	// gso is set when the kernel takes UDP_SEGMENT trains (a path may
	// still refuse one: WriteBatch returns router.ErrTrainRefused).
	gso bool
	// gro is set when the kernel may coalesce received datagrams.
	gro bool
}

// Options chooses the socket's offloads. The zero value turns on every
// offload the kernel offers.
type Options struct {
	// NoGSO keeps UDP segmentation offload off: every datagram is sent
	// on its own.
	NoGSO bool
	// NoGRO keeps UDP receive coalescing off: every datagram is received
	// on its own.
	NoGRO bool
}

// maxSegments is the kernel's limit on datagrams per UDP_SEGMENT train.
const maxSegments = 64

var _ router.Segmenter = (*Conn)(nil)

// MaxSegments implements router.Segmenter: 64 while the kernel accepts
// UDP segmentation offload on this socket, else 0.
func (c *Conn) MaxSegments() int {
	if c.gso {
		return maxSegments
	}
	return 0
}

// Listen opens a UDP socket bound to addr. Port 0 picks an ephemeral port.
// An invalid or IPv4 address gives an IPv4 socket (an invalid address binds
// all IPv4 addresses); an IPv6 address gives an IPv6-only socket.
func Listen(addr netip.AddrPort) (*Conn, error) {
	return ListenOptions(addr, Options{})
}

// ListenOptions is Listen with a choice of offloads.
func ListenOptions(addr netip.AddrPort, opts Options) (*Conn, error) {
	return openSocket(addr, opts, false)
}

// bindAddr is the network and address to bind for addr (see Listen).
func bindAddr(addr netip.AddrPort) (string, *net.UDPAddr) {
	network := "udp4"
	ip := addr.Addr()
	if !ip.IsValid() {
		ip = netip.IPv4Unspecified()
	}
	if ip.Is6() && !ip.Is4In6() {
		network = "udp6"
	}
	return network, net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip.Unmap(), addr.Port()))
}

// openSocket opens one socket on addr, with SO_REUSEPORT when reusePort.
func openSocket(addr netip.AddrPort, opts Options, reusePort bool) (*Conn, error) {
	network, ua := bindAddr(addr)
	var lc net.ListenConfig
	if reusePort {
		lc.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	pc, err := lc.ListenPacket(context.Background(), network, ua.String())
	if err != nil {
		return nil, fmt.Errorf("udp listen %s: %w", addr, err)
	}
	uc := pc.(*net.UDPConn)
	c, err := newConn(uc, network == "udp6", opts)
	if err != nil {
		uc.Close()
		return nil, fmt.Errorf("udp listen %s: %w", addr, err)
	}
	return c, nil
}

func newConn(uc *net.UDPConn, v6 bool, opts Options) (*Conn, error) {
	raw, err := uc.SyscallConn()
	if err != nil {
		return nil, err
	}
	c := &Conn{conn: uc, raw: raw, v6: v6}
	c.port = uc.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	if err := c.setOptions(opts); err != nil {
		return nil, err
	}
	c.rx.do = c.rx.recv
	c.tx.do = c.tx.send
	c.rx.v6, c.tx.v6 = v6, v6
	c.rx.gro = c.gro
	return c, nil
}

// setOptions sets DF without the kernel's PMTU cache, large buffers and
// the offloads opts allows and the kernel knows.
func (c *Conn) setOptions(opts Options) error {
	var serr error
	err := c.raw.Control(func(fd uintptr) {
		s := int(fd)
		if c.v6 {
			serr = unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_PROBE)
			if serr == nil {
				serr = unix.SetsockoptInt(s, unix.IPPROTO_IPV6, unix.IPV6_DONTFRAG, 1)
			}
		} else {
			serr = unix.SetsockoptInt(s, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE)
		}
		if serr != nil {
			serr = fmt.Errorf("set path MTU discovery: %w", serr)
			return
		}
		setBuffer(s, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF)
		setBuffer(s, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF)
		// Kernels since 4.18 know UDP_SEGMENT; reading it tells.
		if _, err := unix.GetsockoptInt(s, unix.IPPROTO_UDP, unix.UDP_SEGMENT); err == nil && !opts.NoGSO {
			c.gso = true
		}
		// Kernels since 5.0 coalesce for a socket that asks.
		if !opts.NoGRO && unix.SetsockoptInt(s, unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil {
			c.gro = true
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// setBuffer asks for socketBufferSize with the privileged option and falls
// back to the ordinary one, which the kernel caps at its sysctl maximum.
// A smaller buffer is not an error.
func setBuffer(fd, force, normal int) {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, socketBufferSize) == nil {
		return
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, normal, socketBufferSize)
}

// Offloads reports which offloads the socket uses: "udp_gso" (sending
// trains with UDP_SEGMENT) and "udp_gro" (receiving coalesced trains).
func (c *Conn) Offloads() map[string]bool {
	return map[string]bool{"udp_gso": c.gso, "udp_gro": c.gro}
}

// LocalPort is the UDP port the socket is bound to.
func (c *Conn) LocalPort() uint16 { return c.port }

// LocalAddr is the address the socket is bound to.
func (c *Conn) LocalAddr() netip.AddrPort {
	return c.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Close closes the socket; blocked ReadBatch and WriteBatch calls return an
// error that wraps net.ErrClosed.
func (c *Conn) Close() error {
	if err := c.conn.Close(); err != nil {
		return fmt.Errorf("udp close: %w", err)
	}
	return nil
}

// ReadBatch blocks until at least one datagram arrives, then fills up to
// len(dgrams) datagrams (Buf[:N], Addr and Segment) and returns how many.
// With receive coalescing on, Buf[:N] may hold a train of datagrams from
// Addr, each Segment bytes long but the last; buffers should then hold
// 65535 bytes. A datagram cut short by a smaller buffer comes back with
// N 0.
func (c *Conn) ReadBatch(dgrams []router.Datagram) (int, error) {
	if len(dgrams) == 0 {
		return 0, nil
	}
	b := &c.rx
	b.prepare(dgrams)
	if err := c.raw.Read(b.do); err != nil {
		b.dgrams = nil
		return 0, fmt.Errorf("udp read: %w", err)
	}
	n, err := b.n, b.err
	b.dgrams = nil
	if err != nil {
		return 0, fmt.Errorf("udp read: %w", err)
	}
	for i := range n {
		d := &dgrams[i]
		d.N = int(b.hdrs[i].Len)
		d.Addr = b.addrAt(i)
		d.Segment = b.segmentAt(i)
		if b.hdrs[i].Hdr.Flags&unix.MSG_TRUNC != 0 {
			d.N = 0
		}
	}
	return n, nil
}

// WriteBatch sends every datagram whole to its Addr and returns how many
// were sent. It stops at the first datagram the kernel refuses and returns
// the count sent before it with an error that wraps the errno, so that
// errors.Is(err, syscall.EMSGSIZE) tells a datagram larger than the
// interface MTU.
func (c *Conn) WriteBatch(dgrams []router.Datagram) (int, error) {
	if len(dgrams) == 0 {
		return 0, nil
	}
	c.txMu.Lock()
	defer c.txMu.Unlock()
	b := &c.tx
	count, addrErr := b.prepareSend(dgrams)
	if count > 0 {
		if err := c.raw.Write(b.do); err != nil {
			n := b.n
			b.dgrams = nil
			return n, fmt.Errorf("udp write: %w", err)
		}
	}
	n, err := b.n, b.err
	b.dgrams = nil
	if err == nil && n == count {
		err = addrErr
	}
	if err != nil {
		if dgrams[n].Segment > 0 && (errors.Is(err, unix.EIO) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP)) {
			// The path to this address cannot segment (IPsec; before
			// Linux 6.11 a device without checksum offload; a segment
			// larger than its MTU): the router sends the train
			// datagram by datagram.
			// Other addresses may take trains, so the socket keeps
			// offering them.
			return n, fmt.Errorf("udp write to %s: %w: %w", dgrams[n].Addr, router.ErrTrainRefused, err)
		}
		return n, fmt.Errorf("udp write to %s: %w", dgrams[n].Addr, err)
	}
	return n, nil
}
