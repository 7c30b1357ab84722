package ipam

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/weftnet/weft/mesh"
)

// Transport reaches the other routers of the mesh. The Allocator calls it
// without holding its lock; implementations must not block for long.
type Transport interface {
	// Broadcast sends gossip data (an update of ring entries) to every
	// reachable router.
	Broadcast(data mesh.GossipData)
	// Unicast sends msg to the router dst.
	Unicast(dst mesh.PeerName, msg []byte) error
}

// Peers tells the Allocator who the other routers are. It may be called
// with the Allocator's lock held, so it must not call back.
type Peers interface {
	// ReachablePeers lists the routers reachable now, this one included,
	// sorted by name.
	ReachablePeers() []mesh.PeerName
	// PeerNickName returns a peer's nickname, "" if unknown.
	PeerNickName(p mesh.PeerName) string
}

// Persister records what the Allocator decided, so that a restarted
// router keeps its ranges and allocations. Persist is called with the
// Allocator's lock held; an error is logged and the change kept in memory.
type Persister interface {
	Persist(c Change) error
}

// Change is one persisted change of a pool: its whole ring (opaque bytes,
// nil when unchanged), addresses now held (by ident) and addresses freed.
type Change struct {
	Pool  netip.Prefix
	Ring  []byte
	Held  map[netip.Addr]string
	Freed []netip.Addr
}

// SavedPool is a pool as persisted: the last ring saved and the addresses
// held on this router.
type SavedPool struct {
	Pool netip.Prefix
	Ring []byte
	Held map[netip.Addr]string
}

// Config configures an Allocator.
type Config struct {
	// Self is this router's peer name.
	Self mesh.PeerName
	// Range is the --ipalloc-range, the default pool.
	Range netip.Prefix
	// DefaultSubnet is where allocations with no subnet go; zero means the
	// whole Range. It must lie inside Range.
	DefaultSubnet netip.Prefix
	// Transport and Peers connect the Allocator to the mesh; required.
	Transport Transport
	Peers     Peers
	// Persister records changes; nil records nothing.
	Persister Persister
	// Saved is the persisted state to start from. Pools of another range
	// and rings that do not decode are dropped (and logged); addresses held
	// are kept.
	Saved []SavedPool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives the Allocator's logs; nil discards them.
	Logger *slog.Logger
	// RetryInterval is how often an unanswered request is sent again
	// (default 1 s).
	RetryInterval time.Duration
	// Quarantine is how long addresses that a separately seeded ring marks
	// as in use are kept out of allocation here while their holders claim
	// them (default 30 s).
	Quarantine time.Duration
	// TakeoverSettle is how long ranges taken over with rmpeer are kept
	// out of allocation here, so that a second host running rmpeer for the
	// same peer meets this one's takeover before either allocates there
	// and the two converge on one owner (default 3 s).
	TakeoverSettle time.Duration
	// Joining, if set, reports whether this router was told to connect to
	// peers (weft launch PEER, weft connect). While it reaches none of
	// them it does not seed a ring of its own: it would clash with the
	// ring of the mesh it is about to join.
	Joining func() bool
}

// maxPools bounds the pools one router keeps, its own and those it hears of.
const maxPools = 64

// Allocator shares the address pools out with the other routers and hands
// addresses to targets. It implements mesh.Gossiper for the gossip channel
// "ipam". All methods are safe for concurrent use.
type Allocator struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	pools   map[netip.Prefix]*pool
	changed chan struct{} // closed and replaced whenever state changes
	outbox  []outMsg
	denied  map[askKey]time.Time // who refused space, until when
	asked   map[askKey]time.Time // last request sent
	waiting int                  // allocations waiting for space or a ring
	// removed: peers this router ran rmpeer for (TakeOver), in memory
	// only; ranges of theirs learnt later are taken over too while they
	// stay unreachable.
	removed map[mesh.PeerName]bool
}

type askKey struct {
	peer   mesh.PeerName
	subnet netip.Prefix // or the pool, for a ring request
	kind   byte         // kindSpaceRequest or kindRingRequest
}

// outMsg is a message to send once the lock is released: a broadcast
// (data set) or a unicast.
type outMsg struct {
	data mesh.GossipData
	dst  mesh.PeerName
	msg  []byte
}

// quarantined is a span another ring says is in use, kept out of
// allocation until its deadline.
type quarantined struct {
	span  span
	until time.Time
	seed  Seed
	owner mesh.PeerName // who owned the span in that ring; its ClaimsDone lifts it
}

