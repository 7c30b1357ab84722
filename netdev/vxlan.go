package netdev

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/router/fastdp"
)

// vxlanAgeing is how long, in seconds, the device keeps an entry that no
// received frame refreshed.
const vxlanAgeing = 360

// VXLANConfig describes the fast path's VXLAN device.
type VXLANConfig struct {
	// Name is the device's name; a link of that name is replaced.
	Name string
	// Bridge is the weft bridge the device becomes a port of.
	Bridge string
	// TAP is the router's TAP, a port of Bridge. It and the device are
	// both made isolated ports: no frame passes between the two, so a
	// frame never takes both paths and never loops between them.
	TAP string
	// Port is the UDP port VXLAN packets are sent to and received on.
	Port int
	// VNI is the VXLAN network identifier.
	VNI int
	// MTU is the device's MTU: the weft network's.
	MTU int
	// HeartbeatMAC is this router's heartbeat MAC: frames to it are read
	// by the heartbeat socket and stop at the device's bridge port.
	HeartbeatMAC fastdp.MAC
}

// VXLAN is the fast path's VXLAN device on the weft bridge: it implements
// fastdp.Kernel. Its forwarding entries are the device's own (NTF_SELF:
// MAC → remote underlay address) paired with the bridge's entry for the
// same MAC on the device's port (NTF_MASTER). Heartbeats travel through
// an AF_PACKET socket bound to the device for fastdp.EtherType.
type VXLAN struct {
	name   string
	index  int
	bridge int
	sock   *os.File
}

var _ fastdp.Kernel = (*VXLAN)(nil)

// OpenVXLAN creates the VXLAN device (learning on, outer DF set, no
// default destination, so that nothing is flooded through it), makes it
// a port of the bridge that floods nothing to it, isolates it and the TAP
// from each other, and opens its heartbeat socket. DeleteLink(cfg.Name)
// removes the device.
func OpenVXLAN(cfg VXLANConfig) (*VXLAN, error) {
	v, err := openVXLAN(cfg)
	if err != nil {
		DeleteLink(cfg.Name)
		return nil, fmt.Errorf("fast path device %s: %w", cfg.Name, err)
	}
	return v, nil
}

func openVXLAN(cfg VXLANConfig) (*VXLAN, error) {
	if cfg.Port <= 0 || cfg.Port > 65535 || cfg.VNI <= 0 || cfg.VNI >= 1<<24 || cfg.MTU < 68 {
		return nil, fmt.Errorf("port %d, VNI %d, MTU %d: %w", cfg.Port, cfg.VNI, cfg.MTU, ErrBadVXLAN)
	}
	h := host()
	br, err := bridgeLink(h, cfg.Bridge)
	if err != nil {
		return nil, err
	}
	if err := DeleteLink(cfg.Name); err != nil {
		return nil, err
	}
	if err := createVXLAN(cfg); err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	link, err := h.LinkByName(cfg.Name)
	if err != nil {
		return nil, err
	}
	if err := h.LinkSetMasterByIndex(link, br.Attrs().Index); err != nil {
		return nil, fmt.Errorf("add to bridge: %w", err)
	}
	if err := setPortFlags(link.Attrs().Index, map[int]bool{
		nl.IFLA_BRPORT_UNICAST_FLOOD: false,
		nl.IFLA_BRPORT_MCAST_FLOOD:   false,
		nl.IFLA_BRPORT_BCAST_FLOOD:   false,
		nl.IFLA_BRPORT_LEARNING:      true,
		nl.IFLA_BRPORT_ISOLATED:      true,
	}); err != nil {
		return nil, fmt.Errorf("set bridge port flags: %w", err)
	}
	tap, err := h.LinkByName(cfg.TAP)
	if err != nil {
		return nil, fmt.Errorf("find TAP %s: %w", cfg.TAP, err)
	}
	if err := setPortFlags(tap.Attrs().Index, map[int]bool{nl.IFLA_BRPORT_ISOLATED: true}); err != nil {
		return nil, fmt.Errorf("isolate TAP %s: %w", cfg.TAP, err)
	}
	v := &VXLAN{name: cfg.Name, index: link.Attrs().Index, bridge: br.Attrs().Index}
	// Our own heartbeats, once read, must not be flooded to the
	// containers: the bridge drops a frame whose port is its arrival port.
	if err := h.NeighSet(&netlink.Neigh{LinkIndex: v.index, Family: unix.AF_BRIDGE, Flags: netlink.NTF_MASTER,
		State: netlink.NUD_NOARP, HardwareAddr: net.HardwareAddr(cfg.HeartbeatMAC[:])}); err != nil {
		return nil, fmt.Errorf("add bridge entry for the heartbeat MAC: %w", err)
	}
	if err := h.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("set up: %w", err)
	}
	if v.sock, err = openPacketSocket(v.index, fastdp.EtherType); err != nil {
		return nil, fmt.Errorf("heartbeat socket: %w", err)
	}
	return v, nil
}

