package mesh

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
)

// peerEntry is one peer's entry in the topology: who it is and the
// connections it reports. Entries are values; the topology replaces them
// whole, never edits them in place.
type peerEntry struct {
	Name     PeerName
	Key      []byte // the peer's public identity key; Name is NameOf(Key)
	NickName string
	UID      uint64 // incarnation
	Version  uint64 // bumped by the peer whenever its connections change
	Conns    []connEntry
	Sig      []byte // the peer's signature over the rest (signedBytes)
}

// connEntry is one connection as reported by the peer at its near end.
type connEntry struct {
	Peer        PeerName       // remote end
	Addr        netip.AddrPort // remote TCP address as seen by the reporting peer
	Outbound    bool           // the reporting peer dialled it
	Established bool           // the data path is up
}

// newer reports whether e should replace cur: a higher version wins; at
// equal versions the higher UID wins, so that every peer picks the same
// entry. A restarted peer starts at a low version but, on hearing of its
// older incarnation, bumps its version above it (see merge).
func (e *peerEntry) newer(cur *peerEntry) bool {
	if e.Version != cur.Version {
		return e.Version > cur.Version
	}
	return e.UID > cur.UID
}

// topology is the set of peer entries known to one peer, including its
// own. It is not safe for concurrent use; the Node guards it.
type topology struct {
	self  PeerName
	peers map[PeerName]*peerEntry
}

func newTopology(self *peerEntry) *topology {
	t := &topology{self: self.Name, peers: map[PeerName]*peerEntry{}}
	t.peers[self.Name] = self
	return t
}

// setSelf replaces our own entry.
func (t *topology) setSelf(e *peerEntry) { t.peers[t.self] = e }

// merge applies received entries. It returns the entries that changed our
// view (to be relayed to neighbours) and, when an entry describes an older
// incarnation of ourselves with a version at least ours, the version our
// own entry must exceed (0 otherwise).
func (t *topology) merge(in []peerEntry) (delta []PeerName, selfVersionFloor uint64) {
	self := t.peers[t.self]
	for i := range in {
		e := in[i]
		if e.Name == t.self {
			if e.UID != self.UID && e.Version >= self.Version {
				// Saturating: the floor never wraps to a low version.
				selfVersionFloor = max(selfVersionFloor, e.Version+1, e.Version)
			}
			continue
		}
		if cur, ok := t.peers[e.Name]; ok && !e.newer(cur) {
			continue
		}
		e.Conns = slices.Clone(e.Conns)
		e.Key, e.Sig = slices.Clone(e.Key), slices.Clone(e.Sig)
		t.peers[e.Name] = &e
		delta = append(delta, e.Name)
	}
	return delta, selfVersionFloor
}

// entries returns the entries of the named peers (all when names is nil),
// sorted by name, skipping unknown names.
func (t *topology) entries(names []PeerName) []peerEntry {
	if names == nil {
		names = slices.Collect(maps.Keys(t.peers))
	}
	slices.Sort(names)
	names = slices.Compact(names)
	out := make([]peerEntry, 0, len(names))
	for _, n := range names {
		if e, ok := t.peers[n]; ok {
			out = append(out, *e)
		}
	}
	return out
}

// gc removes peers we cannot reach by following reported connections from
// ourselves, and returns their names sorted.
func (t *topology) gc() []PeerName {
	seen := map[PeerName]bool{t.self: true}
	queue := []PeerName{t.self}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range t.peers[p].Conns {
			if _, known := t.peers[c.Peer]; known && !seen[c.Peer] {
				seen[c.Peer] = true
				queue = append(queue, c.Peer)
			}
		}
	}
	var gone []PeerName
	for n := range t.peers {
		if !seen[n] {
			gone = append(gone, n)
			delete(t.peers, n)
		}
	}
	slices.Sort(gone)
	return gone
}

// Topology wire format (protocol version 2): u16 count, then per entry:
// name(6) key(32) uid(8) version(8) nick(u8 len + bytes) u16 conn count,
// then per connection: peer(6) flags(1: bit0 outbound, bit1 established)
// address; then the entry's signature (64). The signature is the peer's
// own, over the entry's encoding without it (signedBytes). A message holds
// at most maxEntriesPerMessage entries; encodeTopology splits.
const (
	connFlagOutbound    = 1 << 0
	connFlagEstablished = 1 << 1
	minEntrySize        = 6 + IdentityKeyLen + 8 + 8 + 1 + 2 + identitySigLen
	minConnSize         = 6 + 1 + 1 + 2

	// maxEntriesPerMessage bounds one topology message: the whole
	// topology goes out in as many messages as it takes.
	maxEntriesPerMessage = 256
)

