package udp

import (
	"fmt"
	"net"
	"net/netip"
)

// ListenGroup opens n sockets on addr that share its port with
// SO_REUSEPORT. The kernel hands the datagrams of each remote address and
// port to one socket of the group, chosen by a hash, so that a reader per
// socket spreads the peers over cores while each peer's datagrams stay on
// one socket, in order. All of them send from the same port.
//
// With SO_REUSEPORT a second program could share the port without notice,
// so a port given explicitly is first bound without it: when that fails
// (another router has the port) ListenGroup fails the same way Listen
// would. A group holds its port against later plain binds too. Port 0
// gives the group an ephemeral port. n <= 1 is ListenOptions.
func ListenGroup(addr netip.AddrPort, opts Options, n int) ([]*Conn, error) {
	if n <= 1 {
		c, err := ListenOptions(addr, opts)
		if err != nil {
			return nil, err
		}
		return []*Conn{c}, nil
	}
	if addr.Port() != 0 {
		network, ua := bindAddr(addr)
		probe, err := net.ListenUDP(network, ua)
		if err != nil {
			return nil, fmt.Errorf("udp listen %s: %w", addr, err)
		}
		probe.Close()
	}
	group := make([]*Conn, 0, n)
	for range n {
		c, err := openSocket(addr, opts, true)
		if err != nil {
			for _, g := range group {
				g.Close()
			}
			return nil, fmt.Errorf("udp listen group of %d: %w", n, err)
		}
		group = append(group, c)
		addr = netip.AddrPortFrom(addr.Addr(), c.LocalPort())
	}
	return group, nil
}