// createVXLAN adds the device with one request (the netlink package
// knows no DF attribute).
func createVXLAN(cfg VXLANConfig) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(cfg.Name)))
	req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(cfg.MTU))))
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("vxlan"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	data.AddRtAttr(nl.IFLA_VXLAN_ID, nl.Uint32Attr(uint32(cfg.VNI)))
	data.AddRtAttr(nl.IFLA_VXLAN_PORT, []byte{byte(cfg.Port >> 8), byte(cfg.Port)}) // network byte order
	data.AddRtAttr(nl.IFLA_VXLAN_LEARNING, []byte{1})
	// Entries age a minute after the bridge's (300 s): both are refreshed
	// by the same received frames, so the bridge never sends a frame to
	// the device for a MAC whose device entry has gone (it would be
	// dropped); it sends it to the TAP, and the router reports a miss.
	data.AddRtAttr(nl.IFLA_VXLAN_AGEING, nl.Uint32Attr(vxlanAgeing))
	data.AddRtAttr(unix.IFLA_VXLAN_DF, []byte{1}) // VXLAN_DF_SET
	req.AddData(info)
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// setPortFlags sets boolean bridge port attributes of the port index.
func setPortFlags(index int, flags map[int]bool) error {
	req := nl.NewNetlinkRequest(unix.RTM_SETLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_BRIDGE)
	msg.Index = int32(index)
	req.AddData(msg)
	pi := nl.NewRtAttr(unix.IFLA_PROTINFO|unix.NLA_F_NESTED, nil)
	for attr, on := range flags {
		b := byte(0)
		if on {
			b = 1
		}
		pi.AddRtAttr(attr, []byte{b})
	}
	req.AddData(pi)
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// openPacketSocket opens a non-blocking AF_PACKET socket bound to the
// link index that receives the frames of one EtherType, deaf to its own
// sends, as an *os.File so that Close unblocks a Read.
//
// A bridge port's frames reach only the taps of all protocols before the
// bridge takes them, so the socket binds to ETH_P_ALL behind a classic
// BPF filter that passes the one EtherType: any other frame is refused in
// the kernel without a copy. The socket is bound only after the filter is
// attached, so no other frame is ever queued.
func openPacketSocket(index int, etherType uint16) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	filter := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_H | unix.BPF_ABS, K: 12},                               // EtherType
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: uint32(etherType)}, // ours?
		{Code: unix.BPF_RET | unix.BPF_K, K: 0xffff},                                         // accept
		{Code: unix.BPF_RET | unix.BPF_K, K: 0},                                              // refuse
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("attach filter: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("ignore outgoing: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: index}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind: %w", err)
	}
	return os.NewFile(uintptr(fd), "fastdp-heartbeat"), nil
}

