package netdev

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// checkPrefixes rejects addresses no interface should get and duplicates.
func checkPrefixes(ps []netip.Prefix) error {
	for i, p := range ps {
		a := p.Addr()
		switch {
		case !p.IsValid():
			return explain(ErrBadAddress, fmt.Sprintf("invalid address %q: use CIDR notation, as in 10.32.0.5/12", p.String()))
		case a.Is4In6() || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback():
			return explain(ErrBadAddress, fmt.Sprintf("address %s cannot be given to an interface", p))
		}
		for _, q := range ps[:i] {
			if q.Addr() == a {
				return explain(ErrBadAddress, fmt.Sprintf("address %s given twice", a))
			}
		}
	}
	return nil
}

// toPrefix converts a netlink address.
func toPrefix(a netlink.Addr) (netip.Prefix, bool) {
	if a.IPNet == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := a.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), bits), true
}

// toAddr converts a prefix to a netlink address. IPv6 addresses skip
// duplicate address detection: weft's allocator keeps them unique, and
// they are usable at once instead of after a second or more.
func toAddr(p netip.Prefix) *netlink.Addr {
	a := &netlink.Addr{IPNet: &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

// linkAddrs lists a link's addresses other than link-local ones, sorted.
func linkAddrs(h *netlink.Handle, link netlink.Link) ([]netip.Prefix, error) {
	all, err := retryDump(func() ([]netlink.Addr, error) { return h.AddrList(link, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", link.Attrs().Name, err)
	}
	var ps []netip.Prefix
	for _, a := range all {
		if p, ok := toPrefix(a); ok && !p.Addr().IsLinkLocalUnicast() {
			ps = append(ps, p)
		}
	}
	slices.SortFunc(ps, comparePrefix)
	return ps, nil
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// addAddrs gives link the wanted addresses that it does not have yet and
// returns those it added. An address already on another interface of the
// namespace, or on this one with another prefix length, is an error. On
// error nothing is left added.
func addAddrs(h *netlink.Handle, link netlink.Link, want []netip.Prefix) ([]netip.Prefix, error) {
	all, err := retryDump(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var todo []netip.Prefix
	for _, p := range want {
		present := false
		for _, a := range all {
			have, ok := toPrefix(a)
			if !ok || have.Addr() != p.Addr() {
				continue
			}
			if a.LinkIndex == link.Attrs().Index && have.Bits() == p.Bits() {
				present = true
				break
			}
			return nil, explain(ErrAddressInUse, fmt.Sprintf("address %s already in use on %s (as %s)",
				p.Addr(), linkName(h, a.LinkIndex), have))
		}
		if !present {
			todo = append(todo, p)
		}
	}
	var added []netip.Prefix
	for _, p := range todo {
		if err := h.AddrAdd(link, toAddr(p)); err != nil {
			err = fmt.Errorf("add address %s to %s: %w", p, link.Attrs().Name, err)
			for _, q := range added {
				_ = h.AddrDel(link, toAddr(q))
			}
			return nil, err
		}
		added = append(added, p)
	}
	return added, nil
}

// removeAddrs removes from link the addresses whose IP is in which, or all
// of them when which is empty, and returns those removed. Addresses the
// link does not have are ignored.
func removeAddrs(h *netlink.Handle, link netlink.Link, which []netip.Prefix) ([]netip.Prefix, error) {
	have, err := linkAddrs(h, link)
	if err != nil {
		return nil, err
	}
	var removed []netip.Prefix
	var errs []error
	for _, p := range have {
		if len(which) > 0 && !slices.ContainsFunc(which, func(q netip.Prefix) bool { return q.Addr() == p.Addr() }) {
			continue
		}
		if err := h.AddrDel(link, toAddr(p)); err != nil {
			errs = append(errs, fmt.Errorf("remove address %s from %s: %w", p, link.Attrs().Name, err))
			continue
		}
		removed = append(removed, p)
	}
	return removed, errors.Join(errs...)
}

// linkName names a link by index for messages.
func linkName(h *netlink.Handle, index int) string {
	if l, err := h.LinkByIndex(index); err == nil {
		return l.Attrs().Name
	}
	return fmt.Sprintf("interface %d", index)
}
