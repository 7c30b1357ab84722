package mesh

import (
	"fmt"
	"maps"
	"slices"
)

// GossipData is a mergeable piece of gossiped state. The node calls its
// methods from its own goroutines (never concurrently for one value it
// was handed) and does not keep the slices Encode returns after sending.
type GossipData interface {
	// Encode serialises the data into one or more messages, each of
	// which the receiving Gossiper handles separately.
	Encode() [][]byte
	// Merge folds other into the receiver and returns the result (which
	// may be the receiver itself).
	Merge(other GossipData) GossipData
}

// Gossiper receives the gossip of one channel. The node calls it from
// connection reader goroutines, possibly concurrently, so implementations
// synchronise themselves. msg and update slices are valid only during the
// call.
//
// The src of a unicast or broadcast is authenticated: the message carries
// src's signature by its identity key, which the node checks against the
// key in src's topology entry before calling the Gossiper, so a member
// cannot send in another peer's name. Neighbour gossip (OnGossip) comes
// from the neighbour itself, and carries whatever it holds of anyone's.
type Gossiper interface {
	// OnGossipUnicast handles a message sent to us with GossipUnicast.
	OnGossipUnicast(src PeerName, msg []byte) error
	// OnGossipBroadcast merges a broadcast from src and returns what was
	// new to us (nil if nothing); if anything was, the broadcast is relayed
	// unchanged further along src's broadcast tree.
	OnGossipBroadcast(src PeerName, update []byte) (received GossipData, err error)
	// Gossip returns our complete state, sent to neighbours periodically
	// and on new connections; nil when there is nothing to send.
	Gossip() (complete GossipData)
	// OnGossip merges neighbour gossip and returns what was new to us
	// (nil if nothing); that is passed on to our other neighbours.
	OnGossip(msg []byte) (delta GossipData, err error)
}

// GossipChannel sends the gossip of one named channel.
type GossipChannel struct {
	name string
	node *Node
	g    Gossiper
}

// RegisterGossip registers the Gossiper of channel name (at most 255
// bytes) and returns the channel to send on. Registering a name again
// replaces its Gossiper.
func (n *Node) RegisterGossip(name string, g Gossiper) *GossipChannel {
	if len(name) > 255 {
		name = name[:255]
	}
	c := &GossipChannel{name: name, node: n, g: g}
	n.mu.Lock()
	n.channels[name] = c
	n.mu.Unlock()
	return c
}

// Name returns the channel name.
func (c *GossipChannel) Name() string { return c.name }

// GossipUnicast sends msg to the channel's Gossiper on dst, hop by hop
// along the control routes.
func (c *GossipChannel) GossipUnicast(dst PeerName, msg []byte) error {
	e := encoder{b: make([]byte, 0, 2+len(c.name)+12+len(msg)+identitySigLen)}
	e.u8(tagGossipUnicast)
	e.str8(c.name)
	e.name(c.node.cfg.Name)
	e.name(dst)
	e.bytes(msg)
	return c.node.forwardUnicast(dst, signGossip(c.node.cfg.Identity, e.b))
}

// GossipBroadcast sends data to every reachable peer along our broadcast
// tree.
func (c *GossipChannel) GossipBroadcast(data GossipData) {
	if data == nil {
		return
	}
	msg := signGossip(c.node.cfg.Identity, encodeGossip(tagGossipBroadcast, c.name, c.node.cfg.Name, data.Encode()))
	c.node.relayBroadcast(c.node.cfg.Name, msg, nil)
}

// GossipNeighbours sends data to every neighbour; each passes on what
// was new to it.
func (c *GossipChannel) GossipNeighbours(data GossipData) {
	if data == nil {
		return
	}
	c.node.sendNeighbours(encodeGossip(tagGossip, c.name, c.node.cfg.Name, data.Encode()), nil)
}

// signGossip appends src's signature to a unicast or broadcast message.
func signGossip(id *Identity, msg []byte) []byte {
	return append(msg, id.sign(sigContextGossip, msg)...)
}

// encodeGossip builds a gossip or broadcast message: tag, channel name
// (u8 length), source name, u16 part count, parts (u32 length + bytes).
// A broadcast is then signed (signGossip).
func encodeGossip(tag byte, channel string, src PeerName, parts [][]byte) []byte {
	size := 2 + len(channel) + 6 + 2
	for _, p := range parts {
		size += 4 + len(p)
	}
	e := encoder{b: make([]byte, 0, size)}
	e.u8(tag)
	e.str8(channel)
	e.name(src)
	e.u16(uint16(len(parts)))
	for _, p := range parts {
		e.u32(uint32(len(p)))
		e.bytes(p)
	}
	return e.b
}

// gossipMsg is a decoded gossip message.
type gossipMsg struct {
	tag     byte
	channel string
	src     PeerName
	dst     PeerName // unicast only
	parts   [][]byte // gossip and broadcast; alias the message
	payload []byte   // unicast; aliases the message
	signed  []byte   // unicast and broadcast: what sig covers
	sig     []byte   // unicast and broadcast: src's signature
}