// Entries implements fastdp.Kernel: the device's unicast entries, and the
// bridge's dynamic entries on the device's port that have no device
// entry (with an invalid Dst).
func (v *VXLAN) Entries() ([]fastdp.Entry, error) {
	neighs, err := retryDump(func() ([]netlink.Neigh, error) { return host().NeighList(v.index, unix.AF_BRIDGE) })
	if err != nil {
		return nil, fmt.Errorf("list entries of %s: %w", v.name, err)
	}
	own := map[fastdp.MAC]bool{}
	var out []fastdp.Entry
	for _, n := range neighs {
		if n.LinkIndex != v.index || len(n.HardwareAddr) != 6 || n.HardwareAddr[0]&1 != 0 || isZeroMAC(n.HardwareAddr) {
			continue
		}
		if n.Flags&netlink.NTF_MASTER != 0 || n.MasterIndex != 0 {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		mac := fastdp.MAC(n.HardwareAddr)
		own[mac] = true
		out = append(out, fastdp.Entry{MAC: mac, Dst: ip.Unmap()})
	}
	for _, n := range neighs {
		if n.LinkIndex != v.index || len(n.HardwareAddr) != 6 || n.HardwareAddr[0]&1 != 0 ||
			(n.Flags&netlink.NTF_MASTER == 0 && n.MasterIndex == 0) || n.State&(netlink.NUD_PERMANENT|netlink.NUD_NOARP) != 0 {
			continue
		}
		if mac := fastdp.MAC(n.HardwareAddr); !own[mac] {
			own[mac] = true
			out = append(out, fastdp.Entry{MAC: mac})
		}
	}
	return out, nil
}

func isZeroMAC(m net.HardwareAddr) bool {
	for _, b := range m {
		if b != 0 {
			return false
		}
	}
	return true
}

// Install implements fastdp.Kernel. A static entry is only the device's
// (heartbeats are sent on the device itself); a dynamic one is also the
// bridge's, on the device's port and sticky (learning on another port
// does not move it), so that the bridge sends the MAC's frames to the
// device rather than to the TAP.
func (v *VXLAN) Install(e fastdp.Entry, static bool) error {
	h := host()
	mac := net.HardwareAddr(e.MAC[:])
	state := netlink.NUD_REACHABLE
	if static {
		state = netlink.NUD_PERMANENT
	}
	if err := h.NeighSet(&netlink.Neigh{LinkIndex: v.index, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF,
		State: state, HardwareAddr: mac, IP: e.Dst.AsSlice()}); err != nil {
		return fmt.Errorf("install %s via %s on %s: %w", mac, e.Dst, v.name, err)
	}
	if static {
		return nil
	}
	// Sticky: frames from the MAC that still arrive through the TAP (the
	// peer's, until it has an entry of its own) must not move it back.
	if err := h.NeighSet(&netlink.Neigh{LinkIndex: v.index, Family: unix.AF_BRIDGE, Flags: netlink.NTF_MASTER | netlink.NTF_STICKY,
		State: netlink.NUD_REACHABLE, HardwareAddr: mac}); err != nil {
		return fmt.Errorf("install bridge entry %s on %s: %w", mac, v.name, err)
	}
	return nil
}

// Remove implements fastdp.Kernel.
func (v *VXLAN) Remove(e fastdp.Entry) error {
	h := host()
	hw := net.HardwareAddr(e.MAC[:])
	var errs []error
	err := h.NeighDel(&netlink.Neigh{LinkIndex: v.index, Family: unix.AF_BRIDGE, Flags: netlink.NTF_MASTER, HardwareAddr: hw})
	if err != nil && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, err)
	}
	if e.Dst.IsValid() {
		// The device parses the (netlink package's always present)
		// destination attribute: it must hold an address.
		err := h.NeighDel(&netlink.Neigh{LinkIndex: v.index, Family: unix.AF_BRIDGE, Flags: netlink.NTF_SELF, HardwareAddr: hw, IP: e.Dst.AsSlice()})
		if err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove %s from %s: %w", hw, v.name, err)
	}
	return nil
}

// Send implements fastdp.Kernel.
func (v *VXLAN) Send(frame []byte) error {
	if _, err := v.sock.Write(frame); err != nil {
		return fmt.Errorf("send on %s: %w", v.name, err)
	}
	return nil
}

// Receive implements fastdp.Kernel.
func (v *VXLAN) Receive(buf []byte) (int, error) {
	n, err := v.sock.Read(buf)
	if err != nil {
		return 0, fmt.Errorf("receive on %s: %w", v.name, err)
	}
	return n, nil
}

// Close implements fastdp.Kernel: it closes the heartbeat socket.
func (v *VXLAN) Close() error {
	return v.sock.Close()
}

// LinkCounters are a link's packet and byte counters.
type LinkCounters struct {
	RxPackets, RxBytes, TxPackets, TxBytes, TxDropped uint64
}

// Counters returns the device's counters.
func (v *VXLAN) Counters() (LinkCounters, error) {
	return ReadLinkCounters(v.name)
}

// ReadLinkCounters returns the counters of the link name.
func ReadLinkCounters(name string) (LinkCounters, error) {
	l, err := host().LinkByName(name)
	if err != nil {
		return LinkCounters{}, fmt.Errorf("counters of %s: %w", name, err)
	}
	s := l.Attrs().Statistics
	if s == nil {
		return LinkCounters{}, nil
	}
	return LinkCounters{RxPackets: s.RxPackets, RxBytes: s.RxBytes, TxPackets: s.TxPackets, TxBytes: s.TxBytes, TxDropped: s.TxDropped}, nil
}
