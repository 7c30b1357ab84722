package netdev

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/internal/segment"
)

// Attachment is one target attached to the weft network.
type Attachment struct {
	Target string           // as ParseTarget accepts it, e.g. "netns:c1"
	HostIf string           // host end of the veth, on the bridge
	MAC    net.HardwareAddr // of ethweft, inside the target
	Addrs  []netip.Prefix   // of ethweft, sorted, without link-local ones
	// Err is set by List when the target's namespace is gone or no
	// longer holds the other end (MAC and Addrs are then empty).
	Err error
}

// AttachOptions are the choices of one attachment.
type AttachOptions struct {
	// SourceCheck guards the port: the target may send only with its
	// ethweft's MAC and, for IPv4 and ARP, from the addresses of this
	// attach and Given (sourceguard.go). Without it the port has the
	// default filter. Every Attach sets the port's filter as asked.
	SourceCheck bool
	// Given are the addresses weft gave the target before (the
	// caller's record): addresses the target added itself stay out.
	Given []netip.Prefix
}

// Attach gives the target an interface ethweft on the bridge with the
// addresses. The host end of the veth pair is named HostIfName(t), carries
// the alias "weft:"+t.String(), and is plugged into the bridge; the other
// end is created directly inside the target's namespace with the MTU, the
// addresses and weave's short ARP timers, brought up, and announced with a
// gratuitous ARP per IPv4 address (best effort). The inner end's MAC is
// random and never carries segment.Marker; the host end gets the port
// filter of segment.Default (see portfilter.go) before it joins the
// bridge.
//
// Attaching an attached target adds the addresses it lacks; it also
// re-plugs the veth into the bridge, sets the MTU and the port filter,
// which repairs an attachment after the bridge was recreated, and gives
// an inner end made by an older weft whose MAC happens to carry the
// marker a new MAC (announced for every address). A failed Attach leaves
// nothing behind that it made: a veth it created is deleted, and on a
// target that was attached already the addresses it added are removed.
func Attach(bridge string, t Target, addrs []netip.Prefix, mtu int, opts AttachOptions) (Attachment, error) {
	// The caller names the operation and the target (the daemon's
	// "attach netns:c1: ..."); naming them here too repeated them.
	return attach(bridge, t, addrs, mtu, opts)
}

// attachFault, when set (by tests), is called once an attach has made
// its veth and added its addresses; an error it returns fails the attach
// there, as a late kernel error would.
var attachFault func() error

func attach(bridge string, t Target, addrs []netip.Prefix, mtu int, opts AttachOptions) (_ Attachment, err error) {
	if err := checkPrefixes(addrs); err != nil {
		return Attachment{}, err
	}
	tns, err := openTarget(t)
	if err != nil {
		return Attachment{}, err
	}
	defer tns.Close()
	h := host()
	br, err := bridgeLink(h, bridge)
	if err != nil {
		return Attachment{}, err
	}
	hostLink, peer, err := findVeth(h, tns, t)
	if err != nil {
		return Attachment{}, err
	}
	created := false
	if hostLink == nil {
		if hostLink, peer, err = createVeth(h, tns, t, mtu); err != nil {
			return Attachment{}, err
		}
		created = true
		defer func() {
			if err != nil {
				_ = h.LinkDel(hostLink)
			}
		}()
	}
	remac := hasMarker(peer.Attrs().HardwareAddr)
	if remac {
		if peer, err = setMAC(tns.h, peer, segment.RandomMAC()); err != nil {
			return Attachment{}, err
		}
	}
	f := portFilter{seg: segment.Default}
	if opts.SourceCheck {
		if f, err = guardFilter(peer, append(slices.Clone(opts.Given), addrs...)); err != nil {
			return Attachment{}, err
		}
	}
	if err := plug(h, tns.h, hostLink, peer, br, mtu, f); err != nil {
		return Attachment{}, err
	}
	if created {
		if err := inNamespace(tns.ns, setARPTimers); err != nil {
			return Attachment{}, err
		}
	}
	added, err := addAddrs(tns.h, peer, addrs)
	if err != nil {
		return Attachment{}, err
	}
	if !created && len(added) > 0 {
		// A veth made here goes whole; on one that was there, a later
		// failure takes back only the addresses this call added.
		mine := added
		defer func() {
			if err != nil {
				_, _ = removeAddrs(tns.h, peer, mine)
			}
		}()
	}
	if attachFault != nil {
		if err := attachFault(); err != nil {
			return Attachment{}, err
		}
	}
	if remac {
		// Neighbours know every address under the old MAC.
		if added, err = linkAddrs(tns.h, peer); err != nil {
			return Attachment{}, err
		}
	}
	if len(added) > 0 {
		// Best effort: a missed announcement only delays neighbours.
		waitUp(h, hostLink.Attrs().Index)
		_ = inNamespace(tns.ns, func() error { return announce(peer, added) })
	}
	return readAttachment(tns, t, hostLink, peer)
}

