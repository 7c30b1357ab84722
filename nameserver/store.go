package nameserver

import (
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/mesh"
)

// DefaultTombstoneTTL is how long a store keeps a tombstone after it last
// changed, by its own clock, before it forgets it.
const DefaultTombstoneTTL = 30 * time.Minute

// StoreConfig configures a Store.
type StoreConfig struct {
	// Self is this router's peer name; records it owns are "ours". Required.
	Self mesh.PeerName
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// TombstoneTTL is how long tombstones are kept; zero means DefaultTombstoneTTL.
	TombstoneTTL time.Duration
	// KnownPeer, if set, tells whether a peer is in the current topology.
	// Merge drops records owned by peers it does not know, so that gossip
	// from a slow peer does not bring back the records of a peer gone for good.
	KnownPeer func(mesh.PeerName) bool
	// VersionAhead bounds the versions Merge accepts: at most the Unix time
	// in milliseconds plus VersionAhead, by this store's clock (see
	// VersionCeiling). Zero means DefaultVersionAhead.
	VersionAhead time.Duration
	// Sign, if set, signs the bytes of a record of ours (with the router's
	// identity key, under SignatureContext); every record this store
	// makes or changes of its own carries the signature.
	Sign func(msg []byte) []byte
	// Verify, if set, checks the owner's signature of a received record;
	// Merge drops records that fail it, so that only a record's owner can
	// make or change it (a member cannot add, repoint, remove or pin
	// another peer's names). The integrator passes the mesh's check
	// against the owner's identity key; without it, the store trusts
	// what it is given.
	Verify func(owner mesh.PeerName, msg, sig []byte) bool
	// Logger receives debug lines about re-asserted records; nil means discard.
	Logger *slog.Logger
}

// Store holds every record of the cluster: ours, which only this router
// changes, and everybody else's, learned by gossip. It is safe for concurrent
// use; lookups take a read lock only.
type Store struct {
	self      mesh.PeerName
	now       func() time.Time
	ttl       time.Duration
	knownPeer func(mesh.PeerName) bool
	ahead     time.Duration
	sign      func([]byte) []byte
	verify    func(mesh.PeerName, []byte, []byte) bool
	log       *slog.Logger
	unsigned  atomic.Uint64 // received records refused for their signature

	mu      sync.RWMutex
	records map[recordKey]*Record    // all records, tombstones included
	byName  map[string][]*Record     // live records by lower-cased name
	byAddr  map[netip.Addr][]*Record // live records by address
}

