package mesh

import "fmt"

// featTopoSummary is the extra feature by which a peer says it
// understands topology summaries (tag 9): its neighbours send it a
// summary every GossipInterval instead of their whole topology.
const featTopoSummary = "topology-summary"

// topoSummary condenses a topology: how many signed entries it holds and
// an order-independent hash of their names, incarnations and versions.
// Two routers holding the same entries have the same summary.
type topoSummary struct {
	count uint32
	hash  uint64
}

// summaryLocked returns the summary of our topology.
func (n *Node) summaryLocked() topoSummary { return n.topo.summary() }

// summary returns the summary of the topology's signed entries
// (placeholders of version 0 are never gossiped, so they do not count).
func (t *topology) summary() topoSummary {
	var s topoSummary
	for _, e := range t.peers {
		if e.Version == 0 {
			continue
		}
		s.count++
		s.hash += mix64(uint64(e.Name)) ^ mix64(e.UID+0x9e3779b97f4a7c15) ^ mix64(e.Version^0xbf58476d1ce4e5b9)
	}
	return s
}

// mix64 is splitmix64's finaliser.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// encodeSummary encodes a summary message: tag, count, hash.
func encodeSummary(s topoSummary) []byte {
	e := encoder{b: make([]byte, 0, 13)}
	e.u8(tagTopologySummary)
	e.u32(s.count)
	e.u64(s.hash)
	return e.b
}

func decodeSummary(b []byte) (topoSummary, error) {
	d := newDecoder(b)
	if tag := d.U8(); d.Err() == nil && tag != tagTopologySummary {
		return topoSummary{}, fmt.Errorf("decode topology summary: tag %d", tag)
	}
	s := topoSummary{count: d.U32(), hash: d.U64()}
	if err := d.Err(); err != nil {
		return topoSummary{}, fmt.Errorf("decode topology summary: %w", err)
	}
	return s, nil
}

// handleSummary answers a neighbour's summary: when it differs from
// ours, the neighbour lacks entries we hold or holds some we lack; we
// send it our whole topology (and it sends us its own when our summary
// reaches it). Equal summaries cost nothing more.
func (n *Node) handleSummary(c *conn, msg []byte) error {
	s, err := decodeSummary(msg)
	if err != nil {
		return err
	}
	n.mu.Lock()
	same := n.summaryLocked() == s
	n.mu.Unlock()
	if !same {
		n.summaryMismatches.Add(1)
		n.sendTopology(c)
	}
	return nil
}

// SummaryMismatches returns how many topology summaries from neighbours
// differed from ours, each answered with our whole topology. At rest it
// stays still; it grows while changes travel and when entries were lost.
func (n *Node) SummaryMismatches() uint64 { return n.summaryMismatches.Load() }
