// Package sim simulates a weft mesh of many routers in one process, on the
// in-memory network and virtual clock of mesh/meshtest: it joins N
// routers in a random sparse topology, lets them rest, then adds and
// removes peers and cuts and heals links, and measures how long every
// router takes to know each change (virtual time), how many control
// bytes each router sends per second at rest and during churn, how long
// a route computation takes and how much memory a router holds.
//
// Run it with `make sim PEERS=1000` (TestSim); plot results with
// test/sim/plot.
package sim

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"runtime/pprof"
	"slices"
	"testing"
	"time"

	"github.com/weftnet/weft/mesh"
	"github.com/weftnet/weft/mesh/meshtest"
)

// Options shape a simulation.
type Options struct {
	// Peers is the number of routers joined at the start.
	Peers int
	// Chords is how many random extra links each router dials besides
	// its ring neighbour (the ring keeps the mesh connected when one link
	// is cut).
	Chords int
	// Latency is the one-way latency of every link.
	Latency time.Duration
	// Events is how many churn events (join, leave, link cut, link heal)
	// run after the rest period.
	Events int
	// Rest is the virtual time measured at rest.
	Rest time.Duration
	// Discovery turns on the routers' discovery (the daemon's default):
	// they dial every router they learn of, and the topology fills in
	// towards a full mesh, up to ConnLimit inbound connections each.
	Discovery bool
	// ConnLimit is each router's Config.ConnLimit (0: unlimited; the
	// daemon's default is 100).
	ConnLimit int
	// DiscoveryMaxConns is each router's Config.DiscoveryMaxConns (0: no
	// bound).
	DiscoveryMaxConns int
	// Seed fixes the topology and the events.
	Seed uint64
	// Out receives the progress and the figures; nil discards them.
	Out io.Writer
	// HeapProfile, if set, receives a heap profile (pprof) taken after the
	// initial join.
	HeapProfile io.Writer
}

// Result holds the figures of a run.
type Result struct {
	Peers int
	// Links is the number of connections of the initial topology.
	Links int
	// JoinAll is the virtual time until all Peers routers knew each
	// other (everything starting at once).
	JoinAll time.Duration
	// Converge lists, per churn event, the virtual time until every
	// running router knew of it.
	Converge []Event
	// RestBytes and ChurnBytes are the control bytes sent per router per
	// second of virtual time at rest and during churn (mean over routers);
	// RestBytesMax is the busiest router's at rest.
	RestBytes, RestBytesMax, ChurnBytes float64
	// RouteTime is the median wall-clock time of one route computation
	// (unicast tables of data and control routes) of a router's final
	// topology; it is measured outside the simulation's bubble by
	// MeasureRoutes.
	RouteTime time.Duration
	// MemPerPeer is the heap in use per router after the initial join,
	// including the harness's share (in-memory connections, fake overlay).
	MemPerPeer uint64
	// Mismatches counts the topology summaries that differed from their
	// receiver's (each answered with a whole topology), over the run.
	Mismatches uint64
	// Snapshot is one router's final topology for MeasureRoutes.
	Snapshot mesh.Status
}

// Event is one churn event and its convergence time.
type Event struct {
	Kind     string // "join", "leave", "cut", "heal"
	Converge time.Duration
	// Reconnect, for a heal, is the time until the link was up again
	// (the dialler's backoff), before Converge starts.
	Reconnect time.Duration
	OK        bool // every router knew within the limit
}

// WorstConverge returns the longest convergence of the churn events.
func (r *Result) WorstConverge() time.Duration {
	var w time.Duration
	for _, e := range r.Converge {
		w = max(w, e.Converge)
	}
	return w
}

// Line is the machine-readable summary: the worst case of the run.
func (r *Result) Line() string {
	return fmt.Sprintf("peers=%d converge_s=%.3f gossip_bytes_per_peer_s=%.0f route_ms=%.3f mem_per_peer_kib=%.0f",
		r.Peers, r.WorstConverge().Seconds(), max(r.RestBytes, r.ChurnBytes),
		float64(r.RouteTime.Microseconds())/1000, float64(r.MemPerPeer)/1024)
}

// convergeLimit bounds the wait for one change to reach every router.
const convergeLimit = 5 * time.Minute

// checkEvery is how often (virtual time) convergence is checked: the
// resolution of the convergence times.
const checkEvery = 10 * time.Millisecond

