package netdev

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/internal/segment"
)

// host is a netlink handle for the calling thread's namespace: the zero
// Handle opens a socket per request in the current namespace.
func host() *netlink.Handle { return &netlink.Handle{} }

// EnsureBridge creates the Linux bridge name if it is missing, with a
// random locally administered MAC that stays fixed as ports come and go
// and never carries segment.Marker, STP off and forward delay 0. An
// existing bridge keeps its MAC, unless the MAC carries the marker (made
// by an older weft): the port filters would drop the host's frames to
// attached targets, so it gets a new one. It then sets the MTU and
// brings the bridge up.
func EnsureBridge(name string, mtu int) error {
	if err := ensureBridge(name, mtu); err != nil {
		return fmt.Errorf("bridge %s: %w", name, err)
	}
	return nil
}

func ensureBridge(name string, mtu int) error {
	h := host()
	link, err := h.LinkByName(name)
	switch {
	case isNotFound(err):
		br := &netlink.Bridge{LinkAttrs: netlink.NewLinkAttrs()}
		br.Name, br.MTU, br.HardwareAddr = name, mtu, segment.RandomMAC()
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("create: %w", err)
		}
		if link, err = h.LinkByName(name); err != nil {
			return err
		}
	case err != nil:
		return err
	case link.Type() != "bridge":
		return explain(ErrNotBridge, fmt.Sprintf("%s exists and is a %s, not a bridge: remove it with 'ip link del %s'",
			name, link.Type(), name))
	}
	if hasMarker(link.Attrs().HardwareAddr) {
		if link, err = setMAC(h, link, segment.RandomMAC()); err != nil {
			return err
		}
	}
	if err := setBridgeTimers(link.Attrs().Index); err != nil {
		return err
	}
	if link.Attrs().MTU != mtu {
		if err := h.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("set mtu %d: %w", mtu, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("set up: %w", err)
	}
	return nil
}

// setBridgeTimers turns STP off, then sets the forward delay to 0 (the
// kernel accepts 0 only without STP), so ports forward at once.
func setBridgeTimers(index int) error {
	for _, attr := range []struct {
		typ int
		val uint32
		msg string
	}{
		{nl.IFLA_BR_STP_STATE, 0, "turn STP off"},
		{nl.IFLA_BR_FORWARD_DELAY, 0, "set forward delay"},
	} {
		req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
		msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
		msg.Index = int32(index)
		req.AddData(msg)
		info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
		info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("bridge"))
		data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
		data.AddRtAttr(attr.typ, nl.Uint32Attr(attr.val))
		req.AddData(info)
		if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
			return fmt.Errorf("%s: %w", attr.msg, err)
		}
	}
	return nil
}

// BridgeMAC returns the MAC address of the bridge name.
func BridgeMAC(name string) (net.HardwareAddr, error) {
	br, err := bridgeLink(host(), name)
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", name, err)
	}
	return br.Attrs().HardwareAddr, nil
}

// bridgeLink finds the bridge, explaining its absence.
func bridgeLink(h *netlink.Handle, name string) (netlink.Link, error) {
	br, err := h.LinkByName(name)
	if isNotFound(err) {
		return nil, explain(ErrNoBridge, fmt.Sprintf("bridge %q not found: is the router running?", name))
	}
	if err != nil {
		return nil, err
	}
	if br.Type() != "bridge" {
		return nil, explain(ErrNotBridge, fmt.Sprintf("%s is a %s, not a bridge", name, br.Type()))
	}
	return br, nil
}

// AttachToBridge enslaves the existing link ifname (the router's TAP) to
// bridge, sets its MTU and brings it up.
func AttachToBridge(ifname, bridge string, mtu int) error {
	h := host()
	err := func() error {
		br, err := bridgeLink(h, bridge)
		if err != nil {
			return err
		}
		link, err := h.LinkByName(ifname)
		if err != nil {
			return err
		}
		if err := h.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("set mtu %d: %w", mtu, err)
		}
		if err := h.LinkSetMasterByIndex(link, br.Attrs().Index); err != nil {
			return fmt.Errorf("add to bridge: %w", err)
		}
		return h.LinkSetUp(link)
	}()
	if err != nil {
		return fmt.Errorf("attach %s to bridge %s: %w", ifname, bridge, err)
	}
	return nil
}

// DeleteLink deletes the link name (a stale TAP, for instance). A missing
// link is not an error.
func DeleteLink(name string) error {
	h := host()
	link, err := h.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err == nil {
		err = h.LinkDel(link)
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// Expose gives the bridge itself the addresses, so the host can reach the
// weft network. Addresses it already has are skipped.
func Expose(bridge string, addrs []netip.Prefix) error {
	h := host()
	err := func() error {
		if err := checkPrefixes(addrs); err != nil {
			return err
		}
		br, err := bridgeLink(h, bridge)
		if err != nil {
			return err
		}
		_, err = addAddrs(h, br, addrs)
		return err
	}()
	if err != nil {
		return fmt.Errorf("expose: %w", err)
	}
	return nil
}

// Hide removes the addresses (matched by IP) from the bridge, or all of
// its addresses when none is given, and returns those removed.
func Hide(bridge string, addrs []netip.Prefix) ([]netip.Prefix, error) {
	h := host()
	br, err := bridgeLink(h, bridge)
	if err != nil {
		return nil, fmt.Errorf("hide: %w", err)
	}
	removed, err := removeAddrs(h, br, addrs)
	if err != nil {
		return removed, fmt.Errorf("hide: %w", err)
	}
	return removed, nil
}

// Exposed lists the bridge's own addresses (other than link-local ones).
func Exposed(bridge string) ([]netip.Prefix, error) {
	h := host()
	br, err := bridgeLink(h, bridge)
	if err != nil {
		return nil, err
	}
	return linkAddrs(h, br)
}

// Reset deletes every weft veth (found by alias, wherever it is plugged),
// Docker network endpoints included, and the bridge. Deleting a veth's
// host end removes the target's ethweft (or the endpoint's inner end)
// with it. What is already gone is not an error.
func Reset(bridge string) error {
	h := host()
	links, err := retryDump(h.LinkList)
	if err != nil {
		return fmt.Errorf("reset: list links: %w", err)
	}
	var errs []error
	for _, l := range links {
		if alias := l.Attrs().Alias; strings.HasPrefix(alias, aliasPrefix) || strings.HasPrefix(alias, endpointAliasPrefix) {
			if err := h.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
				errs = append(errs, fmt.Errorf("reset: delete %s: %w", l.Attrs().Name, err))
			}
		}
	}
	if err := DeleteLink(bridge); err != nil {
		errs = append(errs, fmt.Errorf("reset: %w", err))
	}
	if err := removeReplyRules(h); err != nil {
		errs = append(errs, fmt.Errorf("reset: %w", err))
	}
	return errors.Join(errs...)
}
