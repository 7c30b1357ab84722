package integration

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weftnet/weft/test/netns"
)

// Reliability under loss, partitions, restarts and churn (issue 18), with
// real routers in network namespaces. Each test runs well under a minute.

// TestReliabilityLoss: with 10% of the underlay's UDP datagrams dropped at
// random in both directions (iptables statistic), a 20 MB TCP transfer
// between containers on two hosts arrives intact and the control
// connection stays up.
func TestReliabilityLoss(t *testing.T) {
	t.Parallel()
	w := netns.NewWorld(t, 2)
	h1, h2 := w.Hosts[0], w.Hosts[1]
	h1.Launch(t)
	h2.Launch(t, h1.PeerAddr())
	c1 := h1.AddContainer(t, "c1", "10.2.20.1/24")
	c2 := h2.AddContainer(t, "c2", "10.2.20.2/24")
	c1.WaitPing(t, c2.IP, pingTimeout)
	before := controlConns(t, h1, h2)
	for _, h := range []*netns.Host{h1, h2} {
		h.MustRun(t, "iptables", "-w", "5", "-I", "INPUT", "-p", "udp", "-m", "statistic", "--mode", "random", "--probability", "0.1", "-j", "DROP")
	}
	lost, _ := pingCount(c1, c2.IP, 200)
	t.Logf("pings answered under 10%% loss each way: %d of 200", lost)
	transfer(t, c1, c2, 20<<20, 5201)
	if after := controlConns(t, h1, h2); after != before {
		t.Errorf("control connection changed under loss: %q, then %q", before, after)
	}
	if err := h1.EstablishedWith(h2); err != nil {
		t.Error(err)
	}
}

// controlConns returns h's connection line(s) with other, as status shows
// them: the same line (address and port included) means the same
// connection.
func controlConns(t *testing.T, h, other *netns.Host) string {
	t.Helper()
	with, err := h.ConnectionsWith(other)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, c := range with {
		addrs = append(addrs, c.Address+" "+c.State)
	}
	return strings.Join(addrs, ", ")
}

// TestReliabilityPartition: with the direct path between h1 and h2 blocked
// (TCP and UDP), their containers reach each other through h3 within
// 30 s; once the block is lifted the direct connection returns within
// 60 s.
func TestReliabilityPartition(t *testing.T) {
	t.Parallel()
	w := netns.NewWorld(t, 3)
	h1, h2, h3 := w.Hosts[0], w.Hosts[1], w.Hosts[2]
	h1.Launch(t)
	h2.Launch(t, h1.PeerAddr())
	h3.Launch(t, h1.PeerAddr(), h2.PeerAddr())
	c1 := h1.AddContainer(t, "c1", "10.2.21.1/24")
	c2 := h2.AddContainer(t, "c2", "10.2.21.2/24")
	c1.WaitPing(t, c2.IP, pingTimeout)
	netns.Eventually(t, connectTimeout, "h1 and h2 connected directly", func() error { return h1.EstablishedWith(h2) })
	n2, err := h2.PeerName()
	if err != nil {
		t.Fatal(err)
	}
	n3, _ := h3.PeerName()

	w.Block(t, h1, h2)
	start := time.Now()
	netns.Eventually(t, 30*time.Second, "c1 reaches c2 through h3", func() error {
		rep, err := h1.Report()
		if err != nil {
			return err
		}
		if via, _ := netns.RouteVia(rep, n2); via != n3 {
			return fmt.Errorf("h1's route to h2 is via %q, want h3 (%s)", via, n3)
		}
		return c1.Ping(c2.IP, 0)
	})
	t.Logf("relayed through h3 %v after the block", time.Since(start).Round(time.Second))

	w.Unblock(t, h1, h2)
	start = time.Now()
	netns.Eventually(t, 60*time.Second, "h1 and h2 connected directly again", func() error {
		if err := h1.EstablishedWith(h2); err != nil {
			return err
		}
		rep, err := h1.Report()
		if err != nil {
			return err
		}
		if via, _ := netns.RouteVia(rep, n2); via != n2 {
			return fmt.Errorf("h1's route to h2 is via %q", via)
		}
		return nil
	})
	t.Logf("direct again %v after the block was lifted", time.Since(start).Round(time.Second))
	if err := c1.Ping(c2.IP, 0); err != nil {
		t.Fatal(err)
	}
}