// findVeth finds t's veth: the host end by name and ethweft in the
// target. A host end whose peer is not the target's ethweft (the target's
// namespace was replaced) is stale and deleted. An ethweft without our host
// end belongs to someone else.
func findVeth(h *netlink.Handle, tns *targetNS, t Target) (hostLink, peer netlink.Link, err error) {
	name := HostIfName(t)
	hostLink, err = h.LinkByName(name)
	if err != nil && !isNotFound(err) {
		return nil, nil, err
	}
	peer, perr := tns.h.LinkByName(ContainerIf)
	if perr != nil && !isNotFound(perr) {
		return nil, nil, perr
	}
	if hostLink != nil && (peer == nil || hostLink.Attrs().ParentIndex != peer.Attrs().Index) {
		if err := h.LinkDel(hostLink); err != nil {
			return nil, nil, fmt.Errorf("delete stale %s: %w", name, err)
		}
		hostLink = nil
	}
	if hostLink == nil && peer != nil {
		return nil, nil, explain(ErrInterfaceExists, fmt.Sprintf(
			"%s already has an interface %s that weft did not make", t, ContainerIf))
	}
	return hostLink, peer, nil
}

// createVeth makes the pair with its inner end directly in the target.
func createVeth(h *netlink.Handle, tns *targetNS, t Target, mtu int) (hostLink, peer netlink.Link, err error) {
	veth := &netlink.Veth{
		LinkAttrs:        netlink.NewLinkAttrs(),
		PeerName:         ContainerIf,
		PeerNamespace:    netlink.NsFd(int(tns.ns)),
		PeerMTU:          uint32(mtu),
		PeerHardwareAddr: segment.RandomMAC(),
	}
	veth.Name, veth.MTU = HostIfName(t), mtu
	if err := h.LinkAdd(veth); err != nil {
		return nil, nil, fmt.Errorf("create veth %s: %w", veth.Name, err)
	}
	hostLink, err = h.LinkByName(veth.Name)
	if err != nil {
		return nil, nil, fmt.Errorf("create veth %s: %w", veth.Name, err)
	}
	// The kernel ignores IFLA_IFALIAS when creating a link; set it now.
	if err = h.LinkSetAlias(hostLink, aliasPrefix+t.String()); err == nil {
		peer, err = tns.h.LinkByName(ContainerIf)
	}
	if err != nil {
		_ = h.LinkDel(hostLink)
		return nil, nil, fmt.Errorf("create veth %s: %w", veth.Name, err)
	}
	return hostLink, peer, nil
}

// plug gives the host end its port filter f, puts it on the bridge, sets
// both MTUs, the container end's GSO size and both ends up.
func plug(h, th *netlink.Handle, hostLink, peer, br netlink.Link, mtu int, f portFilter) error {
	if err := plugPort(h, hostLink, br, mtu, f); err != nil {
		return err
	}
	if err := setMTUUp(th, peer, mtu); err != nil {
		return err
	}
	// The container's TCP builds super-frames up to its interface's GSO
	// size, which stays at the kernel's 64 KB (the most a TAP takes): a
	// paced sender (BBR) hands over one super-frame per pacing interval,
	// so the larger each is, the faster it goes, even though a 64 KB one
	// leaves in two trains of datagrams (docs/performance.md). Earlier
	// weft versions lowered it to fit one train; a re-plug raises it
	// back. A kernel that refuses keeps what it has.
	if peer.Attrs().GSOMaxSize < legacyGSOMaxSize {
		_ = th.LinkSetGSOMaxSize(peer, legacyGSOMaxSize)
	}
	return nil
}

