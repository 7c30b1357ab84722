package nameserver

import (
	"cmp"
	"slices"
	"strings"

	"github.com/weftnet/weft/mesh"
)

// RecordSet is a set of records as gossiped: at most one record per key (the
// one that supersedes the others). It is the gossip data of the DNS channel:
// Encode gives the wire messages, Merge coalesces pending updates. A
// RecordSet is not safe for concurrent mutation; the store hands out fresh
// sets that the caller owns. Methods treat a nil *RecordSet as empty.
type RecordSet struct {
	m map[recordKey]Record
}

// NewRecordSet returns a set holding records (later ones superseding
// earlier ones by the merge rule).
func NewRecordSet(records ...Record) *RecordSet {
	s := &RecordSet{m: make(map[recordKey]Record, len(records))}
	for _, r := range records {
		s.add(r)
	}
	return s
}

// add keeps r unless the set already holds a record that supersedes it.
func (s *RecordSet) add(r Record) {
	k := r.key()
	if old, ok := s.m[k]; ok && !r.supersedes(&old) {
		return
	}
	s.m[k] = r
}

// Len returns the number of records in the set.
func (s *RecordSet) Len() int {
	if s == nil {
		return 0
	}
	return len(s.m)
}

// Records returns the records sorted by name (ignoring case), address,
// owner and target.
func (s *RecordSet) Records() []Record {
	if s == nil {
		return nil
	}
	out := make([]Record, 0, len(s.m))
	for _, r := range s.m {
		out = append(out, r)
	}
	sortRecords(out)
	return out
}

// OwnedOnlyBy reports whether every record of the set is owned by owner
// (true for an empty set). A DNS broadcast carries only records of the
// peer that started it; the integrator refuses one that does not.
func (s *RecordSet) OwnedOnlyBy(owner mesh.PeerName) bool {
	if s == nil {
		return true
	}
	for k := range s.m {
		if k.owner != owner {
			return false
		}
	}
	return true
}

// Merge adds other's records to s, keeping per key the record that
// supersedes, and returns s. other is not changed. As in weaveworks/mesh, the
// receiver is updated in place; a nil receiver returns a copy of other.
func (s *RecordSet) Merge(other *RecordSet) *RecordSet {
	if s == nil {
		s = NewRecordSet()
	}
	if other == nil {
		return s
	}
	for _, r := range other.m {
		s.add(r)
	}
	return s
}

func sortRecords(rs []Record) {
	slices.SortFunc(rs, func(a, b Record) int {
		if c := strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)); c != 0 {
			return c
		}
		if c := a.Addr.Compare(b.Addr); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Owner, b.Owner); c != 0 {
			return c
		}
		return strings.Compare(a.Target, b.Target)
	})
}
