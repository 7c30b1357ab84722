package mesh

import (
	"net/netip"
	"time"
)

// Discovery: with Config.Discovery a node also dials peers it learns from
// the topology. What a member gossips must not turn every router into a
// port scanner or a connection flood against a third party, so a learnt
// address is dialled only when
//
//   - both ends of the connection it comes from report that connection (a
//     member cannot make us dial an address by reporting a connection to
//     a peer that does not report one back);
//   - it is not link-local, multicast, unspecified or the IPv4 broadcast
//     address, and not loopback unless we listen on a loopback address
//     ourselves (a single-host mesh, as in tests and demos);
//   - a token is free: at most Config.DiscoveryBurst dials of discovered
//     targets at once, then one per Config.DiscoveryInterval, on top of
//     each target's own backoff.
//
// Targets given by the user (Connect) are dialled whatever their address.

// Discovery defaults (Config.DiscoveryBurst, Config.DiscoveryInterval).
const (
	DefaultDiscoveryBurst    = 8
	DefaultDiscoveryInterval = 250 * time.Millisecond
)

// discoverable reports whether a discovered address may be dialled.
// allowLoopback admits loopback addresses.
func discoverable(ap netip.AddrPort, allowLoopback bool) bool {
	a := ap.Addr().Unmap()
	switch {
	case !a.IsValid() || ap.Port() == 0:
		return false
	case a.IsUnspecified(), a.IsMulticast(), a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return false
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return false
	case a.IsLoopback():
		return allowLoopback
	}
	return true
}

// tokenBucket limits an action to burst at once, then one per every. The
// zero time starts full. Not safe for concurrent use.
type tokenBucket struct {
	burst  int
	every  time.Duration
	tokens int
	last   time.Time // when tokens was last brought up to date
}

// take takes a token if one is free and returns 0; otherwise it returns
// how long until one is.
func (b *tokenBucket) take(now time.Time) time.Duration {
	if b.last.IsZero() {
		b.tokens, b.last = b.burst, now
	}
	if gained := int(now.Sub(b.last) / b.every); gained > 0 {
		b.tokens = min(b.burst, b.tokens+gained)
		b.last = b.last.Add(time.Duration(gained) * b.every)
		if b.tokens == b.burst {
			b.last = now
		}
	}
	if b.tokens > 0 {
		b.tokens--
		return 0
	}
	return b.every - now.Sub(b.last)
}

// refreshDiscoveredLocked derives discovered targets from the addresses
// other peers report for their connections to peers we are not connected
// to: the address of an outbound connection, or the remote IP of an
// inbound one with our own port; only for connections the remote end
// reports too, and only addresses discoverable admits.
func (n *Node) refreshDiscoveredLocked() {
	type pair struct{ from, to PeerName }
	reported := map[pair]bool{}
	for name, e := range n.topo.peers {
		for _, c := range e.Conns {
			reported[pair{name, c.Peer}] = true
		}
	}
	cands := map[string]PeerName{}
	for name, e := range n.topo.peers {
		if name == n.cfg.Name {
			continue
		}
		for _, c := range e.Conns {
			if c.Peer == n.cfg.Name || n.conns[c.Peer] != nil || !c.Addr.IsValid() || !reported[pair{c.Peer, name}] {
				continue
			}
			ap := c.Addr
			if !c.Outbound {
				ap = netip.AddrPortFrom(ap.Addr(), uint16(n.port))
			}
			if !discoverable(ap, n.discoverLoopback) {
				continue
			}
			cands[ap.String()] = c.Peer
		}
	}
	for a, p := range cands {
		if n.targets[a] != nil || n.forgotten[a] || n.selfAddrs[a] {
			continue
		}
		if t := n.found[a]; t != nil {
			t.peer = p
			continue
		}
		n.found[a] = &target{addr: a, peer: p, bo: n.newBackoff()}
	}
	for a, t := range n.found {
		if _, ok := cands[a]; !ok && !t.attempting {
			delete(n.found, a)
		}
	}
}