// NewStore returns an empty store.
func NewStore(cfg StoreConfig) (*Store, error) {
	if cfg.Self == mesh.UnknownPeerName {
		return nil, fmt.Errorf("new DNS store: %w: own peer name missing", ErrMalformed)
	}
	s := &Store{
		self:      cfg.Self,
		now:       cfg.Now,
		ttl:       cfg.TombstoneTTL,
		knownPeer: cfg.KnownPeer,
		ahead:     cfg.VersionAhead,
		sign:      cfg.Sign,
		verify:    cfg.Verify,
		log:       cfg.Logger,
		records:   make(map[recordKey]*Record),
		byName:    make(map[string][]*Record),
		byAddr:    make(map[netip.Addr][]*Record),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.ttl <= 0 {
		s.ttl = DefaultTombstoneTTL
	}
	if s.ahead <= 0 {
		s.ahead = DefaultVersionAhead
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// Self returns the peer name the store treats as its own.
func (s *Store) Self() mesh.PeerName { return s.self }

// Add registers name (fully qualified, any case; see QualifyName) for addr on
// behalf of target, owned by this router. It returns the changed record as a
// set to broadcast, empty if the record was already live with that name.
// Re-adding a removed record revives it with a higher version.
func (s *Store) Add(name string, addr netip.Addr, target string) (*RecordSet, error) {
	r := Record{Name: name, Addr: addr, Owner: s.self, Target: target, Version: 1}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("add DNS record %s %s: %w", name, addr, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.records[r.key()]; ok {
		if !old.Tombstone && old.Name == name {
			return NewRecordSet(), nil
		}
		if old.Version >= MaxVersion {
			return nil, fmt.Errorf("add DNS record %s %s: %w", name, addr, ErrVersionExhausted)
		}
		r.Version = old.Version + 1
	}
	r.Changed = s.now()
	s.signOwn(&r)
	s.put(&r)
	return NewRecordSet(r), nil
}

// signOwn signs a record of ours after a change.
func (s *Store) signOwn(r *Record) {
	if s.sign != nil {
		r.Sig = s.sign(r.signedBytes())
	}
}

// verified reports whether a received record is its owner's word.
func (s *Store) verified(r *Record) bool {
	if s.verify == nil || s.verify(r.Owner, r.signedBytes(), r.Sig) {
		return true
	}
	s.unsigned.Add(1)
	return false
}

// Refused returns how many received records were dropped because their
// owner's signature did not verify.
func (s *Store) Refused() uint64 { return s.unsigned.Load() }

// Filter selects our own records for Remove. Zero fields match anything:
// Name "" any name (otherwise compared ignoring case and trailing dot),
// an invalid Addr any address, Target "" any target.
type Filter struct {
	Name   string
	Addr   netip.Addr
	Target string
}

func (f *Filter) matches(r *Record) bool {
	if f.Name != "" && !strings.EqualFold(strings.TrimSuffix(f.Name, "."), strings.TrimSuffix(r.Name, ".")) {
		return false
	}
	if f.Addr.IsValid() && f.Addr != r.Addr {
		return false
	}
	return f.Target == "" || f.Target == r.Target
}

// Remove turns every live record of ours that matches f into a tombstone and
// returns them as a set to broadcast (empty if nothing matched). Records of
// other peers are never removed here: only their owner removes them.
func (s *Store) Remove(f Filter) *RecordSet {
	out := NewRecordSet()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, old := range s.records {
		if old.Owner != s.self || old.Tombstone || !f.matches(old) || old.Version >= MaxVersion {
			continue
		}
		r := *old
		r.Version++
		r.Tombstone = true
		r.Changed = now
		s.signOwn(&r)
		s.put(&r)
		out.add(r)
	}
	return out
}

// LookupName appends to dst the distinct live addresses of name (fully
// qualified, matched ignoring case) and returns the extended slice. It
// allocates nothing when dst has room and name is lower case.
func (s *Store) LookupName(dst []netip.Addr, name string) []netip.Addr {
	lower := strings.ToLower(name)
	s.mu.RLock()
	defer s.mu.RUnlock()
	start := len(dst)
next:
	for _, r := range s.byName[lower] {
		for _, a := range dst[start:] {
			if a == r.Addr {
				continue next
			}
		}
		dst = append(dst, r.Addr)
	}
	return dst
}

// LookupAddr appends to dst the distinct live names (as registered) that
// resolve to addr and returns the extended slice. When this router has a
// live record of its own for addr (a container attached here), only its own
// names are answered: another peer cannot claim the PTR answer of our
// addresses.
func (s *Store) LookupAddr(dst []string, addr netip.Addr) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	start := len(dst)
	onlyOurs := false
	for _, r := range s.byAddr[addr] {
		if r.Owner == s.self {
			onlyOurs = true
			break
		}
	}
next:
	for _, r := range s.byAddr[addr] {
		if onlyOurs && r.Owner != s.self {
			continue
		}
		for _, n := range dst[start:] {
			if strings.EqualFold(n, r.Name) {
				continue next
			}
		}
		dst = append(dst, r.Name)
	}
	return dst
}

// Own returns copies of our own live records, for the integrator to persist
// and Add again after a restart.
func (s *Store) Own() []Record {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Record
	for _, r := range s.records {
		if r.Owner == s.self && !r.Tombstone {
			out = append(out, *r)
		}
	}
	sortRecords(out)
	return out
}

// Len returns the number of records held, tombstones included.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.records)
}

// put stores r (replacing the record with its key) and updates the indexes.
// The caller holds the write lock.
func (s *Store) put(r *Record) {
	k := r.key()
	if old, ok := s.records[k]; ok {
		s.unindex(old)
	}
	s.records[k] = r
	if !r.Tombstone {
		s.byName[k.name] = append(s.byName[k.name], r)
		s.byAddr[r.Addr] = append(s.byAddr[r.Addr], r)
	}
}

// drop deletes the record with key k. The caller holds the write lock.
func (s *Store) drop(k recordKey) {
	if old, ok := s.records[k]; ok {
		s.unindex(old)
		delete(s.records, k)
	}
}

func (s *Store) unindex(r *Record) {
	if r.Tombstone {
		return
	}
	name := strings.ToLower(r.Name)
	if l := without(s.byName[name], r); len(l) > 0 {
		s.byName[name] = l
	} else {
		delete(s.byName, name)
	}
	if l := without(s.byAddr[r.Addr], r); len(l) > 0 {
		s.byAddr[r.Addr] = l
	} else {
		delete(s.byAddr, r.Addr)
	}
}

// without returns a new slice holding l without r.
func without(l []*Record, r *Record) []*Record {
	out := make([]*Record, 0, len(l))
	for _, x := range l {
		if x != r {
			out = append(out, x)
		}
	}
	return out
}
