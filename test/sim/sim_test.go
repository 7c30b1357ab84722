package sim

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"testing"
	"testing/synctest"
	"time"
)

var (
	peers   = flag.Int("peers", 0, "routers to simulate in TestSim (0 skips it; make sim sets it)")
	chords  = flag.Int("chords", 1, "random extra links per router besides the ring")
	latency = flag.Duration("latency", 10*time.Millisecond, "one-way link latency")
	events  = flag.Int("events", 8, "churn events (join, cut, heal, leave, repeated)")
	rest    = flag.Duration("rest", 90*time.Second, "virtual time measured at rest")
	seed    = flag.Uint64("seed", 1, "seed of the topology and the events")
	disc    = flag.Bool("discovery", false, "routers discover and dial every router they learn of (the daemon's default)")
	limit   = flag.Int("connlimit", 0, "inbound connection limit per router (0: unlimited; the daemon's default is 100)")
	discMax = flag.Int("discoverymax", 0, "with -discovery: stop dialling discovered routers at this many connections (0: no bound)")
	heap    = flag.String("heapprofile", "", "write a heap profile taken after the initial join to this file")
)

// TestSim is the simulation behind `make sim PEERS=N`; it is skipped
// unless -peers is given. Its last line of output is machine-readable.
func TestSim(t *testing.T) {
	if *peers == 0 {
		t.Skip("no -peers: run it with make sim PEERS=N")
	}
	o := Options{Peers: *peers, Chords: *chords, Latency: *latency, Events: *events, Rest: *rest, Seed: *seed, Out: os.Stdout,
		Discovery: *disc, ConnLimit: *limit, DiscoveryMaxConns: *discMax}
	if *heap != "" {
		f, err := os.Create(*heap)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		o.HeapProfile = f
	}
	res := run(t, o)
	fmt.Printf("sim: route computation (unicast, data and control) of a %d-router topology: %v (median of 21, wall clock, CPU-bound)\n",
		len(res.Snapshot.Peers), res.RouteTime)
	fmt.Printf("sim: heap in use per router after the join: %.0f KiB (with the harness's in-memory connections)\n", float64(res.MemPerPeer)/1024)
	fmt.Printf("sim: wall clock %v on GOMAXPROCS=%d\n", time.Since(wallStart), runtime.GOMAXPROCS(0))
	fmt.Println(res.Line())
}

var wallStart = time.Now()

func run(t *testing.T, o Options) *Result {
	var res *Result
	synctest.Test(t, func(t *testing.T) {
		var err error
		if res, err = Run(t, o); err != nil {
			t.Fatal(err)
		}
	})
	res.MeasureRoutes(21)
	return res
}

// TestSimSmall runs a small simulation and checks that every change
// reached every router and that the summary line is well formed.
func TestSimSmall(t *testing.T) {
	res := run(t, Options{Peers: 20, Chords: 1, Latency: 5 * time.Millisecond, Events: 4, Rest: 40 * time.Second, Seed: 7})
	if len(res.Converge) != 4 {
		t.Fatalf("%d events, want 4", len(res.Converge))
	}
	for i, e := range res.Converge {
		if !e.OK {
			t.Errorf("event %d (%s) did not converge", i, e.Kind)
		}
		// Changes travel a few hops of 5 ms after a 100 ms update
		// delay per hop: well under the 5 s goal.
		if e.Converge > 5*time.Second {
			t.Errorf("event %d (%s) took %v", i, e.Kind, e.Converge)
		}
	}
	if res.RestBytes <= 0 || res.ChurnBytes <= 0 || res.MemPerPeer == 0 || res.RouteTime <= 0 {
		t.Fatalf("missing figures: %+v", res)
	}
	line := regexp.MustCompile(`^peers=20 converge_s=[0-9.]+ gossip_bytes_per_peer_s=[0-9]+ route_ms=[0-9.]+ mem_per_peer_kib=[0-9]+$`)
	if !line.MatchString(res.Line()) {
		t.Fatalf("summary line %q", res.Line())
	}
}
