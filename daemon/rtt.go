package daemon

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// tcpRTT is the kernel's smoothed round-trip time of a TCP connection
// (TCP_INFO's tcpi_rtt), for mesh.Config.ConnRTT: 0 for a connection that
// is not a socket, or whose information cannot be read (closed meanwhile).
// The kernel updates it with every acknowledged segment; an idle control
// connection still exchanges heartbeats and gossip.
func tcpRTT(nc net.Conn) time.Duration {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return 0
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	var rtt time.Duration
	raw.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			rtt = time.Duration(info.Rtt) * time.Microsecond
		}
	})
	return rtt
}