// Run runs the simulation; call it inside synctest.Test.
func Run(tb testing.TB, o Options) (*Result, error) {
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x73696d))
	h := meshtest.New(tb, o.Seed)
	h.Net.SetLatency(o.Latency)
	h.Edit = func(_ int, c *mesh.Config) {
		c.Discovery, c.ConnLimit, c.DiscoveryMaxConns = o.Discovery, o.ConnLimit, o.DiscoveryMaxConns
	}
	res := &Result{Peers: o.Peers}

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap0 := ms.HeapInuse

	// Initial topology: a ring plus random chords, dialled by the lower
	// end.
	nodes := make([]*meshtest.Node, o.Peers)
	for i := range nodes {
		nodes[i] = h.Start(i)
	}
	links := map[[2]int]bool{}
	link := func(a, b int) {
		if a == b {
			return
		}
		if a > b {
			a, b = b, a
		}
		if !links[[2]int{a, b}] {
			links[[2]int{a, b}] = true
			h.Connect(nodes[a], nodes[b])
		}
	}
	for i := range nodes {
		link(i, (i+1)%o.Peers)
		for range o.Chords {
			link(i, rng.IntN(o.Peers))
		}
	}
	res.Links = len(links)
	fmt.Fprintf(out, "sim: %d routers, %d links (ring + %d chords each), one-way latency %v, discovery %v (up to %d connections), connection limit %d\n",
		o.Peers, len(links), o.Chords, o.Latency, o.Discovery, o.DiscoveryMaxConns, o.ConnLimit)

	running := func() []*meshtest.Node {
		var rs []*meshtest.Node
		for _, n := range h.Nodes() {
			if n.Running() {
				rs = append(rs, n)
			}
		}
		return rs
	}
	// knowsAll: every running router holds at least the current version
	// of each of the given routers' entries.
	knowsAll := func(of ...*meshtest.Node) func() bool {
		return func() bool {
			for _, x := range of {
				uid, v, _ := x.PeerVersion(x.Name())
				for _, n := range running() {
					u, w, ok := n.PeerVersion(x.Name())
					if !ok || u != uid || w < v {
						return false
					}
				}
			}
			return true
		}
	}
	forgot := func(x *meshtest.Node) func() bool {
		return func() bool {
			for _, n := range running() {
				if _, _, ok := n.PeerVersion(x.Name()); ok {
					return false
				}
			}
			return true
		}
	}
	until := func(limit time.Duration, cond func() bool) (time.Duration, bool) {
		start := h.Clock.Now()
		for !cond() {
			if h.Clock.Since(start) >= limit {
				return h.Clock.Since(start), false
			}
			h.Run(checkEvery)
		}
		return h.Clock.Since(start), true
	}
	// settled: every router knows every router's current entry.
	settled := func() bool { return knowsAll(running()...)() }

	took, ok := until(convergeLimit, settled)
	if !ok {
		return nil, fmt.Errorf("initial join of %d routers did not converge in %v", o.Peers, convergeLimit)
	}
	res.JoinAll = took
	fmt.Fprintf(out, "sim: initial join converged after %v (virtual)\n", took)
	if o.Discovery {
		// Discovery keeps dialling after everyone knows everyone: give it
		// the rest period to fill the mesh in before measuring.
		h.Run(o.Rest)
		var conns int
		for _, n := range running() {
			for _, c := range n.Status().Connections {
				if c.State == mesh.StateEstablished {
					conns++
				}
			}
		}
		fmt.Fprintf(out, "sim: after %v more, %.1f established connections per router\n", o.Rest, float64(conns)/float64(o.Peers))
	}

	runtime.GC()
	runtime.ReadMemStats(&ms)
	res.MemPerPeer = (ms.HeapInuse - min(heap0, ms.HeapInuse)) / uint64(o.Peers)
	if o.HeapProfile != nil {
		if err := pprof.WriteHeapProfile(o.HeapProfile); err != nil {
			return nil, fmt.Errorf("heap profile: %w", err)
		}
	}

	bytes := func() uint64 {
		var s uint64
		for _, n := range h.Nodes() {
			s += h.Net.BytesSent(n.IP)
		}
		return s
	}
	perHost := func() map[netip.Addr]uint64 {
		m := map[netip.Addr]uint64{}
		for _, n := range h.Nodes() {
			m[n.IP] = h.Net.BytesSent(n.IP)
		}
		return m
	}

	// At rest, a minute after the join: long enough for every periodic
	// gossip to run at least once.
	h.Run(time.Minute)
	b0, hosts0, t0 := bytes(), perHost(), h.Clock.Now()
	h.Run(o.Rest)
	secs := h.Clock.Since(t0).Seconds()
	res.RestBytes = float64(bytes()-b0) / secs / float64(o.Peers)
	for ip, b := range perHost() {
		res.RestBytesMax = max(res.RestBytesMax, float64(b-hosts0[ip])/secs)
	}
	fmt.Fprintf(out, "sim: at rest for %v: %.0f control bytes/s per router (busiest %.0f)\n", o.Rest, res.RestBytes, res.RestBytesMax)

	// Churn: join a router (two links), cut a ring link, heal it, remove
	// the joined router; repeat.
	b0, t0 = bytes(), h.Clock.Now()
	next := o.Peers
	var joined *meshtest.Node
	var cutA, cutB *meshtest.Node
	for i := 0; i < o.Events; i++ {
		var ev Event
		switch i % 4 {
		case 0:
			ev.Kind = "join"
			joined = h.Start(next)
			next++
			h.Connect(joined, nodes[rng.IntN(o.Peers)])
			h.Connect(joined, nodes[rng.IntN(o.Peers)])
			ev.Converge, ev.OK = until(convergeLimit, func() bool {
				if !knowsAll(joined)() {
					return false
				}
				for _, n := range running() {
					if !n.Reachable(joined.Name()) {
						return false
					}
				}
				return true
			})
		case 1:
			ev.Kind = "cut"
			a := rng.IntN(o.Peers)
			cutA, cutB = nodes[a], nodes[(a+1)%o.Peers]
			h.Net.Partition(cutA.IP, cutB.IP, true)
			h.Net.Break(cutA.IP, cutB.IP)
			// Both ends see the reset at once and publish a new version
			// without the link.
			h.Clock.AdvanceTo(h.Clock.Now())
			ev.Converge, ev.OK = until(convergeLimit, knowsAll(cutA, cutB))
		case 2:
			ev.Kind = "heal"
			h.Net.Partition(cutA.IP, cutB.IP, false)
			// The dialling end retries after its backoff (not gossip:
			// reported apart); the change is the new connection, timed
			// from when both ends hold it.
			ev.Reconnect, ev.OK = until(convergeLimit, func() bool { return linked(cutA, cutB) && linked(cutB, cutA) })
			if ev.OK {
				ev.Converge, ev.OK = until(convergeLimit, knowsAll(cutA, cutB))
			}
		case 3:
			ev.Kind = "leave"
			h.Stop(joined)
			ev.Converge, ev.OK = until(convergeLimit, forgot(joined))
		}
		fmt.Fprintf(out, "sim: event %d %s known everywhere after %v (virtual)%s%s\n", i, ev.Kind, ev.Converge, reconnected(ev), notOK(ev.OK))
		res.Converge = append(res.Converge, ev)
		// Let the next event start from rest.
		h.Run(time.Second)
	}
	secs = h.Clock.Since(t0).Seconds()
	res.ChurnBytes = float64(bytes()-b0) / secs / float64(o.Peers)
	fmt.Fprintf(out, "sim: during churn (%v): %.0f control bytes/s per router\n", h.Clock.Since(t0), res.ChurnBytes)
	for _, n := range h.Nodes() {
		if n.Node != nil {
			res.Mismatches += n.SummaryMismatches()
		}
	}
	fmt.Fprintf(out, "sim: %d topology summaries differed from their receiver's (answered with the whole topology)\n", res.Mismatches)
	res.Snapshot = nodes[0].Status()
	h.StopAll()
	return res, nil
}

// linked reports whether a holds a registered connection to b.
func linked(a, b *meshtest.Node) bool {
	return slices.ContainsFunc(a.Status().Connections, func(c mesh.ConnectionStatus) bool {
		return c.Peer == b.Name() && c.State == mesh.StateEstablished
	})
}

func reconnected(ev Event) string {
	if ev.Kind != "heal" {
		return ""
	}
	return fmt.Sprintf(", link up again after %v", ev.Reconnect)
}

func notOK(ok bool) string {
	if ok {
		return ""
	}
	return " NOT CONVERGED"
}

// MeasureRoutes times the route computation on the run's snapshot: the
// median of runs wall-clock measurements. Call it outside the synctest
// bubble, where the time package reads the real clock.
func (r *Result) MeasureRoutes(runs int) {
	self := r.Snapshot.Name
	times := make([]time.Duration, runs)
	for i := range times {
		start := time.Now()
		mesh.ComputeRoutes(self, r.Snapshot.Peers)
		times[i] = time.Since(start)
	}
	slices.Sort(times)
	r.RouteTime = times[len(times)/2]
}