// appendEntryBody appends an entry's encoding without its signature.
func (e *encoder) entryBody(p *peerEntry) {
	e.name(p.Name)
	e.bytes(p.Key)
	e.u64(p.UID)
	e.u64(p.Version)
	e.str8(p.NickName)
	e.u16(uint16(len(p.Conns)))
	for _, c := range p.Conns {
		e.name(c.Peer)
		var f byte
		if c.Outbound {
			f |= connFlagOutbound
		}
		if c.Established {
			f |= connFlagEstablished
		}
		e.u8(f)
		e.addr(c.Addr)
	}
}

// signedBytes is what an entry's signature covers.
func (p *peerEntry) signedBytes() []byte {
	e := encoder{b: make([]byte, 0, 64+len(p.Conns)*16)}
	e.entryBody(p)
	return e.b
}

// signEntry signs our own entry.
func signEntry(id *Identity, p *peerEntry) {
	p.Key = id.Public()
	p.Sig = id.sign(sigContextEntry, p.signedBytes())
}

// verifyEntry checks that an entry is its named peer's own word: the
// name belongs to the key and the key signed the entry.
func verifyEntry(p *peerEntry) error {
	if !nameMatchesKey(p.Name, p.Key) {
		return fmt.Errorf("entry of %s: %w", p.Name, ErrNameNotKey)
	}
	if !verifySig(p.Key, sigContextEntry, p.signedBytes(), p.Sig) {
		return fmt.Errorf("entry of %s: %w", p.Name, ErrBadSignature)
	}
	return nil
}

// encodeTopology encodes entries as one or more topology messages of at
// most maxEntriesPerMessage entries each. Unsigned entries, and entries
// whose connection list cannot be encoded (more than 65535; no router
// makes one), are left out.
func encodeTopology(entries []peerEntry) [][]byte {
	var msgs [][]byte
	for len(entries) > 0 {
		n := min(len(entries), maxEntriesPerMessage)
		msgs = append(msgs, encodeTopologyMessage(entries[:n]))
		entries = entries[n:]
	}
	return msgs
}

func encodeTopologyMessage(entries []peerEntry) []byte {
	e := encoder{b: make([]byte, 0, 3+len(entries)*(minEntrySize+32))}
	e.u8(tagTopology)
	countAt := len(e.b)
	e.u16(0)
	count := 0
	for i := range entries {
		p := &entries[i]
		if len(p.Conns) > 0xffff || len(p.Key) != IdentityKeyLen || len(p.Sig) != identitySigLen {
			// Unsigned: a placeholder for a peer whose own entry has
			// not arrived yet (register); it is ours only.
			continue
		}
		e.entryBody(p)
		e.b = append(e.b, p.Sig...)
		count++
	}
	e.b[countAt], e.b[countAt+1] = byte(count>>8), byte(count)
	return e.b
}

// decodeTopology parses a topology message, tag byte included. It checks
// the shape of every entry, not its signature (verifyEntry).
func decodeTopology(b []byte) ([]peerEntry, error) {
	d := newDecoder(b)
	if tag := d.U8(); d.Err() == nil && tag != tagTopology {
		return nil, fmt.Errorf("decode topology: unexpected message tag %d", tag)
	}
	n := int(d.U16())
	if n > maxEntriesPerMessage {
		return nil, fmt.Errorf("decode topology: %d entries in one message (max %d)", n, maxEntriesPerMessage)
	}
	if d.Err() == nil && n*minEntrySize > d.Len() {
		return nil, fmt.Errorf("decode topology: %d entries: %w", n, ErrTruncated)
	}
	out := make([]peerEntry, 0, n)
	for i := 0; i < n && d.Err() == nil; i++ {
		var p peerEntry
		p.Name = d.name()
		p.Key = slices.Clone(d.Take(IdentityKeyLen))
		p.UID = d.U64()
		p.Version = d.U64()
		p.NickName = d.Str8()
		nc := int(d.U16())
		if d.Err() == nil && nc*minConnSize > d.Len() {
			return nil, fmt.Errorf("decode topology: %d connections: %w", nc, ErrTruncated)
		}
		if nc > 0 {
			p.Conns = make([]connEntry, 0, nc)
		}
		for j := 0; j < nc && d.Err() == nil; j++ {
			var c connEntry
			c.Peer = d.name()
			f := d.U8()
			c.Outbound = f&connFlagOutbound != 0
			c.Established = f&connFlagEstablished != 0
			c.Addr = d.addr()
			p.Conns = append(p.Conns, c)
		}
		p.Sig = slices.Clone(d.Take(identitySigLen))
		if d.Err() == nil && (p.Name == UnknownPeerName || p.UID == 0) {
			return nil, fmt.Errorf("decode topology: entry %d has a zero name or UID", i)
		}
		out = append(out, p)
	}
	if err := d.Done(); err != nil {
		return nil, fmt.Errorf("decode topology: %w", err)
	}
	return out, nil
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