// pool is one shared address pool.
type pool struct {
	prefix  netip.Prefix
	span    span
	ring    ring
	held    *bitset             // nil until this router holds an address here
	idents  map[uint64]string   // address -> ident of what holds it here
	byIdent map[string][]uint64 // ident -> its addresses here
	created bool                // used here (the range, or CreatePool), not only heard of
	quar    []quarantined
	// conflicts are addresses held here that another router holds too.
	conflicts map[uint64]Conflict
	// claimed: address -> when we last asked its owner for it.
	claimed map[uint64]time.Time
	// replies to claims: address -> the answer (denied holder, or "" for
	// not-owner).
	replies map[uint64]claimReply
	delta   map[uint64]entry // our changes not yet broadcast
	// pending: address -> ident of a Claim waiting for the owner's grant;
	// the grant is taken for it as soon as it is merged.
	pending map[uint64]string
	// wanted: address held here -> the peer whose re-claim of it we
	// denied (it holds the address too); it gets the address when freed
	// here, if it is still reachable.
	wanted map[uint64]mesh.PeerName
	// reclaim: an address held here may lie outside our ranges (a merge
	// or a restart moved it); reclaimLocked looks until none does.
	reclaim bool
	// mustSayDone: this router adopted an older ring and has not yet told
	// the others that its claims are sent (kindClaimsDone).
	mustSayDone bool
	// seedAsk is when this router, wanting to seed, asked its peers for a
	// ring they might already have (zero: not asked).
	seedAsk time.Time
}

type claimReply struct {
	denied bool
	holder string
	from   mesh.PeerName
}

// Conflict is an address held on this router that another router also
// holds: the two meshes it came from were seeded apart and both handed it
// out before they met.
type Conflict struct {
	Addr netip.Addr
	// Ident holds it here; Holder on Peer.
	Ident, Holder string
	Peer          mesh.PeerName
}

