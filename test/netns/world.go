// Package netns builds small worlds of simulated hosts for weft's root
// integration tests: each host is a network namespace with one veth into a
// shared underlay (a bridge inside a namespace of its own), each "container"
// is a namespace that weft attaches. Everything a World makes carries a name
// prefix unique to the test process and the world, and is removed by the
// test's Cleanup even when the test fails: processes in its namespaces are
// ended by PID, then the namespaces, their /etc/netns entries and the state
// directories are removed. Only addresses inside these namespaces are used.
//
// Goroutines: a World is used from its test's goroutine; each background
// Proc has one goroutine that waits for it. Nothing here is global except
// the once-built weft binary (see Binary).
package netns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// ErrNotRoot is returned when a world is needed but the process is not root.
var ErrNotRoot = errors.New("network namespaces need root")

// UnderlayPrefix is the /24 of the underlay; host i has UnderlayPrefix.i.
const UnderlayPrefix = "10.99.0"

// DefaultPort is the mesh port the routers of a world listen on.
const DefaultPort = 6783

var worldSeq atomic.Int32

// World is a set of hosts joined by an underlay bridge. Methods that can
// fail the test take the testing.TB to fail, so that subtests may use them.
type World struct {
	t        testing.TB // the test that made the world, for cleanup
	Prefix   string     // name prefix of everything this world makes
	Underlay string     // namespace holding the underlay bridge br0
	Hosts    []*Host    // Hosts[i] is host i+1
	Dir      string     // temporary directory holding state dirs and logs

	mu         sync.Mutex
	namespaces []string // every namespace made, in order
	procs      []*Proc
	teardownMu sync.Once
	failures   []string // what teardown could not remove
}

// SkipUnlessRoot skips the test, with a clear message, unless running as root.
func SkipUnlessRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("skipping: %v; run the integration tests as root (sudo go test ./test/...)", ErrNotRoot)
	}
}

// NewWorld makes n hosts (namespaces <prefix>-h1 ... -hn) with addresses
// 10.99.0.1 ... 10.99.0.n on one underlay bridge. It skips the test when
// not root and fails it when root but the world cannot be built.
func NewWorld(t testing.TB, n int) *World {
	t.Helper()
	SkipUnlessRoot(t)
	if n < 1 || n > 250 {
		t.Fatalf("netns: world of %d hosts: want 1..250", n)
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("netns: %s not found (run test/deps.sh): %v", tool, err)
		}
	}
	w := &World{t: t, Prefix: fmt.Sprintf("wt%d-%d", os.Getpid(), worldSeq.Add(1))}
	dir, err := os.MkdirTemp("", w.Prefix+"-")
	if err != nil {
		t.Fatalf("netns: world dir: %v", err)
	}
	w.Dir = dir
	register(w)
	t.Cleanup(w.cleanup)

	w.Underlay = w.Prefix + "-u"
	w.addNamespace(t, w.Underlay)
	w.mustIP(t, "-n", w.Underlay, "link", "add", "br0", "type", "bridge")
	w.mustIP(t, "-n", w.Underlay, "link", "set", "br0", "up")
	for i := 1; i <= n; i++ {
		w.Hosts = append(w.Hosts, w.addHost(t, i))
	}
	return w
}

// addHost makes host i: its namespace, veth into the underlay, address.
func (w *World) addHost(t testing.TB, i int) *Host {
	h := &Host{
		w:          w,
		Index:      i,
		Nick:       fmt.Sprintf("h%d", i),
		Name:       fmt.Sprintf("%s-h%d", w.Prefix, i),
		Addr:       fmt.Sprintf("%s.%d", UnderlayPrefix, i),
		Port:       DefaultPort,
		UnderlayIf: fmt.Sprintf("h%d", i),
		StateDir:   fmt.Sprintf("%s/state-h%d", w.Dir, i),
	}
	if err := os.MkdirAll(h.StateDir, 0o700); err != nil {
		t.Fatalf("netns: host %s: state dir: %v", h.Nick, err)
	}
	w.addNamespace(t, h.Name)
	w.mustIP(t, "-n", w.Underlay, "link", "add", h.UnderlayIf, "type", "veth", "peer", "name", "eth0", "netns", h.Name)
	w.mustIP(t, "-n", w.Underlay, "link", "set", h.UnderlayIf, "master", "br0", "up")
	w.mustIP(t, "-n", h.Name, "addr", "add", h.Addr+"/24", "dev", "eth0")
	w.mustIP(t, "-n", h.Name, "link", "set", "eth0", "up")
	return h
}

