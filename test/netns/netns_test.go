package netns

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestWorldSmoke builds a world of three hosts (no weft needed) and checks
// the underlay, background processes, blocking, MTU and counters; then that
// its cleanup left nothing behind.
func TestWorldSmoke(t *testing.T) {
	SkipUnlessRoot(t)
	var (
		prefix string
		pid    int
	)
	t.Run("world", func(t *testing.T) {
		w := NewWorld(t, 3)
		prefix = w.Prefix
		h1, h2, h3 := w.Hosts[0], w.Hosts[1], w.Hosts[2]
		for _, h := range []*Host{h2, h3} {
			Eventually(t, 5*time.Second, "h1 pings "+h.Nick, func() error {
				if r := h1.Run("ping", "-c1", "-W1", h.Addr); !r.OK() {
					return r.Err
				}
				return nil
			})
		}

		// A TCP listener on h2; blocked from h1 but not from h3; unblocked again.
		srv := h2.Start(t, "nc", "-k", "-l", "-p", "7000")
		pid = srv.PID()
		connect := func(from *Host) error {
			r := from.Run("nc", "-z", "-w", "1", h2.Addr, "7000")
			return r.Err
		}
		Eventually(t, 5*time.Second, "h1 connects to h2", func() error { return connect(h1) })
		w.Block(t, h1, h2)
		if err := connect(h1); err == nil {
			t.Fatal("h1 reached h2 over TCP while blocked")
		}
		if err := connect(h3); err != nil {
			t.Fatalf("h3 cannot reach h2 while only h1-h2 is blocked: %v", err)
		}
		if r := h1.Run("ping", "-c1", "-W1", h2.Addr); !r.OK() {
			t.Fatalf("ICMP should still pass while TCP/UDP are blocked: %v", r)
		}
		w.Unblock(t, h1, h2)
		Eventually(t, 5*time.Second, "h1 connects to h2 after unblock", func() error { return connect(h1) })

		// A smaller underlay MTU: DF pings above it fail, below it pass.
		h3.SetUnderlayMTU(t, 1200)
		if r := h1.Run("ping", "-c1", "-W1", "-M", "do", "-s", "1172", h3.Addr); !r.OK() {
			t.Fatalf("1200-byte ping h1->h3: %v", r)
		}
		if r := h3.Run("ping", "-c1", "-W1", "-M", "do", "-s", "1300", h1.Addr); r.OK() {
			t.Fatal("1328-byte DF ping left h3 over a 1200-byte link")
		}

		rx, tx, err := h1.UnderlayPackets()
		if err != nil || rx == 0 || tx == 0 {
			t.Fatalf("underlay counters of h1: rx %d tx %d err %v", rx, tx, err)
		}

		c := h1.NewContainer(t, "c1")
		if out := c.MustRun(t, "ip", "-o", "link"); !strings.Contains(out, "lo") {
			t.Fatalf("container namespace: %q", out)
		}
		if len(w.Namespaces()) != 5 {
			t.Fatalf("namespaces: %v", w.Namespaces())
		}
	})
	assertGone(t, prefix, pid)
}

// TestCleanupAfterFailure runs a test that fails after building a world
// and starting a process in it, in a child process, and checks that the
// world's cleanup removed everything anyway.
func TestCleanupAfterFailure(t *testing.T) {
	SkipUnlessRoot(t)
	if os.Getenv("NETNS_FAILING_CHILD") == "1" {
		w := NewWorld(t, 2)
		p := w.Hosts[0].Start(t, "sleep", "600")
		t.Logf("PREFIX=%s PID=%d", w.Prefix, p.PID())
		t.Fatal("failing on purpose")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCleanupAfterFailure$", "-test.v")
	cmd.Env = append(os.Environ(), "NETNS_FAILING_CHILD=1")
	out, err := runWithTimeout(cmd, time.Minute)
	if err == nil {
		t.Fatalf("child test passed; want a failure:\n%s", out)
	}
	var prefix string
	var pid int
	for _, f := range strings.Fields(string(out)) {
		if v, ok := strings.CutPrefix(f, "PREFIX="); ok {
			prefix = v
		}
		if v, ok := strings.CutPrefix(f, "PID="); ok {
			pid, _ = strconv.Atoi(v)
		}
	}
	if prefix == "" || pid == 0 {
		t.Fatalf("child did not report its world:\n%s", out)
	}
	assertGone(t, prefix, pid)
}

// assertGone checks that no namespace, /etc/netns entry or process of a
// world is left.
func assertGone(t *testing.T, prefix string, pid int) {
	t.Helper()
	if prefix == "" {
		t.Fatal("no world was made")
	}
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, prefix+"-") {
			t.Errorf("namespace left behind: %s", line)
		}
	}
	if entries, _ := os.ReadDir("/etc/netns"); len(entries) > 0 {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), prefix+"-") {
				t.Errorf("/etc/netns entry left behind: %s", e.Name())
			}
		}
	}
	if pid != 0 && alive(pid) {
		t.Errorf("process %d left running", pid)
	}
}

// TestParseConnections checks the parser of `weft status connections`.
func TestParseConnections(t *testing.T) {
	out := "-> 10.99.0.1:6783  established  aa:bb:cc:dd:ee:ff(h1) unencrypted mtu=1410\n" +
		"<- 10.99.0.3:41234 established  aa:bb:cc:dd:ee:01(h3) unencrypted mtu=1410\n" +
		"-> 10.99.0.9:6783  retrying     connect: connection refused\n\nnoise\n"
	got := ParseConnections(out)
	want := []Connection{
		{Outbound: true, Address: "10.99.0.1:6783", State: "established"},
		{Outbound: false, Address: "10.99.0.3:41234", State: "established"},
		{Outbound: true, Address: "10.99.0.9:6783", State: "retrying"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d connections, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g := got[i]
		if g.Outbound != want[i].Outbound || g.Address != want[i].Address || g.State != want[i].State {
			t.Errorf("line %d: got %+v, want %+v", i, g, want[i])
		}
	}
	if got[1].Host() != "10.99.0.3" {
		t.Errorf("Host() = %q", got[1].Host())
	}
}
