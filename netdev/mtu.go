package netdev

import (
	"fmt"
	"net/netip"

	"github.com/vishvananda/netlink"
)

// UnderlayMTU returns the MTU towards dst: the MTU of the interface the
// kernel routes dst through (lowered by a route MTU, if any). With an
// invalid dst it returns the MTU of the default route's interface.
func UnderlayMTU(dst netip.Addr) (int, error) {
	h := host()
	var route netlink.Route
	if dst.IsValid() {
		routes, err := h.RouteGet(dst.AsSlice())
		if err != nil {
			return 0, fmt.Errorf("underlay mtu to %s: %w (%v)", dst, ErrNoRoute, err)
		}
		if len(routes) == 0 {
			return 0, fmt.Errorf("underlay mtu to %s: %w", dst, ErrNoRoute)
		}
		route = routes[0]
	} else {
		r, err := defaultRoute(h)
		if err != nil {
			return 0, fmt.Errorf("underlay mtu: %w", err)
		}
		route = r
	}
	link, err := h.LinkByIndex(route.LinkIndex)
	if err != nil {
		return 0, fmt.Errorf("underlay mtu: interface %d: %w", route.LinkIndex, err)
	}
	mtu := link.Attrs().MTU
	if route.MTU > 0 && route.MTU < mtu {
		mtu = route.MTU
	}
	return mtu, nil
}

// defaultRoute finds the IPv4 default route, or else the IPv6 one.
func defaultRoute(h *netlink.Handle) (netlink.Route, error) {
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := retryDump(func() ([]netlink.Route, error) { return h.RouteList(nil, family) })
		if err != nil {
			return netlink.Route{}, err
		}
		for _, r := range routes {
			if r.Dst == nil || r.Dst.IP.IsUnspecified() {
				if ones, _ := maskSize(r); ones == 0 && r.LinkIndex > 0 {
					return r, nil
				}
			}
		}
	}
	return netlink.Route{}, ErrNoRoute
}

func maskSize(r netlink.Route) (int, int) {
	if r.Dst == nil {
		return 0, 0
	}
	return r.Dst.Mask.Size()
}
