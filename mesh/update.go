package mesh

import (
	"maps"
	"slices"
	"time"
)

// updateLoop coalesces topology changes: after a change it waits
// UpdateDelay, then recomputes routes, garbage-collects unreachable peers
// and sends the changed entries to every neighbour. It also runs the
// periodic full gossip.
func (n *Node) updateLoop() {
	defer n.wg.Done()
	tick := n.cfg.Clock.NewTicker(n.cfg.GossipInterval)
	defer tick.Stop()
	delay := n.cfg.Clock.NewTimer(time.Hour)
	delay.Stop()
	pending := false
	for {
		select {
		case <-n.ctx.Done():
			delay.Stop()
			return
		case <-n.kickUpdate:
			if !pending {
				pending = true
				delay.Reset(n.cfg.UpdateDelay)
			}
		case <-delay.C():
			pending = false
			n.flush()
		case <-tick.C():
			n.periodicGossip()
		}
	}
}

// flush publishes the effects of topology changes.
func (n *Node) flush() {
	n.mu.Lock()
	gone := n.topo.gc()
	for _, g := range gone {
		delete(n.dirty, g)
	}
	entries := slices.Collect(maps.Values(n.topo.peers)) // immutable values
	gen := routeGen.Add(1)
	var changed []peerEntry
	if len(n.dirty) > 0 {
		changed = n.topo.entries(slices.Collect(maps.Keys(n.dirty)))
		clear(n.dirty)
	}
	conns := n.connsSnapshotLocked()
	hooks := slices.Clone(n.goneHooks)
	n.mu.Unlock()

	data, ctrl := computeRoutePair(n.cfg.Name, entries, gen, n.ctrlRoutes.Load())
	publishRoutes(&n.ctrlRoutes, ctrl)
	if old := n.routes.Load(); !routesEqual(old, data) && publishRoutes(&n.routes, data) {
		n.cfg.Overlay.RoutesChanged(data)
	}
	for _, c := range conns {
		for _, m := range encodeTopology(relayedTo(c, changed)) {
			c.send(m)
		}
	}
	for _, g := range gone {
		n.log.Info("removed unreachable peer", "peer", g.String())
		for _, h := range hooks {
			h(g)
		}
	}
	if len(gone) > 0 {
		n.kick(n.kickMaker)
	}
}

// periodicGossip sends every neighbour our topology's summary (or, to a
// neighbour that does not understand summaries, the whole topology), and
// every channel's full state.
func (n *Node) periodicGossip() {
	n.mu.Lock()
	conns := n.connsSnapshotLocked()
	summary := encodeSummary(n.summaryLocked())
	n.mu.Unlock()
	for _, c := range conns {
		if c.remote.Extra[featTopoSummary] == "1" {
			c.send(summary)
		} else {
			n.sendTopology(c)
		}
		n.sendChannels(c)
	}
}

// sendAllGossip sends the whole topology and every channel's full state
// down one connection.
func (n *Node) sendAllGossip(c *conn) {
	n.sendTopology(c)
	n.sendChannels(c)
}

// sendTopology sends our whole topology down one connection.
func (n *Node) sendTopology(c *conn) {
	n.mu.Lock()
	topo := encodeTopology(n.topo.entries(nil))
	n.mu.Unlock()
	for _, m := range topo {
		c.send(m)
	}
}

// sendChannels sends every channel's full state down one connection.
func (n *Node) sendChannels(c *conn) {
	n.mu.Lock()
	chans := make([]*GossipChannel, 0, len(n.channels))
	for _, name := range sortedKeys(n.channels) {
		chans = append(chans, n.channels[name])
	}
	n.mu.Unlock()
	for _, ch := range chans {
		if d := ch.g.Gossip(); d != nil {
			c.send(encodeGossip(tagGossip, ch.name, n.cfg.Name, d.Encode()))
		}
	}
}

// relayedTo returns the changed entries neighbour c needs from us: all
// but c's own entry (unless it is of another incarnation: c must see a
// clash of its name) and the entries whose owner lists a connection to
// c, which the owner sends c itself when it makes them (every owner
// sends its changed entry to every neighbour). In a dense mesh this
// keeps a change from being sent once per pair of neighbours; an entry
// lost on the way comes back with the next summary (summary.go).
func relayedTo(c *conn, changed []peerEntry) []peerEntry {
	var out []peerEntry
	for i := range changed {
		e := &changed[i]
		if e.Name == c.remote.Name && e.UID == c.remote.UID {
			continue
		}
		if e.Name != c.node.cfg.Name && slices.ContainsFunc(e.Conns, func(ce connEntry) bool { return ce.Peer == c.remote.Name }) {
			continue
		}
		out = append(out, *e)
	}
	return out
}
