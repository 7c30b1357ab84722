package netdev

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
)

// List returns the attached targets, sorted by target string: every weft
// veth (host end with a "weft:" alias) that is on the bridge or on no
// bridge at all, with the MAC and addresses of ethweft read inside the
// target. A target whose namespace is gone, or no longer holds the other
// end, is listed with Err set (wrapping ErrStale or the open error);
// Reset or a new Attach of that target cleans it up.
//
// A container target is passed to resolve first, which returns it with
// the PID of the container's init process filled in (0 if it is not
// running); without resolve, or when it fails, the attachment's Err says
// so. Docker network endpoints (CreateEndpoint) are not listed.
func List(bridge string, resolve func(Target) (Target, error)) ([]Attachment, error) {
	h := host()
	brIndex := 0
	if br, err := bridgeLink(h, bridge); err == nil {
		brIndex = br.Attrs().Index
	}
	links, err := retryDump(h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	var out []Attachment
	for _, l := range links {
		attrs := l.Attrs()
		alias, ok := strings.CutPrefix(attrs.Alias, aliasPrefix)
		if !ok || (attrs.MasterIndex != 0 && attrs.MasterIndex != brIndex) {
			continue
		}
		out = append(out, listOne(l, alias, resolve))
	}
	slices.SortFunc(out, func(a, b Attachment) int { return strings.Compare(a.Target, b.Target) })
	return out, nil
}

// listOne reads one attachment; problems go into its Err.
func listOne(hostLink netlink.Link, alias string, resolve func(Target) (Target, error)) Attachment {
	a := Attachment{Target: alias, HostIf: hostLink.Attrs().Name}
	t, err := ParseTarget(alias)
	if err != nil {
		a.Err = err
		return a
	}
	if t.Kind == TargetContainer {
		if resolve == nil {
			a.Err = fmt.Errorf("%s: no way to find the container's process", t)
			return a
		}
		if t, err = resolve(t); err != nil {
			a.Err = fmt.Errorf("%s: %w", alias, err)
			return a
		}
	}
	tns, err := openTarget(t)
	if err != nil {
		a.Err = fmt.Errorf("%s: %w", t, err)
		return a
	}
	defer tns.Close()
	peer, err := tns.h.LinkByName(ContainerIf)
	if err != nil || peer.Attrs().Index != hostLink.Attrs().ParentIndex {
		a.Err = explain(ErrStale, fmt.Sprintf("%s: the namespace no longer holds the other end of %s", t, a.HostIf))
		return a
	}
	a.MAC = peer.Attrs().HardwareAddr
	a.Addrs, a.Err = linkAddrs(tns.h, peer)
	if a.Addrs == nil {
		a.Addrs = []netip.Prefix{}
	}
	return a
}
