package nameserver

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxUDPSockets bounds the UDP sockets a Server binds on its address.
const maxUDPSockets = 4

// udpSockets is how many UDP sockets a Server binds on its address: one
// per two CPUs the Go runtime uses, at least one and up to maxUDPSockets.
// Each has its own serving goroutine, and the kernel spreads clients over
// them (SO_REUSEPORT), so one reading goroutine is not the bottleneck
// under load; half the CPUs stay for the clients and the data path (on
// two cores, two sockets answered 10-15% fewer queries than one, with
// twice the 99th percentile latency).
func udpSockets() int {
	return min(max(runtime.GOMAXPROCS(0)/2, 1), maxUDPSockets)
}

// listenUDP binds n UDP sockets on addr with SO_REUSEPORT (the first one
// picks the port when addr's port is 0). On error none stays bound.
func listenUDP(addr string, n int) ([]net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("set SO_REUSEPORT: %w", serr)
		}
		return nil
	}}
	var pcs []net.PacketConn
	for range n {
		pc, err := lc.ListenPacket(context.Background(), "udp", addr)
		if err != nil {
			for _, p := range pcs {
				p.Close()
			}
			return nil, err
		}
		pcs = append(pcs, pc)
		addr = pc.LocalAddr().String() // the others on the same port
	}
	return pcs, nil
}
