package netdev

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// arpTimers are weave's neighbour settings for the inner interface: an
// address moved to another target (and MAC) is learnt within seconds.
var arpTimers = []struct{ name, value string }{
	{"base_reachable_time", "5"},
	{"delay_first_probe_time", "2"},
	{"ucast_solicit", "1"},
}

// setARPTimers writes the ARP sysctls of ethweft. It must run on a thread
// inside the target's namespace, since /proc/sys/net shows the namespace
// of the thread that opens it.
func setARPTimers() error {
	for _, s := range arpTimers {
		path := "/proc/sys/net/ipv4/neigh/" + ContainerIf + "/" + s.name
		if err := os.WriteFile(path, []byte(s.value), 0o644); err != nil {
			return fmt.Errorf("set %s: %w", s.name, err)
		}
	}
	return nil
}

// announce broadcasts a gratuitous ARP request for each IPv4 address, so
// that neighbours replace a stale MAC for a reused address. It must run on
// a thread inside the target's namespace.
func announce(link netlink.Link, addrs []netip.Prefix) error {
	mac := link.Attrs().HardwareAddr
	if len(mac) != 6 {
		return errors.New("announce: interface has no Ethernet address")
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{
		Protocol: htons(unix.ETH_P_ARP),
		Ifindex:  link.Attrs().Index,
		Halen:    6,
		Addr:     [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	}
	var errs []error
	for _, p := range addrs {
		if !p.Addr().Is4() {
			continue
		}
		if err := unix.Sendto(fd, gratuitousARP(mac, p.Addr()), 0, to); err != nil {
			errs = append(errs, fmt.Errorf("announce %s: %w", p.Addr(), err))
		}
	}
	return errors.Join(errs...)
}

// gratuitousARP builds a broadcast ARP request whose sender and target
// address are both ip.
func gratuitousARP(mac []byte, ip netip.Addr) []byte {
	a := ip.As4()
	f := make([]byte, 0, 42)
	f = append(f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	f = append(f, mac...)
	f = append(f, 0x08, 0x06) // ARP
	f = append(f, 0, 1, 0x08, 0x00, 6, 4, 0, 1)
	f = append(f, mac...)
	f = append(f, a[:]...)
	f = append(f, 0, 0, 0, 0, 0, 0)
	f = append(f, a[:]...)
	return f
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
