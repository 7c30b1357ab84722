package netdev

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"

	"github.com/weftnet/weft/internal/segment"
)

// Endpoint is an endpoint of a weft Docker network: a veth pair whose
// host end is on the bridge and whose inner end Docker moves into the
// container.
type Endpoint struct {
	ID string // Docker endpoint ID, 12 to 64 lowercase hex digits
	// MAC is the inner end's: segment.MAC(Segment, address) on a
	// network with a segment, a MAC without segment.Marker on Default.
	MAC     net.HardwareAddr
	Segment uint16 // the network's segment, or segment.Default
	MTU     int    // of both ends
}

// endpointAliasPrefix marks the host ends of endpoint veths. It does not
// start with aliasPrefix, so List does not take them for attachments.
const endpointAliasPrefix = "weft-ep:"

// endpointNames are the names of an endpoint's veth ends: "vwp" (host)
// and "vwc" (inner) with 12 hex digits of a hash of the ID.
func endpointNames(id string) (hostIf, inner string) {
	sum := sha256.Sum256([]byte(id))
	x := hex.EncodeToString(sum[:6])
	return "vwp" + x, "vwc" + x
}

// CreateEndpoint makes the endpoint's veth pair in the host namespace and
// returns the name of its inner end, for Docker to move into the
// container. The host end, named "vwp"+12 hex digits of a hash of the ID
// and aliased "weft-ep:"+ID, gets the port filter of ep.Segment (see
// portfilter.go) and then joins the bridge; the inner end has ep.MAC.
// Both have ep.MTU.
//
// Creating an endpoint that exists reuses its pair and sets the alias,
// the filter (with the bridge's current MAC), the bridge, the MTU, and
// the inner end's MAC and MTU while it is still in the host namespace.
// A failed CreateEndpoint leaves nothing behind that it made.
func CreateEndpoint(bridge string, ep Endpoint) (string, error) {
	inner, err := createEndpoint(bridge, ep)
	if err != nil {
		return "", fmt.Errorf("create endpoint %s: %w", shortID(ep.ID), err)
	}
	return inner, nil
}

func createEndpoint(bridge string, ep Endpoint) (_ string, err error) {
	if err := ep.check(); err != nil {
		return "", err
	}
	h := host()
	br, err := bridgeLink(h, bridge)
	if err != nil {
		return "", err
	}
	hostName, innerName := endpointNames(ep.ID)
	hostLink, err := h.LinkByName(hostName)
	switch {
	case isNotFound(err):
		veth := &netlink.Veth{
			LinkAttrs:        netlink.NewLinkAttrs(),
			PeerName:         innerName,
			PeerMTU:          uint32(ep.MTU),
			PeerHardwareAddr: ep.MAC,
		}
		veth.Name, veth.MTU = hostName, ep.MTU
		if err := h.LinkAdd(veth); err != nil {
			return "", fmt.Errorf("create veth %s: %w", hostName, err)
		}
		if hostLink, err = h.LinkByName(hostName); err != nil {
			_ = h.LinkDel(veth)
			return "", fmt.Errorf("create veth %s: %w", hostName, err)
		}
		defer func() {
			if err != nil {
				_ = h.LinkDel(hostLink)
			}
		}()
	case err != nil:
		return "", err
	case hostLink.Type() != "veth":
		return "", explain(ErrInterfaceExists, fmt.Sprintf("%s exists and is a %s, not weft's veth", hostName, hostLink.Type()))
	}
	if alias := endpointAliasPrefix + ep.ID; hostLink.Attrs().Alias != alias {
		if err := h.LinkSetAlias(hostLink, alias); err != nil {
			return "", fmt.Errorf("set alias of %s: %w", hostName, err)
		}
	}
	if err := fixInner(h, hostLink, innerName, ep); err != nil {
		return "", err
	}
	f := portFilter{seg: ep.Segment, own: ep.MAC, bridge: br.Attrs().HardwareAddr}
	if err := plugPort(h, hostLink, br, ep.MTU, f); err != nil {
		return "", err
	}
	return innerName, nil
}

// fixInner sets the MAC and MTU of the inner end if it is still in the
// host namespace (Docker has not moved it yet).
func fixInner(h *netlink.Handle, hostLink netlink.Link, name string, ep Endpoint) error {
	inner, err := h.LinkByName(name)
	if isNotFound(err) || (err == nil && inner.Attrs().ParentIndex != hostLink.Attrs().Index) {
		return nil
	}
	if err != nil {
		return err
	}
	if inner.Attrs().HardwareAddr.String() != ep.MAC.String() {
		if inner, err = setMAC(h, inner, ep.MAC); err != nil {
			return err
		}
	}
	if inner.Attrs().MTU != ep.MTU {
		if err := h.LinkSetMTU(inner, ep.MTU); err != nil {
			return fmt.Errorf("set mtu %d on %s: %w", ep.MTU, name, err)
		}
	}
	return nil
}

// check refuses what cannot be an endpoint: its MAC must name its
// segment, so that the filters of the other ports let it through.
func (ep Endpoint) check() error {
	switch {
	case !isDockerID(ep.ID):
		return explain(ErrBadEndpoint, fmt.Sprintf("endpoint ID %q is not 12 to 64 lowercase hex digits", ep.ID))
	case len(ep.MAC) != 6 || ep.MAC[0]&0x01 != 0:
		return explain(ErrBadEndpoint, fmt.Sprintf("MAC %q is not a unicast Ethernet address", ep.MAC))
	case hasMarker(ep.MAC) != (ep.Segment != segment.Default) || segment.Of(ep.MAC) != ep.Segment:
		return explain(ErrBadEndpoint, fmt.Sprintf("MAC %s is not on segment %d", ep.MAC, ep.Segment))
	case ep.MTU < 68 || ep.MTU > 65535:
		return explain(ErrBadEndpoint, fmt.Sprintf("MTU %d is not between 68 and 65535", ep.MTU))
	}
	return nil
}

// DeleteEndpoint deletes the endpoint's veth pair (the inner end goes
// with the host end, wherever it is). An endpoint that does not exist is
// not an error.
func DeleteEndpoint(id string) error {
	hostName, _ := endpointNames(id)
	if err := DeleteLink(hostName); err != nil {
		return fmt.Errorf("delete endpoint %s: %w", shortID(id), err)
	}
	return nil
}

// Endpoints returns the IDs of the endpoints whose veths exist, sorted,
// so that the router can delete those Docker no longer knows.
func Endpoints() ([]string, error) {
	links, err := retryDump(host().LinkList)
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	var ids []string
	for _, l := range links {
		if id, ok := strings.CutPrefix(l.Attrs().Alias, endpointAliasPrefix); ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}
