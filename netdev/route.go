package netdev

import (
	"errors"
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

// Policy routing of the replies of a service on the bridge (the DNS
// server): packets from its address are routed by a table of their own
// whose only route is "default dev BRIDGE scope link". Attached targets
// reach the service through the bridge from their weft addresses, which the
// host's main table may not know (or would send to the underlay); its
// answers go back on the bridge, and only those.
const (
	// ReplyTable is the routing table of those replies.
	ReplyTable = 5353
	// ReplyRulePriority is the priority of the rule selecting it, before
	// the main table's (32766).
	ReplyRulePriority = 5353
)

// RouteRepliesFrom makes packets with source src leave through bridge:
// `ip rule add from SRC/32 lookup 5353 priority 5353` and `ip route replace
// default dev BRIDGE scope link table 5353`. It is idempotent.
func RouteRepliesFrom(bridge string, src netip.Addr) error {
	if err := routeRepliesFrom(bridge, src); err != nil {
		return fmt.Errorf("route replies from %s through %s: %w", src, bridge, err)
	}
	return nil
}

func routeRepliesFrom(bridge string, src netip.Addr) error {
	if !src.Is4() {
		return explain(ErrBadAddress, fmt.Sprintf("invalid source address %s: want IPv4", src))
	}
	h := host()
	br, err := bridgeLink(h, bridge)
	if err != nil {
		return err
	}
	err = h.RouteReplace(&netlink.Route{
		LinkIndex: br.Attrs().Index,
		Scope:     netlink.SCOPE_LINK,
		Dst:       &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
		Table:     ReplyTable,
	})
	if err != nil {
		return fmt.Errorf("route in table %d: %w", ReplyTable, err)
	}
	rules, err := retryDump(func() ([]netlink.Rule, error) { return h.RuleList(netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("list rules: %w", err)
	}
	for _, r := range rules {
		if r.Table == ReplyTable && r.Priority == ReplyRulePriority {
			return nil
		}
	}
	return h.RuleAdd(replyRule(src))
}

func replyRule(src netip.Addr) *netlink.Rule {
	r := netlink.NewRule()
	r.Family = netlink.FAMILY_V4
	r.Src = &net.IPNet{IP: src.AsSlice(), Mask: net.CIDRMask(32, 32)}
	r.Table = ReplyTable
	r.Priority = ReplyRulePriority
	return r
}

// removeReplyRules deletes the rules RouteRepliesFrom added (the table's
// route goes with the bridge).
func removeReplyRules(h *netlink.Handle) error {
	rules, err := retryDump(func() ([]netlink.Rule, error) { return h.RuleList(netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("list rules: %w", err)
	}
	var errs []error
	for _, r := range rules {
		if r.Table == ReplyTable && r.Priority == ReplyRulePriority {
			r := r
			if err := h.RuleDel(&r); err != nil {
				errs = append(errs, fmt.Errorf("delete rule: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}
