package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weftnet/weft/mesh"
)

// Config configures a Router. Zero durations and sizes take the defaults
// named on each field.
type Config struct {
	// Self is this router's peer name. Required.
	Self mesh.PeerName
	// Device is the TAP device. Required. Run takes ownership and closes it.
	Device Device
	// Transport is the UDP socket. Required. Run takes ownership and closes it.
	Transport Transport
	// Logger receives the router's logs; nil discards them.
	Logger *slog.Logger

	// Now is the clock; default time.Now.
	Now func() time.Time
	// Ticks drives the timer goroutine; default a ticker of TickInterval.
	// Tests may pass their own channel to step timers by hand.
	Ticks <-chan time.Time
	// TickInterval is the timer resolution; default 100ms.
	TickInterval time.Duration

	// FastHeartbeat is the heartbeat interval until a connection is
	// established; default 500ms.
	FastHeartbeat time.Duration
	// SlowHeartbeat is the heartbeat interval once established; default 2s.
	SlowHeartbeat time.Duration
	// HeartbeatTimeout fails a connection that heard no heartbeat for this
	// long; default 15s, so that traffic moves to a path through another
	// peer within seconds of a direct path breaking.
	HeartbeatTimeout time.Duration

	// ProbeTimeout is how long a path MTU probe waits for its ack;
	// default 250ms.
	ProbeTimeout time.Duration
	// ProbeAttempts is how often a probe size is tried before it counts as
	// too big; default 3.
	ProbeAttempts int
	// ProbeInterval is the time between path MTU searches while the path
	// carries the largest MTU; default 10min.
	ProbeInterval time.Duration
	// ProbeRaiseInterval is the time between searches while the verified
	// MTU is below the largest (a wrong decision heals within it); default
	// 1min.
	ProbeRaiseInterval time.Duration
	// ProbeConfirmInterval is how often the verified MTU is confirmed by a
	// probe of that size between searches; ProbeAttempts confirmations in a
	// row lost while a probe of the floor size came back start a search (a
	// path that shrank is followed within seconds); default 5s.
	ProbeConfirmInterval time.Duration
	// InitialMTU is the MTU assumed towards a peer until probing verified
	// one; default 1406 (a 1500-byte underlay), capped by the device MTU.
	InitialMTU int

	// MACMaxAge expires MACs not seen for this long; default 10min.
	MACMaxAge time.Duration
	// MACLoopGuard: a MAC seen behind one peer (or locally) this recently
	// does not move to another; the frame is dropped as looping.
	// Default 1s.
	MACLoopGuard time.Duration
	// MACTableSize bounds the MAC table; default 16384. When it is full,
	// the port (the local device, or one peer) with the most MACs gives
	// up its least recently seen one.
	MACTableSize int
	// MACPortLimit bounds the MACs learned at one port (the local device,
	// or behind one peer); a new MAC beyond it is not learned (counted in
	// Stats.MACRefused). Default 4096, at most MACTableSize.
	MACPortLimit int

	// HostLocal are IPv4 addresses that every host has on its own bridge
	// (the DNS server's): ARP about them read from the device never leaves
	// the host, so that each host's containers reach their own host's.
	HostLocal []netip.Addr

	// BatchSize is how many frames or datagrams one read returns;
	// default 32.
	BatchSize int

	// FastPath is the kernel's fast path (package router/fastdp); nil
	// carries everything in userspace. FastPathPort is its UDP port,
	// which a peer's must equal (FeatureFastPathPort).
	FastPath     FastPath
	FastPathPort int

	// TrainRetry is how long a peer whose path refused a train of
	// datagrams (ErrTrainRefused) gets its datagrams one by one before
	// trains are tried again; default 1min.
	TrainRetry time.Duration
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.TickInterval, 100*time.Millisecond)
	def(&c.FastHeartbeat, 500*time.Millisecond)
	def(&c.SlowHeartbeat, 2*time.Second)
	def(&c.HeartbeatTimeout, 15*time.Second)
	def(&c.ProbeTimeout, 250*time.Millisecond)
	def(&c.ProbeInterval, 10*time.Minute)
	def(&c.ProbeRaiseInterval, time.Minute)
	def(&c.ProbeConfirmInterval, 5*time.Second)
	def(&c.MACMaxAge, 10*time.Minute)
	def(&c.MACLoopGuard, time.Second)
	def(&c.TrainRetry, time.Minute)
	if c.ProbeAttempts <= 0 {
		c.ProbeAttempts = 3
	}
	if c.InitialMTU <= 0 {
		c.InitialMTU = 1500 - UnderlayOverhead - FrameOverhead
	}
	if c.MACTableSize <= 0 {
		c.MACTableSize = 16384
	}
	if c.MACPortLimit <= 0 {
		c.MACPortLimit = 4096
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 32
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// connMap maps a neighbour's name to its confirmed connection.
type connMap = map[mesh.PeerName]*conn

// Router is the data plane of one peer. It implements mesh.Overlay.
type Router struct {
	cfg    Config
	log    *slog.Logger
	self   mesh.PeerName
	maxMTU int // largest MTU worth probing: the device's, capped by MaxMTU

	routes atomic.Pointer[mesh.Routes]
	conns  atomic.Pointer[connMap]
	connMu sync.Mutex // serialises writers of conns

	macs  *macTable
	devMu sync.Mutex // serialises Device.Write between the readers (per batch)
	// queues are the queues of a MultiQueue device, written by flow
	// (flowQueue); queueOf and picked are writeDevice's scratch, under devMu.
	queues  []Device
	queueOf []uint8
	picked  [][]byte
	kick    chan struct{}

	tapStats, udpStats, timerStats *counters

	// vnet is set when the device exchanges virtio-net headers (Offloader).
	vnet bool
	// streams numbers the senders, whose segments a receiver tells apart.
	streams atomic.Uint32
	// segmenter is the transport when it can send datagram trains.
	segmenter Segmenter
	// pings are the pings of `weft ping` in flight (ping.go).
	pings pinger
	// failures remembers why the data path to each peer last failed.
	failures linkFailures
}

var _ mesh.Overlay = (*Router)(nil)

// New checks cfg, fills in defaults and returns a Router ready to Run.
func New(cfg Config) (*Router, error) {
	switch {
	case cfg.Self == mesh.UnknownPeerName:
		return nil, fmt.Errorf("new router: no peer name: %w", ErrConfig)
	case cfg.Device == nil:
		return nil, fmt.Errorf("new router: no device: %w", ErrConfig)
	case cfg.Transport == nil:
		return nil, fmt.Errorf("new router: no transport: %w", ErrConfig)
	}
	cfg.setDefaults()
	maxMTU := min(cfg.Device.MTU(), MaxMTU)
	if maxMTU < MinMTU {
		return nil, fmt.Errorf("new router: device MTU %d below %d: %w", cfg.Device.MTU(), MinMTU, ErrConfig)
	}
	r := &Router{
		cfg:        cfg,
		log:        cfg.Logger,
		self:       cfg.Self,
		maxMTU:     maxMTU,
		macs:       newMACTable(cfg.MACMaxAge, cfg.MACLoopGuard, cfg.MACTableSize, cfg.MACPortLimit),
		kick:       make(chan struct{}, 1),
		tapStats:   new(counters),
		udpStats:   new(counters),
		timerStats: new(counters),
	}
	if o, ok := cfg.Device.(Offloader); ok && o.VnetHdr() {
		r.vnet = true
	}
	if sg, ok := cfg.Transport.(Segmenter); ok {
		r.segmenter = sg
	}
	if mq, ok := cfg.Device.(MultiQueue); ok {
		if qs := mq.ReadQueues(); len(qs) > 1 && len(qs) <= 256 {
			r.queues = qs
		}
	}
	m := make(connMap)
	r.conns.Store(&m)
	return r, nil
}

// Run starts the TAP reader (one per queue of a MultiQueue device), the
// UDP reader (one per socket of a MultiSocket transport) and the timer
// goroutine and blocks until ctx is done or a
// reader fails; it then closes the Device and the Transport, waits for
// the goroutines and returns. The error
// is nil after a shutdown through ctx, else the reader's error. Run is
// called once; the Overlay methods may be called before, during and after.
func (r *Router) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		runErr  error
	)
	fail := func(err error) {
		if ctx.Err() == nil {
			errOnce.Do(func() { runErr = err })
			cancel()
		}
	}
	queues := r.queues
	if queues == nil {
		queues = []Device{r.cfg.Device}
	}
	for _, q := range queues {
		tap := newTAPReader(r, q)
		wg.Go(func() { fail(tap.run()) })
	}
	sockets := []Transport{r.cfg.Transport}
	if ms, ok := r.cfg.Transport.(MultiSocket); ok {
		if ss := ms.ReadSockets(); len(ss) > 0 {
			sockets = ss
		}
	}
	for _, s := range sockets {
		udp := newUDPReader(r, s)
		wg.Go(func() { fail(udp.run()) })
	}
	wg.Go(func() { r.runTimer(ctx) })
	<-ctx.Done()
	errDev := r.cfg.Device.Close()
	errTr := r.cfg.Transport.Close()
	wg.Wait()
	if runErr != nil {
		return fmt.Errorf("router: %w", runErr)
	}
	if err := errors.Join(errDev, errTr); err != nil {
		r.log.Debug("close device and transport", "err", err)
	}
	return nil
}