// New returns an Allocator for cfg, restored from cfg.Saved.
func New(cfg Config) (*Allocator, error) {
	if err := checkPrefix("--ipalloc-range", cfg.Range); err != nil {
		return nil, err
	}
	if !cfg.DefaultSubnet.IsValid() {
		cfg.DefaultSubnet = cfg.Range
	}
	if err := checkPrefix("--ipalloc-default-subnet", cfg.DefaultSubnet); err != nil {
		return nil, err
	}
	if !spanOf(cfg.DefaultSubnet).within(spanOf(cfg.Range)) {
		return nil, fmt.Errorf("--ipalloc-default-subnet %s is not inside --ipalloc-range %s", cfg.DefaultSubnet, cfg.Range)
	}
	if cfg.Transport == nil || cfg.Peers == nil || cfg.Self == mesh.UnknownPeerName {
		return nil, errors.New("ipam: self, transport and peers are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = time.Second
	}
	if cfg.Quarantine <= 0 {
		cfg.Quarantine = 30 * time.Second
	}
	if cfg.TakeoverSettle <= 0 {
		cfg.TakeoverSettle = 3 * time.Second
	}
	a := &Allocator{
		cfg: cfg, log: cfg.Logger,
		pools:   map[netip.Prefix]*pool{},
		changed: make(chan struct{}),
		denied:  map[askKey]time.Time{},
		asked:   map[askKey]time.Time{},
		removed: map[mesh.PeerName]bool{},
	}
	a.newPool(cfg.Range).created = true
	for _, sp := range cfg.Saved {
		a.restore(sp)
	}
	return a, nil
}

func (a *Allocator) newPool(prefix netip.Prefix) *pool {
	s := spanOf(prefix)
	p := &pool{
		prefix: prefix, span: s, ring: ring{pool: s},
		idents: map[uint64]string{}, byIdent: map[string][]uint64{}, conflicts: map[uint64]Conflict{},
		claimed: map[uint64]time.Time{}, replies: map[uint64]claimReply{},
		delta: map[uint64]entry{}, pending: map[uint64]string{}, wanted: map[uint64]mesh.PeerName{},
	}
	a.pools[prefix] = p
	return p
}

// restore loads one persisted pool.
func (a *Allocator) restore(sp SavedPool) {
	p := a.pools[sp.Pool]
	if p == nil {
		if err := a.canAddPool(sp.Pool); err != nil {
			a.log.Warn("dropping persisted IPAM pool", "pool", sp.Pool, "err", err)
			return
		}
		p = a.newPool(sp.Pool)
		p.created = true
	}
	if len(sp.Ring) > 0 {
		u, _, err := decodeMessage(sp.Ring)
		if err == nil && len(u.pools) == 1 && u.pools[0].pool == sp.Pool {
			p.ring.seed = u.pools[0].seed
			p.ring.merge(u.pools[0].ents)
		} else {
			a.log.Warn("persisted IPAM ring unreadable; it will be learnt again from peers", "pool", sp.Pool, "err", err)
		}
	}
	for addr, ident := range sp.Held {
		if v := a2u(addr); p.span.contains(v) {
			p.hold(v, ident)
			p.reclaim = true
		}
	}
}

// canAddPool checks that prefix may become a new pool.
func (a *Allocator) canAddPool(prefix netip.Prefix) error {
	if err := checkPrefix("pool", prefix); err != nil {
		return err
	}
	s := spanOf(prefix)
	for q := range a.pools {
		if q != prefix && spanOf(q).overlaps(s) {
			return fmt.Errorf("pool %s: %w %s", prefix, ErrPoolOverlap, q)
		}
	}
	if len(a.pools) >= maxPools {
		return fmt.Errorf("pool %s: %w (at most %d)", prefix, ErrTooManyPools, maxPools)
	}
	return nil
}

// poolOf returns the pool that contains the whole subnet s.
func (a *Allocator) poolOf(s netip.Prefix) *pool {
	ss := spanOf(s)
	for _, p := range a.pools {
		if ss.within(p.span) {
			return p
		}
	}
	return nil
}

// poolContaining returns the pool address v lies in.
func (a *Allocator) poolContaining(addr netip.Addr) *pool {
	if !addr.Is4() {
		return nil
	}
	v := a2u(addr)
	for _, p := range a.pools {
		if p.span.contains(v) {
			return p
		}
	}
	return nil
}

// wake tells waiters that something changed. Called with a.mu held.
func (a *Allocator) wake() {
	close(a.changed)
	a.changed = make(chan struct{})
}

// flushLocked moves our pending ring changes to the outbox and persists
// them. Called with a.mu held.
func (a *Allocator) flushLocked(p *pool, held map[netip.Addr]string, freed []netip.Addr) {
	var ringBytes []byte
	if len(p.delta) > 0 {
		pu := poolUpdate{pool: p.prefix, seed: p.ring.seed}
		if len(p.delta) == len(p.ring.ents) {
			// Every token changed (a seeding): send the whole ring, which
			// routers with no ring may adopt without asking for it.
			pu.ents, pu.whole = slices.Clone(p.ring.ents), true
		} else {
			pu.ents = slices.SortedFunc(maps.Values(p.delta), byStart)
		}
		clear(p.delta)
		a.outbox = append(a.outbox, outMsg{data: &update{pools: []poolUpdate{pu}}})
		ringBytes = encodeUpdate(p.wholeRing())
	}
	if a.cfg.Persister != nil && (ringBytes != nil || len(held) > 0 || len(freed) > 0) {
		if err := a.cfg.Persister.Persist(Change{Pool: p.prefix, Ring: ringBytes, Held: held, Freed: freed}); err != nil {
			a.log.Warn("persist IPAM state", "pool", p.prefix, "err", err)
		}
	}
	a.wake()
}

// send delivers the outbox. Called without a.mu.
func (a *Allocator) send() {
	a.mu.Lock()
	out := a.outbox
	a.outbox = nil
	a.mu.Unlock()
	for _, m := range out {
		if m.data != nil {
			a.cfg.Transport.Broadcast(m.data)
		} else if err := a.cfg.Transport.Unicast(m.dst, m.msg); err != nil {
			a.log.Debug("IPAM unicast", "to", m.dst, "err", err)
		}
	}
}

// unicastLocked queues msg for dst.
func (a *Allocator) unicastLocked(dst mesh.PeerName, msg []byte) {
	a.outbox = append(a.outbox, outMsg{dst: dst, msg: msg})
}

// nick names a peer for messages: "nickname (name)" or the name.
func (a *Allocator) nick(p mesh.PeerName) string {
	if p == a.cfg.Self {
		return "this host"
	}
	if n := a.cfg.Peers.PeerNickName(p); n != "" && n != p.String() {
		return fmt.Sprintf("host %s (%s)", n, p)
	}
	return "peer " + p.String()
}

// reachable reports whether p is reachable now.
func (a *Allocator) reachableSet() map[mesh.PeerName]bool {
	out := map[mesh.PeerName]bool{a.cfg.Self: true}
	for _, p := range a.cfg.Peers.ReachablePeers() {
		out[p] = true
	}
	return out
}
