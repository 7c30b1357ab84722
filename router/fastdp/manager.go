package fastdp

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/mesh"
)

// Entry is one forwarding entry of the VXLAN device: frames for MAC leave
// encapsulated towards the underlay address Dst.
type Entry struct {
	MAC MAC
	Dst netip.Addr
}

// Kernel is the VXLAN device on the weft bridge as the Manager sees it.
// The manager's ticker is the only caller of Entries, Install, Remove and
// Send; its receiver the only caller of Receive. Close may be called
// concurrently with Receive and makes it return an error.
type Kernel interface {
	// Entries lists the device's unicast forwarding entries: those
	// installed and those the kernel learned from received frames.
	Entries() ([]Entry, error)
	// Install makes frames for e.MAC leave the bridge through the device,
	// encapsulated towards e.Dst, replacing any entry for e.MAC. A static
	// entry never ages and never moves; a dynamic one ages out unless
	// frames from e.MAC keep arriving through the device.
	Install(e Entry, static bool) error
	// Remove removes the entries for e.MAC from the device (the one
	// towards e.Dst; none when Dst is invalid) and from the bridge's port
	// of the device. A missing entry is not an error.
	Remove(e Entry) error
	// Send sends one Ethernet frame out of the device. The frame is not
	// retained.
	Send(frame []byte) error
	// Receive reads the next heartbeat frame that arrived on the device
	// into buf and returns its length.
	Receive(buf []byte) (int, error)
	// Close releases the device's socket; it does not delete the device.
	Close() error
}

// Config configures a Manager. Zero durations take the defaults named on
// each field.
type Config struct {
	// Self is this router's peer name. Required.
	Self mesh.PeerName
	// Kernel is the VXLAN device. Required; Run closes it.
	Kernel Kernel
	// FrameSize is the size of heartbeat frames, Ethernet header
	// included: the largest frame the fast path must carry (14 + the weft
	// network's MTU), so that a heartbeat that arrives also proves the
	// path MTU. Required, at least HeaderLen.
	FrameSize int
	// Interval is the time between heartbeats to each peer; default 500ms.
	Interval time.Duration
	// Timeout takes a peer off the fast path when no heartbeat that says
	// it hears ours arrived for this long; default 2s.
	Timeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Ticks drives the ticker; default a ticker of Interval. Tests pass
	// their own channel.
	Ticks <-chan time.Time
	// Logger receives the manager's logs; nil discards them.
	Logger *slog.Logger
}

// Stats counts the manager's work.
type Stats struct {
	// HeartbeatsSent and HeartbeatsReceived count heartbeat frames
	// (received: those from a connected peer, with its connection's UID).
	HeartbeatsSent, HeartbeatsReceived uint64
	// SendErrors counts heartbeats the device refused.
	SendErrors uint64
	// Misses counts misses reported; MissesDropped those dropped because
	// the queue was full.
	Misses, MissesDropped uint64
	// Installs and Removals count forwarding entries installed and removed.
	Installs, Removals uint64
	// Errors counts failed Entries, Install and Remove calls.
	Errors uint64
}

// peer is the fast path state of one connected peer; guarded by
// Manager.mu.
type peer struct {
	uid       uint64
	addr      netip.Addr
	mac       MAC   // HeartbeatMAC of the peer
	lastHeard int64 // unix nanos of the last heartbeat from the peer; 0: none
	hearsUs   bool  // the last heartbeat said the peer hears ours
	up        bool
	hbEntry   bool   // the static entry for mac is installed (ticker)
	sendErr   string // the last Send error; "" after a success
}

// missed is one frame's destination MAC behind a peer, or a MAC that
// moved to a peer (or to this router).
type missed struct {
	mac   MAC
	peer  mesh.PeerName
	moved bool
}

// upMap maps each peer whose fast path is up to its underlay address.
type upMap = map[mesh.PeerName]netip.Addr

// Manager runs the fast path's heartbeats and programs the VXLAN
// device's forwarding entries. It implements router.FastPath.
type Manager struct {
	cfg     Config
	log     *slog.Logger
	selfMAC MAC

	mu    sync.Mutex
	peers map[mesh.PeerName]*peer

	up     atomic.Pointer[upMap]
	misses chan missed
	kick   chan struct{} // a miss is waiting

	// ticker-owned
	frame     []byte
	installed map[MAC]int64 // MACs installed on a miss, and when
	stale     map[MAC]bool  // MACs that moved away from the fast path: their entries go

	sent, received, sendErrs, nMisses, dropped, installs, removals, errs atomic.Uint64
}

// missQueue bounds the misses waiting for the ticker.
const missQueue = 1024

