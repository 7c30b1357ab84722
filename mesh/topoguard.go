package mesh

import (
	"sync/atomic"
	"time"
)

// Limits on what one connection's topology gossip may cost us. A member
// with the password can still announce peers of its own making (each
// with a key of its own), so the topology is bounded as a whole and per
// connection; only the offending entries are dropped, never the
// connection or anyone else's entries.
const (
	// DefaultMaxPeers is Config.MaxPeers' default.
	DefaultMaxPeers = 10000
	// DefaultTopologyBudget is Config.TopologyBudget's default.
	DefaultTopologyBudget = 1000
)

// TopologyRefusals counts topology entries refused since the start, by
// reason.
type TopologyRefusals struct {
	// BadSignature: not signed by the key of the peer it names, or a name
	// that is not its key's: a member speaking for another peer.
	BadSignature uint64
	// OverPeerLimit: an entry of a new peer while the topology held
	// MaxPeers.
	OverPeerLimit uint64
	// OverBudget: dropped because its connection had used its
	// TopologyBudget.
	OverBudget uint64
}

// topoRefusalCounters are the live counters behind TopologyRefusals.
type topoRefusalCounters struct {
	badSignature, overPeerLimit, overBudget atomic.Uint64
}

// TopologyRefusals returns the counts of refused topology entries. Safe
// for concurrent use.
func (n *Node) TopologyRefusals() TopologyRefusals {
	return TopologyRefusals{
		BadSignature:  n.topoRefused.badSignature.Load(),
		OverPeerLimit: n.topoRefused.overPeerLimit.Load(),
		OverBudget:    n.topoRefused.overBudget.Load(),
	}
}

// applyTopology merges entries received from neighbour c. The entries
// that would change our view are picked under the lock, their signatures
// checked outside it (the costly part), and the survivors merged, except
// those of another incarnation under a name we know (dupname.go).
func (n *Node) applyTopology(c *conn, entries []peerEntry) {
	n.mu.Lock()
	cand := n.topologyCandidatesLocked(c, entries)
	n.mu.Unlock()
	if len(cand) == 0 {
		return
	}
	ok := cand[:0]
	for i := range cand {
		if err := verifyEntry(&cand[i]); err != nil {
			if n.topoRefused.badSignature.Add(1) == 1 || c.noteTopoRefusal() {
				n.log.Warn("refused topology entry: a peer may only speak for itself", "from", c.remote.Name.String(),
					"from_nickname", c.remote.NickName, "err", err)
			}
			continue
		}
		ok = append(ok, cand[i])
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	delta, floor := n.topo.merge(n.dropNameClashesLocked(ok))
	if floor > n.version {
		n.version = floor - 1
		n.localChangedLocked()
	}
	for _, name := range delta {
		n.dirty[name] = struct{}{}
	}
	if len(delta) > 0 {
		n.kick(n.kickUpdate)
		n.kick(n.kickMaker)
	}
}

// topologyCandidatesLocked returns the entries that would change our
// view: newer than what we hold (or, for our own name, another
// incarnation), within MaxPeers and within c's budget.
func (n *Node) topologyCandidatesLocked(c *conn, in []peerEntry) []peerEntry {
	now := c.node.cfg.Clock.Now()
	out := in[:0:0]
	peers := len(n.topo.peers)
	for i := range in {
		e := &in[i]
		cur, known := n.topo.peers[e.Name]
		switch {
		case e.Name == n.cfg.Name:
			if e.UID == n.uid {
				continue
			}
		case known && !e.newer(cur):
			continue
		case !known && peers >= n.cfg.MaxPeers:
			if n.topoRefused.overPeerLimit.Add(1) == 1 || c.noteTopoRefusal() {
				n.log.Warn("refused topology entry: the topology is full", "peer", e.Name.String(),
					"max_peers", n.cfg.MaxPeers, "from", c.remote.Name.String())
			}
			continue
		}
		if c.topoBudget.take(now) != 0 {
			dropped := uint64(len(in) - i)
			if n.topoRefused.overBudget.Add(dropped) == dropped || c.noteTopoRefusal() {
				n.log.Warn("dropping topology entries beyond the connection's budget", "from", c.remote.Name.String(),
					"from_nickname", c.remote.NickName, "dropped", dropped, "budget_per_s", n.cfg.TopologyBudget)
			}
			break
		}
		if !known {
			peers++
		}
		out = append(out, *e)
	}
	return out
}

// noteTopoRefusal reports whether a refusal on this connection should be
// logged: the first one, then at most one a minute.
func (c *conn) noteTopoRefusal() bool {
	now := c.node.cfg.Clock.Now()
	if now.Sub(c.lastTopoLog) < time.Minute {
		return false
	}
	c.lastTopoLog = now
	return true
}