// TestReliabilityRestart: h2's router is stopped and started again in
// the middle of a 40 s TCP transfer from c1 to c2: every byte arrives, and
// the attachments and DNS names survive.
func TestReliabilityRestart(t *testing.T) {
	t.Parallel()
	w := netns.NewWorld(t, 2)
	h1, h2 := w.Hosts[0], w.Hosts[1]
	h1.Launch(t)
	h2.Launch(t, h1.PeerAddr())
	c1 := h1.AddContainer(t, "c1", "10.2.22.1/24")
	c2 := h2.AddContainer(t, "c2", "10.2.22.2/24")
	c1.WaitPing(t, c2.IP, pingTimeout)
	netns.Eventually(t, 30*time.Second, "c1 resolves c2 by name", func() error {
		r := c1.Run("getent", "hosts", c2.Name+".weft.local")
		if !r.OK() || !strings.Contains(r.Stdout, c2.IP) {
			return fmt.Errorf("%v: %q", r.Err, r.Stdout)
		}
		return nil
	})

	dir := t.TempDir()
	chunk, sent, got := filepath.Join(dir, "chunk"), filepath.Join(dir, "sent"), filepath.Join(dir, "got")
	h1.MustRun(t, "sh", "-c", "head -c 262144 /dev/urandom > "+chunk)
	const port = 5202
	srv := c2.Start(t, "sh", "-c", fmt.Sprintf("exec nc -l -p %d > %s", port, got))
	waitListening(t, c2, port)
	// 40 chunks of 256 KiB, one a second: the stream is open for 40 s.
	cli := c1.Start(t, "sh", "-c", fmt.Sprintf(
		"for i in $(seq 40); do cat %s; sleep 1; done | tee %s | nc -N %s %d", chunk, sent, c2.IP, port))
	time.Sleep(10 * time.Second)
	h2.Stop(t)
	time.Sleep(2 * time.Second)
	h2.Launch(t, h1.PeerAddr())
	if res := cli.Wait(60 * time.Second); !res.OK() {
		t.Fatalf("sender: %v", res)
	}
	if res := srv.Wait(30 * time.Second); !res.OK() {
		t.Fatalf("receiver: %v", res)
	}
	a, err := os.ReadFile(sent)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(got)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 40*262144 || len(b) != len(a) || sha256.Sum256(a) != sha256.Sum256(b) {
		t.Fatalf("sent %d bytes, received %d; equal: %v", len(a), len(b), sha256.Sum256(a) == sha256.Sum256(b))
	}
	if out := h2.MustWeft(t, "ps"); !strings.Contains(out, c2.Target()) || !strings.Contains(out, c2.IP) {
		t.Errorf("h2's attachment after the restart:\n%s", out)
	}
	if r := c1.Run("getent", "hosts", c2.Name+".weft.local"); !r.OK() || !strings.Contains(r.Stdout, c2.IP) {
		t.Errorf("c2's name after the restart: %v %q", r.Err, r.Stdout)
	}
}

// TestReliabilityChurn: 30 attach/detach cycles and 10 forget/connect
// cycles leave the router's open files, goroutines and memory where they
// were.
func TestReliabilityChurn(t *testing.T) {
	t.Parallel()
	w := netns.NewWorld(t, 2)
	h1, h2 := w.Hosts[0], w.Hosts[1]
	h1.Launch(t)
	h2.Launch(t, h1.PeerAddr())
	netns.Eventually(t, connectTimeout, "h1 and h2 connected", func() error { return h1.EstablishedWith(h2) })
	c := h1.NewContainer(t, "churn")
	cycle := func() {
		h1.MustWeft(t, "attach", "10.2.23.1/24", c.Target())
		h1.MustWeft(t, "detach", c.Target())
	}
	// One round first: the first attach and connect make lasting things
	// (the DNS store's entries, buffers) that are not leaks.
	cycle()
	h1.MustWeft(t, "forget", h2.PeerAddr())
	h1.MustWeft(t, "connect", h2.PeerAddr())
	netns.Eventually(t, connectTimeout, "reconnected", func() error { return h1.EstablishedWith(h2) })
	before := routerUsage(t, h1)
	for range 30 {
		cycle()
	}
	for range 10 {
		h1.MustWeft(t, "forget", h2.PeerAddr())
		h1.MustWeft(t, "connect", h2.PeerAddr())
		netns.Eventually(t, connectTimeout, "reconnected", func() error { return h1.EstablishedWith(h2) })
	}
	// Let closed connections' goroutines end.
	var after netns.Usage
	netns.Eventually(t, 20*time.Second, "h1's router back to its usage", func() error {
		after = routerUsage(t, h1)
		switch {
		case after.FDs > before.FDs+2:
			return fmt.Errorf("open files %d -> %d", before.FDs, after.FDs)
		case after.Goroutines > before.Goroutines+5:
			return fmt.Errorf("goroutines %d -> %d", before.Goroutines, after.Goroutines)
		}
		return nil
	})
	t.Logf("h1's router: before %+v, after %+v", before, after)
	if after.RSSKiB > before.RSSKiB+16<<10 {
		t.Errorf("memory grew from %d to %d KiB", before.RSSKiB, after.RSSKiB)
	}
}

// routerUsage samples h's router, failing the test when it cannot.
func routerUsage(t *testing.T, h *netns.Host) netns.Usage {
	t.Helper()
	u, err := h.RouterUsage()
	if err != nil {
		t.Fatal(err)
	}
	return u
}