// decodeGossip parses a gossip, unicast or broadcast message.
func decodeGossip(b []byte) (gossipMsg, error) {
	d := newDecoder(b)
	var m gossipMsg
	m.tag = d.U8()
	m.channel = d.Str8()
	m.src = d.name()
	if m.tag == tagGossipUnicast {
		m.dst = d.name()
		rest := d.Rest()
		if len(rest) < identitySigLen {
			return m, fmt.Errorf("decode gossip: unicast without a signature: %w", ErrTruncated)
		}
		m.payload, m.sig = rest[:len(rest)-identitySigLen], rest[len(rest)-identitySigLen:]
		m.signed = b[:len(b)-identitySigLen]
	} else {
		n := int(d.U16())
		if d.Err() == nil && n*4 > d.Len() {
			return m, fmt.Errorf("decode gossip: %d parts: %w", n, ErrTruncated)
		}
		for i := 0; i < n && d.Err() == nil; i++ {
			m.parts = append(m.parts, d.Take(int(d.U32())))
		}
		if m.tag == tagGossipBroadcast {
			m.signed = b[:len(b)-d.Len()]
			m.sig = d.Take(identitySigLen)
		}
	}
	if err := d.Done(); err != nil {
		return m, fmt.Errorf("decode gossip: %w", err)
	}
	return m, nil
}

// handleGossip dispatches a gossip message received on c. A Gossiper's
// error is logged and the message dropped; the connection stays up.
func (n *Node) handleGossip(c *conn, b []byte) error {
	m, err := decodeGossip(b)
	if err != nil {
		return err
	}
	n.mu.Lock()
	ch := n.channels[m.channel]
	n.mu.Unlock()
	log := func(err error) {
		n.log.Warn("gossip", "channel", m.channel, "from", c.remote.Name.String(), "src", m.src.String(), "err", err)
	}
	if err := n.checkGossipSource(c, &m); err != nil {
		if n.gossipRefused.Add(1) == 1 || c.noteTopoRefusal() {
			log(err)
		}
		return nil
	}
	switch m.tag {
	case tagGossipUnicast:
		if m.dst != n.cfg.Name {
			if err := n.forwardUnicast(m.dst, slices.Clone(b)); err != nil {
				log(err)
			}
			return nil
		}
		if ch != nil {
			if err := ch.g.OnGossipUnicast(m.src, m.payload); err != nil {
				log(err)
			}
		}
	case tagGossipBroadcast:
		if ch == nil { // relay what we cannot interpret unchanged
			n.relayBroadcast(m.src, slices.Clone(b), c)
			return nil
		}
		var delta GossipData
		for _, p := range m.parts {
			d, err := ch.g.OnGossipBroadcast(m.src, p)
			if err != nil {
				log(err)
				continue
			}
			delta = mergeData(delta, d)
		}
		if delta != nil {
			// Unchanged: only src can sign it.
			n.relayBroadcast(m.src, slices.Clone(b), c)
		}
	case tagGossip:
		if ch == nil {
			return nil
		}
		var delta GossipData
		for _, p := range m.parts {
			d, err := ch.g.OnGossip(p)
			if err != nil {
				log(err)
				continue
			}
			delta = mergeData(delta, d)
		}
		if delta != nil {
			n.sendNeighbours(encodeGossip(tagGossip, m.channel, n.cfg.Name, delta.Encode()), c)
		}
	}
	return nil
}

// checkGossipSource checks who a gossip message claims to come from:
// neighbour gossip from the neighbour itself, a unicast or broadcast
// signed by the key of its source's topology entry (a unicast only where
// it is delivered; relays pass it on as it is).
func (n *Node) checkGossipSource(c *conn, m *gossipMsg) error {
	switch m.tag {
	case tagGossip:
		if m.src != c.remote.Name {
			return fmt.Errorf("%w: neighbour gossip names %s as its source", ErrForgedSource, m.src)
		}
		return nil
	case tagGossipUnicast:
		if m.dst != n.cfg.Name {
			return nil
		}
	}
	n.mu.Lock()
	var key []byte
	if e, ok := n.topo.peers[m.src]; ok {
		key = e.Key
	}
	n.mu.Unlock()
	if key == nil {
		return fmt.Errorf("%w: %s is not in our topology", ErrForgedSource, m.src)
	}
	if !verifySig(key, sigContextGossip, m.signed, m.sig) {
		return fmt.Errorf("%w: not signed by %s", ErrForgedSource, m.src)
	}
	return nil
}

// GossipRefused returns how many gossip messages were dropped because
// they did not come from the source they name. Safe for concurrent use.
func (n *Node) GossipRefused() uint64 { return n.gossipRefused.Load() }

func mergeData(acc, d GossipData) GossipData {
	switch {
	case d == nil:
		return acc
	case acc == nil:
		return d
	default:
		return acc.Merge(d)
	}
}

// forwardUnicast sends msg towards dst.
func (n *Node) forwardUnicast(dst PeerName, msg []byte) error {
	next, ok := n.ctrlRoutes.Load().Unicast(dst)
	n.mu.Lock()
	c := n.conns[next]
	if !ok || c == nil {
		c = n.conns[dst] // a neighbour not yet in the routes
	}
	n.mu.Unlock()
	if c == nil {
		return fmt.Errorf("gossip unicast to %s: %w", dst, ErrNoRoute)
	}
	return c.send(msg)
}

// relayBroadcast sends a broadcast from src to our children in src's
// broadcast tree, never back to from.
func (n *Node) relayBroadcast(src PeerName, msg []byte, from *conn) {
	next := n.ctrlRoutes.Load().Broadcast(src)
	n.mu.Lock()
	var out []*conn
	for _, p := range next {
		if c := n.conns[p]; c != nil && c != from {
			out = append(out, c)
		}
	}
	n.mu.Unlock()
	for _, c := range out {
		c.send(msg)
	}
}

// sendNeighbours sends msg to every registered connection except from.
func (n *Node) sendNeighbours(msg []byte, from *conn) {
	n.mu.Lock()
	out := n.connsSnapshotLocked()
	n.mu.Unlock()
	for _, c := range out {
		if c != from {
			c.send(msg)
		}
	}
}

func sortedPeers[V any](m map[PeerName]V) []PeerName {
	return slices.Sorted(maps.Keys(m))
}
