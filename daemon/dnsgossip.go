package daemon

import (
	"fmt"

	"github.com/weftnet/weft/mesh"
	"github.com/weftnet/weft/nameserver"
)

// dnsChannel is the name of the mesh gossip channel of DNS records.
const dnsChannel = "dns"

// dnsData is a record set as mesh gossip data.
type dnsData struct{ set *nameserver.RecordSet }

// Encode implements mesh.GossipData.
func (d dnsData) Encode() [][]byte { return d.set.Encode() }

// Merge implements mesh.GossipData.
func (d dnsData) Merge(o mesh.GossipData) mesh.GossipData {
	other, ok := o.(dnsData)
	if !ok {
		return d
	}
	return dnsData{d.set.Merge(other.set)}
}

// wrapSet turns a record set into gossip data; an empty set is nil (never a
// typed nil inside the interface), which the mesh does not send.
func wrapSet(s *nameserver.RecordSet) mesh.GossipData {
	if s.Len() == 0 {
		return nil
	}
	return dnsData{s}
}

// dnsGossiper connects the record store to the mesh's gossip channel
// "dns". The mesh calls it from connection reader goroutines; the store
// synchronises itself.
type dnsGossiper struct {
	store *nameserver.Store
	ch    *mesh.GossipChannel // set right after RegisterGossip, before the node starts
}

func (g *dnsGossiper) merge(b []byte) (mesh.GossipData, error) {
	set, err := nameserver.DecodeRecordSet(b)
	if err != nil {
		return nil, err
	}
	return g.mergeSet(set), nil
}

func (g *dnsGossiper) mergeSet(set *nameserver.RecordSet) mesh.GossipData {
	delta, reassert := g.store.Merge(set)
	g.broadcast(reassert)
	return wrapSet(delta)
}

// broadcast sends a local change (or a re-assertion) to every peer: along
// our broadcast tree, and also to our neighbours, who pass on what is new to
// them. The second path covers a change made while the mesh's routes do
// not yet include a new neighbour (the tree would miss it until the next
// periodic gossip); merging makes the duplicate harmless.
func (g *dnsGossiper) broadcast(set *nameserver.RecordSet) {
	if d := wrapSet(set); d != nil {
		g.ch.GossipBroadcast(d)
		g.ch.GossipNeighbours(d)
	}
}

// OnGossipBroadcast implements mesh.Gossiper. A broadcast carries only
// records of its source (its local changes and re-assertions; relays pass
// on a part of it, under the same source): one holding another peer's
// record is refused whole (issue 16). The mesh has checked that src signed
// the broadcast. Neighbour gossip (OnGossip) carries every peer's records
// and is not restricted.
func (g *dnsGossiper) OnGossipBroadcast(src mesh.PeerName, b []byte) (mesh.GossipData, error) {
	set, err := nameserver.DecodeRecordSet(b)
	if err != nil {
		return nil, err
	}
	if !set.OwnedOnlyBy(src) {
		return nil, fmt.Errorf("DNS broadcast from %s: %w", src, nameserver.ErrForeignRecord)
	}
	return g.mergeSet(set), nil
}

// OnGossip implements mesh.Gossiper.
func (g *dnsGossiper) OnGossip(b []byte) (mesh.GossipData, error) { return g.merge(b) }

// OnGossipUnicast implements mesh.Gossiper; the channel sends no unicasts.
func (g *dnsGossiper) OnGossipUnicast(mesh.PeerName, []byte) error { return nil }

// Gossip implements mesh.Gossiper: every record, tombstones included.
func (g *dnsGossiper) Gossip() mesh.GossipData { return wrapSet(g.store.Gossip()) }