// New checks cfg and returns a Manager ready to Run.
func New(cfg Config) (*Manager, error) {
	switch {
	case cfg.Self == mesh.UnknownPeerName:
		return nil, fmt.Errorf("new fast path: no peer name: %w", ErrConfig)
	case cfg.Kernel == nil:
		return nil, fmt.Errorf("new fast path: no device: %w", ErrConfig)
	case cfg.FrameSize < HeaderLen || cfg.FrameSize > 65535:
		return nil, fmt.Errorf("new fast path: frame size %d not in [%d, 65535]: %w", cfg.FrameSize, HeaderLen, ErrConfig)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 500 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{
		cfg:       cfg,
		log:       cfg.Logger,
		selfMAC:   HeartbeatMAC(cfg.Self),
		peers:     map[mesh.PeerName]*peer{},
		misses:    make(chan missed, missQueue),
		kick:      make(chan struct{}, 1),
		frame:     make([]byte, cfg.FrameSize),
		installed: map[MAC]int64{},
		stale:     map[MAC]bool{},
	}
	m.up.Store(&upMap{})
	return m, nil
}

// Connect registers the direct, unencrypted connection uid to peer, whose
// router announced a fast path, at underlay address addr. Heartbeats
// start with the next tick; frames take the fast path once they flow
// both ways. A later Connect for the same peer replaces the earlier.
func (m *Manager) Connect(name mesh.PeerName, uid uint64, addr netip.Addr) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.peers[name] = &peer{uid: uid, addr: addr.Unmap(), mac: HeartbeatMAC(name)}
	m.publishLocked()
}

// Disconnect forgets the connection uid to peer, if it is still the
// registered one; its entries go with the next tick.
func (m *Manager) Disconnect(name mesh.PeerName, uid uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.peers[name]; p != nil && p.uid == uid {
		delete(m.peers, name)
		m.publishLocked()
	}
}

// Up reports whether frames to peer may take the fast path. It never
// blocks and allocates nothing.
func (m *Manager) Up(name mesh.PeerName) bool {
	_, ok := (*m.up.Load())[name]
	return ok
}

// Miss reports a frame to mac, which lives behind peer, that reached the
// router although peer's fast path is up: the device has no entry for
// mac. It never blocks (a full queue drops the report, counted) and
// allocates nothing. mac is not retained.
func (m *Manager) Miss(mac []byte, name mesh.PeerName) {
	m.enqueue(mac, name, false)
}

// Moved reports that mac now lives behind peer (this router's own name:
// on this host). Its entry then points to peer when peer's fast path is
// up, and goes otherwise, so that the bridge gives its frames to the
// router again. It never blocks and allocates nothing.
func (m *Manager) Moved(mac []byte, name mesh.PeerName) {
	m.enqueue(mac, name, true)
}

func (m *Manager) enqueue(mac []byte, name mesh.PeerName, moved bool) {
	if len(mac) < 6 {
		return
	}
	select {
	case m.misses <- missed{mac: MAC(mac[:6]), peer: name, moved: moved}:
		m.nMisses.Add(1)
		select {
		case m.kick <- struct{}{}:
		default:
		}
	default:
		m.dropped.Add(1)
	}
}

// PathStatus reports whether peer's frames take the fast path and why
// (or why not). ok is false when the peer is not registered.
func (m *Manager) PathStatus(name mesh.PeerName) (up bool, reason string, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.peers[name]
	if p == nil {
		return false, "", false
	}
	now := m.cfg.Now().UnixNano()
	switch {
	case p.up:
		return true, "heartbeats flow both ways through the kernel", true
	case p.sendErr != "":
		return false, "fast path heartbeat refused: " + p.sendErr, true
	case p.lastHeard == 0:
		return false, "no fast path heartbeat from the peer yet", true
	case now-p.lastHeard > int64(m.cfg.Timeout):
		return false, fmt.Sprintf("no fast path heartbeat for %s", time.Duration(now-p.lastHeard).Round(time.Second)), true
	default:
		return false, "the peer does not hear our fast path heartbeats", true
	}
}

// Stats returns a snapshot of the counters.
func (m *Manager) Stats() Stats {
	return Stats{
		HeartbeatsSent: m.sent.Load(), HeartbeatsReceived: m.received.Load(), SendErrors: m.sendErrs.Load(),
		Misses: m.nMisses.Load(), MissesDropped: m.dropped.Load(),
		Installs: m.installs.Load(), Removals: m.removals.Load(), Errors: m.errs.Load(),
	}
}

// Run sends heartbeats and programs the device until ctx is done, then
// closes the Kernel, waits for its receiver and returns nil.
func (m *Manager) Run(ctx context.Context) error {
	ticks := m.cfg.Ticks
	if ticks == nil {
		t := time.NewTicker(m.cfg.Interval)
		defer t.Stop()
		ticks = t.C
	}
	var wg sync.WaitGroup
	wg.Go(func() { m.receive(ctx) })
	for {
		select {
		case <-ctx.Done():
			err := m.cfg.Kernel.Close()
			wg.Wait()
			if err != nil {
				m.log.Debug("close fast path device", "err", err)
			}
			return nil
		case <-ticks:
			m.tick()
		case <-m.kick:
			m.drainMisses(m.cfg.Now().UnixNano())
		}
	}
}

// tick updates each peer's state, sends heartbeats, installs entries for
// misses (and marks those of MACs gone from the fast path) and removes
// entries no up peer accounts for. Ticker only.
func (m *Manager) tick() {
	now := m.cfg.Now().UnixNano()
	beats := m.update(now)
	for _, b := range beats {
		m.sendBeat(b)
	}
	m.drainMisses(now)
	m.reconcile(now)
}

// publishLocked stores the set of peers whose fast path is up.
func (m *Manager) publishLocked() {
	up := make(upMap, len(m.peers))
	for name, p := range m.peers {
		if p.up {
			up[name] = p.addr
		}
	}
	m.up.Store(&up)
}
