package nameserver

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
)

// Entry is one record as shown by `weft status dns` and `weft report`.
type Entry struct {
	Name      string     `json:"name"`
	Address   netip.Addr `json:"address"`
	Owner     string     `json:"owner"`
	Target    string     `json:"target,omitempty"`
	Version   uint64     `json:"version"`
	Tombstone bool       `json:"tombstone,omitempty"`
}

// Snapshot returns the live records, sorted by name, address and owner.
// With tombstones set it returns the removed ones too (for `weft report`).
// The result is the caller's and marshals to JSON as a list of Entry.
func (s *Store) Snapshot(tombstones bool) []Entry {
	s.mu.RLock()
	rs := make([]Record, 0, len(s.records))
	for _, r := range s.records {
		if tombstones || !r.Tombstone {
			rs = append(rs, *r)
		}
	}
	s.mu.RUnlock()
	sortRecords(rs)
	out := make([]Entry, len(rs))
	for i, r := range rs {
		out[i] = Entry{Name: r.Name, Address: r.Addr, Owner: r.Owner.String(),
			Target: r.Target, Version: r.Version, Tombstone: r.Tombstone}
	}
	return out
}

// WriteStatus writes entries as `weft status dns` shows them: one line per
// record with name, address and owning peer, in aligned columns. Names in
// domain (as given by NormalizeDomain) are shown without it; tombstones are
// skipped.
func WriteStatus(w io.Writer, entries []Entry, domain string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, e := range entries {
		if e.Tombstone {
			continue
		}
		name := e.Name
		if d := "." + domain; domain != "" && len(name) > len(d) && strings.EqualFold(name[len(name)-len(d):], d) {
			name = name[:len(name)-len(d)]
		}
		if _, err := fmt.Fprintf(tw, "%s\t%s\t%s\n", name, e.Address, e.Owner); err != nil {
			return fmt.Errorf("write DNS status: %w", err)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write DNS status: %w", err)
	}
	return nil
}