// plugPort gives a host end its port filter, then (so that it never
// forwards unfiltered) puts it on the bridge, sets its MTU and brings it
// up.
func plugPort(h *netlink.Handle, hostLink, br netlink.Link, mtu int, f portFilter) error {
	if err := setPortFilter(h, hostLink, f); err != nil {
		return err
	}
	if hostLink.Attrs().MasterIndex != br.Attrs().Index {
		if err := h.LinkSetMasterByIndex(hostLink, br.Attrs().Index); err != nil {
			return fmt.Errorf("add %s to bridge: %w", hostLink.Attrs().Name, err)
		}
	}
	return setMTUUp(h, hostLink, mtu)
}

func setMTUUp(h *netlink.Handle, link netlink.Link, mtu int) error {
	if link.Attrs().MTU != mtu {
		if err := h.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("set mtu %d on %s: %w", mtu, link.Attrs().Name, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", link.Attrs().Name, err)
	}
	return nil
}

// hasMarker reports whether mac is a segment MAC.
func hasMarker(mac net.HardwareAddr) bool { return len(mac) == 6 && mac[0] == segment.Marker }

// setMAC sets the link's MAC and returns the link as it is now.
func setMAC(h *netlink.Handle, link netlink.Link, mac net.HardwareAddr) (netlink.Link, error) {
	if err := h.LinkSetHardwareAddr(link, mac); err != nil {
		return nil, fmt.Errorf("set mac of %s: %w", link.Attrs().Name, err)
	}
	return h.LinkByIndex(link.Attrs().Index)
}

// legacyGSOMaxSize is the kernel's default and a TAP's largest GSO size.
const legacyGSOMaxSize = 65536

// readAttachment reads back what the target has now.
func readAttachment(tns *targetNS, t Target, hostLink, peer netlink.Link) (Attachment, error) {
	peer, err := tns.h.LinkByIndex(peer.Attrs().Index)
	if err != nil {
		return Attachment{}, err
	}
	addrs, err := linkAddrs(tns.h, peer)
	if err != nil {
		return Attachment{}, err
	}
	return Attachment{
		Target: t.String(),
		HostIf: hostLink.Attrs().Name,
		MAC:    peer.Attrs().HardwareAddr,
		Addrs:  addrs,
	}, nil
}

// Detach removes the addresses (matched by IP) from the target's ethweft,
// or all of them when none is given, and returns those removed. When no
// address is left the veth pair is deleted. Addresses the target does not
// have are ignored; a target that is not attached is an error wrapping
// ErrNotAttached. The veth is found from the target alone, so bridge is
// not consulted (it is there to match Attach).
func Detach(bridge string, t Target, addrs []netip.Prefix) ([]netip.Prefix, error) {
	return detach(t, addrs) // the caller names the operation and the target
}

func detach(t Target, addrs []netip.Prefix) ([]netip.Prefix, error) {
	tns, err := openTarget(t)
	if err != nil {
		return nil, err
	}
	defer tns.Close()
	h := host()
	hostLink, peer, err := findVeth(h, tns, t)
	if errors.Is(err, ErrInterfaceExists) || (err == nil && hostLink == nil) {
		return nil, explain(ErrNotAttached, fmt.Sprintf("%s is not attached", t))
	}
	if err != nil {
		return nil, err
	}
	removed, err := removeAddrs(tns.h, peer, addrs)
	if err != nil {
		return removed, err
	}
	left, err := linkAddrs(tns.h, peer)
	if err != nil {
		return removed, err
	}
	if len(left) == 0 {
		if err := h.LinkDel(hostLink); err != nil {
			return removed, fmt.Errorf("delete veth %s: %w", hostLink.Attrs().Name, err)
		}
	}
	return removed, nil
}

// waitUp waits, for at most a second, until the link's operational state
// is up: the kernel enables a bridge port only then, and drops what
// arrives on it before. Announcements sent earlier would be lost.
func waitUp(h *netlink.Handle, index int) {
	for range 200 {
		l, err := h.LinkByIndex(index)
		if err != nil || l.Attrs().OperState == netlink.OperUp {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
