package nameserver

import (
	"github.com/weftnet/weft/mesh"
)

// Gossip returns the store's complete state, tombstones included, for a
// periodic full gossip or a peer that joined late.
func (s *Store) Gossip() *RecordSet {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := &RecordSet{m: make(map[recordKey]Record, len(s.records))}
	for k, r := range s.records {
		out.m[k] = *r
	}
	return out
}

// Merge applies records received by gossip. It returns delta, the received
// records that changed this store (to relay onward), and reassert, records of
// our own that this router must broadcast itself because somebody holds a
// different version of them:
//   - another peer holds a newer or different version of a record of ours
//     (we restarted and reused versions): ours goes out again with a version
//     above theirs;
//   - another peer holds a live record claiming to be ours that we do not
//     know (left from a previous incarnation): it is tombstoned above its
//     version;
//   - another peer holds an older version of ours: ours goes out unchanged.
//
// Records of other peers replace ours-held copies when they supersede them
// (higher version, or equal version and tombstone). A received record never
// changes a record of ours: this router is the authority for its own records
// and answers with its version instead. Records whose version is above
// VersionCeiling (this store's clock plus StoreConfig.VersionAhead) are
// ignored, so that nobody can pin a record at a version its owner cannot
// exceed. Either result may be empty, never nil. Merge is idempotent and commutative per record, so stores
// that exchange their states in any order converge.
func (s *Store) Merge(in *RecordSet) (delta, reassert *RecordSet) {
	delta, reassert = NewRecordSet(), NewRecordSet()
	if in.Len() == 0 {
		return delta, reassert
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	ceiling := VersionCeiling(now, s.ahead)
	refused := 0
	defer func() {
		if refused > 0 {
			s.log.Debug("dns: ignored records with versions above the ceiling", "count", refused, "ceiling", ceiling)
		}
	}()
	for k, r := range in.m {
		if r.Version > ceiling {
			refused++
			continue
		}
		old := s.records[k]
		if r.Owner == s.self {
			if old != nil && old.sameState(&r) || !s.verified(&r) {
				continue
			}
			s.mergeOwn(r, old, delta, reassert)
			continue
		}
		if s.knownPeer != nil && !s.knownPeer(r.Owner) {
			continue
		}
		if old != nil && !r.supersedes(old) || !s.verified(&r) {
			continue
		}
		r.Changed = now
		s.put(&r)
		delta.add(r)
	}
	return delta, reassert
}

// mergeOwn handles a received record that claims to be ours: it never
// changes what we hold, except to remember a tombstone of a record we do not
// have. r.Version is at most the ceiling (far below MaxVersion), so r.Version+1
// does not wrap. The caller holds the write lock.
func (s *Store) mergeOwn(r Record, ours *Record, delta, reassert *RecordSet) {
	switch {
	case ours == nil && r.Tombstone:
		// A removal we have forgotten: keep it so that it keeps winning.
		r.Changed = s.now()
		s.put(&r)
		delta.add(r)
	case ours == nil:
		// A record of a previous incarnation, or a forged one: take it back.
		r.Version++
		r.Tombstone = true
		r.Changed = s.now()
		s.signOwn(&r)
		s.put(&r)
		reassert.add(r)
		s.log.Debug("dns: tombstoning stale record of a previous incarnation", "record", r)
	case ours.sameState(&r):
	case r.supersedes(ours):
		// We restarted and reused versions, or somebody forged a change
		// to our record: ours goes out above theirs.
		mine := *ours
		mine.Version = r.Version + 1
		mine.Changed = s.now()
		s.signOwn(&mine)
		s.put(&mine)
		reassert.add(mine)
		s.log.Debug("dns: re-asserting own record over a newer remote version", "record", mine, "remote_version", r.Version)
	default:
		reassert.add(*ours)
	}
}

// PeerGone forgets every record owned by peer, which has left the cluster
// for good, and returns how many were dropped. Our own records are kept.
// Should the peer come back, its own gossip brings its records back.
func (s *Store) PeerGone(peer mesh.PeerName) int {
	if peer == s.self {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k := range s.records {
		if k.owner == peer {
			s.drop(k)
			n++
		}
	}
	return n
}

// GC forgets tombstones that have not changed for the tombstone TTL and
// returns how many. The integrator calls it periodically (every minute is
// plenty).
func (s *Store) GC() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	cutoff := s.now().Add(-s.ttl)
	n := 0
	for k, r := range s.records {
		if r.Tombstone && !r.Changed.After(cutoff) {
			s.drop(k)
			n++
		}
	}
	return n
}