// addNamespace makes a namespace with loopback up and records it for cleanup.
func (w *World) addNamespace(t testing.TB, name string) {
	t.Helper()
	if r := run(w.Dir, DefaultTimeout, nil, "ip", "netns", "add", name); !r.OK() {
		t.Fatalf("netns: %v", r)
	}
	w.mu.Lock()
	w.namespaces = append(w.namespaces, name)
	w.mu.Unlock()
	w.mustIP(t, "-n", name, "link", "set", "lo", "up")
}

// mustIP runs `ip ARGS` in the test's namespace and fails the test on error.
func (w *World) mustIP(t testing.TB, args ...string) {
	t.Helper()
	if r := run(w.Dir, DefaultTimeout, nil, append([]string{"ip"}, args...)...); !r.OK() {
		t.Fatalf("netns: %v", r)
	}
}

// start starts argv in the background and records it for cleanup.
func (w *World) start(t testing.TB, argv ...string) *Proc {
	t.Helper()
	p, err := start(w.Dir, argv...)
	if err != nil {
		t.Fatalf("netns: %v", err)
	}
	w.mu.Lock()
	w.procs = append(w.procs, p)
	w.mu.Unlock()
	return p
}

// Namespaces lists the namespaces this world made.
func (w *World) Namespaces() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.namespaces...)
}

// cleanup is the test's Cleanup: teardown, and a test error for what could
// not be removed.
func (w *World) cleanup() {
	w.teardown()
	unregister(w)
	if len(w.failures) > 0 {
		w.t.Errorf("netns: cleanup: %s", strings.Join(w.failures, "; "))
	}
}

// teardown ends our processes, then those left in our namespaces (routers
// started by weft launch), all by PID; then removes the namespaces (newest
// first), their /etc/netns entries and the world directory. It runs once,
// whether from the test's Cleanup or from Main's signal handler.
func (w *World) teardown() {
	w.teardownMu.Do(func() {
		w.mu.Lock()
		procs, namespaces := w.procs, w.namespaces
		w.mu.Unlock()
		for _, p := range procs {
			p.Kill()
		}
		w.failures = removeNamespaces(namespaces)
		_ = os.RemoveAll(w.Dir)
	})
}

// removeNamespaces ends every process inside the namespaces by PID, then
// deletes them (last first) and their /etc/netns entries. It returns what
// it could not delete.
func removeNamespaces(namespaces []string) (failed []string) {
	for _, ns := range namespaces {
		for _, pid := range namespacePIDs(ns) {
			killPID(pid)
		}
	}
	for i := len(namespaces) - 1; i >= 0; i-- {
		ns := namespaces[i]
		if r := run(os.TempDir(), DefaultTimeout, nil, "ip", "netns", "delete", ns); !r.OK() {
			failed = append(failed, strings.TrimSpace(r.Stderr))
		}
		_ = os.RemoveAll("/etc/netns/" + ns)
	}
	return failed
}

// namespacePIDs lists the processes inside namespace ns.
func namespacePIDs(ns string) []int {
	r := run(os.TempDir(), DefaultTimeout, nil, "ip", "netns", "pids", ns)
	var pids []int
	for _, f := range strings.Fields(r.Stdout) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil && pid > 0 && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// Block drops TCP and UDP between hosts a and b, both directions, with
// iptables rules inside both hosts' namespaces. Other hosts are unaffected.
func (w *World) Block(t testing.TB, a, b *Host) {
	t.Helper()
	a.firewall(t, "-I", b)
	b.firewall(t, "-I", a)
}

// Unblock removes the rules Block added.
func (w *World) Unblock(t testing.TB, a, b *Host) {
	t.Helper()
	a.firewall(t, "-D", b)
	b.firewall(t, "-D", a)
}
