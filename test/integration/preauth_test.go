package integration

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/weftnet/weft/test/netns"
)

// TestPreauth is issue 16's pre-authentication attack, built from
// docs/protocol-control.md §1–§3 alone: from h3 (no router; 10 underlay
// addresses), 200 connections to h1's router, each sending the 7-byte
// header and a features frame that claims 10 MiB and carries 1 MiB (half
// of them) or claims 32 KiB and carries 16 KiB (the other half), then
// stalling; each reconnects 100 ms after the router closes it. Meanwhile
// h2 launches, pointed at h1, and must join. h1's router must grow by
// less than 50 MiB (VmRSS).
func TestPreauth(t *testing.T) {
	t.Parallel()
	w := netns.NewWorld(t, 3)
	h1, h2, h3 := w.Hosts[0], w.Hosts[1], w.Hosts[2]
	h1.Launch(t)
	var srcs []net.IP
	for i := 101; i <= 110; i++ {
		ip := fmt.Sprintf("%s.%d", netns.UnderlayPrefix, i)
		h3.MustRun(t, "ip", "addr", "add", ip+"/24", "dev", "eth0")
		srcs = append(srcs, net.ParseIP(ip))
	}
	time.Sleep(time.Second) // let the router settle before the baseline
	before := routerRSS(t, h1)

	dial := nsDialer(t, h3.Name)
	target := &net.TCPAddr{IP: net.ParseIP(h1.Addr), Port: h1.Port}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var dials, admitted atomic.Int64
	for i := range 200 {
		claim, body := uint32(10<<20), 1<<20
		if i%2 == 1 {
			claim, body = 32<<10, 16<<10
		}
		src := srcs[i%len(srcs)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			stalledConn(stop, dial, src, target, claim, body, &dials, &admitted)
		}()
	}
	t.Cleanup(func() { close(stop); wg.Wait() })

	var peak atomic.Int64
	go func() {
		for {
			if rss, err := readRSS(h1); err == nil && rss > peak.Load() {
				peak.Store(rss)
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()

	time.Sleep(2 * time.Second) // the attack is under way before h2 arrives
	h2.Launch(t, h1.PeerAddr())
	netns.Eventually(t, connectTimeout, "h2 connected to h1 during the attack", func() error { return h2.EstablishedWith(h1) })
	netns.Eventually(t, connectTimeout, "h1 connected to h2 during the attack", func() error { return h1.EstablishedWith(h2) })
	// Past the handshake deadline (10 s) of the first stalled connections:
	// the reconnecting attack is in its steady state.
	time.Sleep(12 * time.Second)
	if err := h2.EstablishedWith(h1); err != nil {
		t.Errorf("h2 lost h1 during the attack: %v", err)
	}
	after := routerRSS(t, h1)
	growth := max(peak.Load(), after) - before
	t.Logf("h1 router VmRSS: %d KiB before, %d KiB peak, %d KiB after; growth %.1f MiB; %d attack connections made, %d got the router's header",
		before>>10, peak.Load()>>10, after>>10, float64(growth)/(1<<20), dials.Load(), admitted.Load())
	if growth >= 50<<20 {
		t.Errorf("200 stalled pre-auth connections grew h1's router by %.1f MiB (VmRSS), want under 50 MiB", float64(growth)/(1<<20))
	}
}

// stalledConn is one attacker: connect from src, send the header and a
// features frame claiming claim bytes with body of them, read the
// router's header, stall until the router closes the connection, wait
// 100 ms, and again, until stop.
func stalledConn(stop <-chan struct{}, dial func(src net.IP, dst *net.TCPAddr) (net.Conn, error),
	src net.IP, dst *net.TCPAddr, claim uint32, body int, dials, admitted *atomic.Int64) {
	msg := append([]byte("weft\x02\x02\x00"), binary.BigEndian.AppendUint32(nil, claim)...)
	msg = append(msg, make([]byte, body)...) // its first byte, 0, is the features tag
	for {
		if nc, err := dial(src, dst); err == nil {
			dials.Add(1)
			closed := make(chan struct{})
			go func() {
				select {
				case <-stop:
					nc.Close()
				case <-closed:
				}
			}()
			nc.SetDeadline(time.Now().Add(30 * time.Second))
			nc.Write(msg)
			var hdr [7]byte
			if _, err := io.ReadFull(nc, hdr[:]); err == nil && string(hdr[:4]) == "weft" {
				admitted.Add(1)
			}
			io.Copy(io.Discard, nc) // until the router closes it
			close(closed)
			nc.Close()
		}
		select {
		case <-stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// nsDialer returns a dial function whose sockets live in namespace ns:
// the dials run on one goroutine locked to an OS thread that joined ns
// and that ends with the test (a locked thread that exits is discarded,
// so no other goroutine ever runs in ns).
func nsDialer(t *testing.T, ns string) func(src net.IP, dst *net.TCPAddr) (net.Conn, error) {
	type result struct {
		nc  net.Conn
		err error
	}
	type request struct {
		src   net.IP
		dst   *net.TCPAddr
		reply chan result
	}
	reqs := make(chan request)
	ready := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		f, err := os.Open("/run/netns/" + ns)
		if err == nil {
			err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
			f.Close()
		}
		ready <- err
		if err != nil {
			return
		}
		for r := range reqs {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: r.src}, Timeout: 5 * time.Second}
			nc, err := d.Dial("tcp", r.dst.String())
			r.reply <- result{nc, err}
		}
	}()
	if err := <-ready; err != nil {
		t.Fatalf("join namespace %s: %v", ns, err)
	}
	t.Cleanup(func() { close(reqs) })
	return func(src net.IP, dst *net.TCPAddr) (net.Conn, error) {
		reply := make(chan result, 1)
		reqs <- request{src, dst, reply}
		r := <-reply
		return r.nc, r.err
	}
}

// readRSS sums VmRSS over the router processes of h, in bytes.
func readRSS(h *netns.Host) (int64, error) {
	pids := h.RouterPIDs()
	if len(pids) == 0 {
		return 0, fmt.Errorf("%s: no router process", h.Nick)
	}
	var sum int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
				kb, err := strconv.ParseInt(f[1], 10, 64)
				if err != nil {
					return 0, err
				}
				sum += kb << 10
			}
		}
	}
	return sum, nil
}

func routerRSS(t *testing.T, h *netns.Host) int64 {
	t.Helper()
	rss, err := readRSS(h)
	if err != nil {
		t.Fatal(err)
	}
	return rss
}
