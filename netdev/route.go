package netdev

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// AddRoute adds, or replaces, a link-scope route to dst through the
// target's weft interface (ContainerIf), as
// `ip route replace DST dev ethweft scope link` inside the target would.
// The router uses it so that an attached target reaches the DNS server on
// its host's bridge at a link-local address.
func AddRoute(t Target, dst netip.Prefix) error {
	if err := addRoute(t, dst); err != nil {
		return fmt.Errorf("route %s in %s: %w", dst, t, err)
	}
	return nil
}

func addRoute(t Target, dst netip.Prefix) error {
	if !dst.IsValid() {
		return explain(ErrBadAddress, fmt.Sprintf("invalid route destination %q", dst.String()))
	}
	tns, err := openTarget(t)
	if err != nil {
		return err
	}
	defer tns.Close()
	link, err := tns.h.LinkByName(ContainerIf)
	if isNotFound(err) {
		return explain(ErrNotAttached, fmt.Sprintf("%s is not attached", t))
	}
	if err != nil {
		return err
	}
	dst = dst.Masked()
	return tns.h.RouteReplace(&netlink.Route{
		LinkIndex: link.Attrs().Index,
		Scope:     netlink.SCOPE_LINK,
		Dst: &net.IPNet{
			IP:   dst.Addr().AsSlice(),
			Mask: net.CIDRMask(dst.Bits(), dst.Addr().BitLen()),
		},
	})
}
