package daemon

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// tcpRTT is the round-trip time of a TCP connection as the kernel measures
// it, for mesh.Config.ConnRTT: the lowest sample of the last five minutes
// (TCP_INFO's tcpi_min_rtt; net.ipv4.tcp_min_rtt_wlen), or the smoothed
// RTT before there is one. Not the smoothed RTT itself: a control
// connection carries small messages far apart, and most of its samples
// include the peer's delayed acknowledgement (tens of milliseconds between
// two namespaces of one machine). 0 for a connection that is not a
// socket, or whose information cannot be read (closed meanwhile).
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
			us := info.Min_rtt
			if us == 0 || us == ^uint32(0) { // no sample yet
				us = info.Rtt
			}
			rtt = time.Duration(us) * time.Microsecond
		}
	})
	return rtt
}