// RoutesChanged installs a new routes snapshot. It never blocks.
func (r *Router) RoutesChanged(routes *mesh.Routes) {
	r.routes.Store(routes)
}

// PrepareConnection creates the data path of a new control connection.
// The connection sends nothing until Confirm.
func (r *Router) PrepareConnection(p mesh.OverlayConnectionParams) (mesh.OverlayConnection, error) {
	if p.RemotePeer == r.self {
		return nil, fmt.Errorf("prepare connection to %s: %w", p.RemotePeer, ErrSelfConnection)
	}
	return newConn(r, p), nil
}

// Offloads reports the offloads the device and the transport use, by
// name (see OffloadReporter); empty when neither reports any.
func (r *Router) Offloads() map[string]bool {
	out := map[string]bool{}
	for _, v := range []any{r.cfg.Device, r.cfg.Transport} {
		if o, ok := v.(OffloadReporter); ok {
			for k, on := range o.Offloads() {
				out[k] = on
			}
		}
	}
	return out
}

// Stats returns a snapshot of the counters.
func (r *Router) Stats() Stats {
	var s Stats
	s.add(r.tapStats)
	s.add(r.udpStats)
	s.add(r.timerStats)
	if fc, ok := r.cfg.FastPath.(FastPathCounter); ok {
		c := fc.FastPathCounters()
		s.FastPathFramesIn, s.FastPathBytesIn, s.FastPathFramesOut, s.FastPathBytesOut = c.FramesIn, c.BytesIn, c.FramesOut, c.BytesOut
		s.FastPathHeartbeatsSent, s.FastPathHeartbeatsReceived = c.HeartbeatsSent, c.HeartbeatsReceived
		s.FastPathEntriesInstalled, s.FastPathEntriesRemoved = c.EntriesInstalled, c.EntriesRemoved
	}
	s.MACMoves = r.macs.moves.Load()
	s.MACEvictions = r.macs.evictions.Load()
	s.MACRefused = r.macs.refused.Load()
	return s
}

// MACs returns the learned MAC addresses, sorted by address.
func (r *Router) MACs() []MACEntry {
	return r.macs.entries()
}

// register publishes c as the connection to its peer.
func (r *Router) register(c *conn) {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	old := *r.conns.Load()
	m := make(connMap, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[c.peer] = c
	r.conns.Store(&m)
}

// unregister removes c if it is still the connection to its peer.
func (r *Router) unregister(c *conn) {
	r.connMu.Lock()
	defer r.connMu.Unlock()
	old := *r.conns.Load()
	if old[c.peer] != c {
		return
	}
	m := make(connMap, len(old))
	for k, v := range old {
		if k != c.peer {
			m[k] = v
		}
	}
	r.conns.Store(&m)
}

// wake makes the timer goroutine run a tick soon. It never blocks.
func (r *Router) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// writeDevice writes frames, each starting at offset, to the device, or
// each to its flow's queue of a multi-queue device. Called once per batch
// by any reader.
func (r *Router) writeDevice(st *counters, frames [][]byte, offset int) {
	r.devMu.Lock()
	defer r.devMu.Unlock()
	if len(r.queues) == 0 {
		writeFrames(r.cfg.Device, st, frames, offset)
		return
	}
	if cap(r.queueOf) < len(frames) {
		r.queueOf = make([]uint8, len(frames))
		r.picked = make([][]byte, 0, len(frames))
	}
	r.queueOf = r.queueOf[:len(frames)]
	for i, f := range frames {
		r.queueOf[i] = uint8(flowQueue(f[offset:], len(r.queues)))
	}
	for q, dev := range r.queues {
		r.picked = r.picked[:0]
		for i, f := range frames {
			if int(r.queueOf[i]) == q {
				r.picked = append(r.picked, f)
			}
		}
		if len(r.picked) > 0 {
			writeFrames(dev, st, r.picked, offset)
		}
	}
	clear(r.picked[:cap(r.picked)])
}

// writeFrames writes frames, each starting at offset, to dev; a frame the
// device refuses is counted and skipped.
func writeFrames(dev Device, st *counters, frames [][]byte, offset int) {
	for off := 0; off < len(frames); {
		n, err := dev.Write(frames[off:], offset)
		for _, f := range frames[off : off+n] {
			st.tapBytesOut.Add(uint64(len(f) - offset))
		}
		st.tapFramesOut.Add(uint64(n))
		off += n
		if err != nil {
			st.drops[dropDevice].Add(1)
			off++
			continue
		}
		if n == 0 {
			st.drops[dropDevice].Add(uint64(len(frames) - off))
			return
		}
	}
}

// ConnectionStatus returns the status of the confirmed connection to
// peer, if there is one.
func (r *Router) ConnectionStatus(peer mesh.PeerName) (mesh.OverlayStatus, bool) {
	c := (*r.conns.Load())[peer]
	if c == nil {
		return mesh.OverlayStatus{}, false
	}
	return c.Status(), true
}
