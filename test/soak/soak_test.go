//go:build soak

// Soak test: three routers in network namespaces for a long time
// under mixed traffic, random router restarts and link cuts, and checks
// that no byte is lost and that no router grows (issue 18). It is not part
// of `make test`: run it with `make soak` (SOAK=30m by default).

package soak

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weftnet/weft/test/netns"
)

var (
	duration = flag.Duration("soak.duration", 30*time.Minute, "how long the soak runs")
	sample   = flag.Duration("soak.sample", 30*time.Second, "how often the routers' usage is sampled")
)

func TestMain(m *testing.M) { os.Exit(netns.Main(m)) }

// stream is one TCP stream between containers: the sender writes a
// deterministic byte sequence at a steady pace, the receiver checks every
// byte against it.
type stream struct {
	name           string
	sent, received atomic.Int64
	bad            atomic.Int64 // bytes that differed from what was sent
	failed         atomic.Value // the first error that ended the stream, as a string
}

// pattern returns byte i of a stream: a keyed PCG sequence, 8 bytes at a
// time.
type pattern struct{ rng *rand.PCG }

func newPattern(seed uint64) *pattern {
	return &pattern{rng: rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)}
}

func (p *pattern) fill(b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := p.rng.Uint64()
		for j := 0; j < 8 && i+j < len(b); j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
}

// run opens the stream from the namespace of from to addr (listened on in
// the namespace of to) and keeps it going until stop closes; rate is bytes
// per second.
func (s *stream) run(t *testing.T, from, to string, addr string, rate int, stop <-chan struct{}, wg *sync.WaitGroup) {
	var ln net.Listener
	if err := netns.Inside(to, func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatalf("%s: listen: %v", s.name, err)
	}
	var conn net.Conn
	if err := netns.Inside(from, func() (err error) { conn, err = net.DialTimeout("tcp", addr, 10*time.Second); return err }); err != nil {
		t.Fatalf("%s: dial: %v", s.name, err)
	}
	peer, err := ln.Accept()
	ln.Close()
	if err != nil {
		t.Fatalf("%s: accept: %v", s.name, err)
	}
	seed := uint64(len(s.name)) * 7919
	wg.Add(2)
	go func() { // sender
		defer wg.Done()
		defer conn.(*net.TCPConn).CloseWrite()
		p := newPattern(seed)
		buf := make([]byte, 32<<10)
		tick := time.NewTicker(time.Second * time.Duration(len(buf)) / time.Duration(rate))
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			p.fill(buf)
			conn.SetWriteDeadline(time.Now().Add(10 * time.Minute))
			n, err := conn.Write(buf)
			s.sent.Add(int64(n))
			if err != nil {
				s.failed.CompareAndSwap(nil, "send: "+err.Error())
				return
			}
		}
	}()
	go func() { // receiver
		defer wg.Done()
		defer peer.Close()
		defer conn.Close()
		p := newPattern(seed)
		buf, want := make([]byte, 64<<10), make([]byte, 0, 64<<10)
		var pending []byte // pattern bytes generated but not yet compared
		for {
			peer.SetReadDeadline(time.Now().Add(10 * time.Minute))
			n, err := peer.Read(buf)
			for len(pending) < n {
				chunk := make([]byte, 8<<10)
				p.fill(chunk)
				pending = append(pending, chunk...)
			}
			want = append(want[:0], pending[:n]...)
			pending = pending[n:]
			if !bytes.Equal(buf[:n], want) {
				for i := range n {
					if buf[i] != want[i] {
						s.bad.Add(1)
					}
				}
			}
			s.received.Add(int64(n))
			if err == io.EOF {
				return
			}
			if err != nil {
				s.failed.CompareAndSwap(nil, "receive: "+err.Error())
				return
			}
		}
	}()
}

var pingRE = regexp.MustCompile(`(\d+) (packets )?received`)

func TestSoak(t *testing.T) {
	w := netns.NewWorld(t, 3)
	hosts := w.Hosts
	peersOf := func(h *netns.Host) []string {
		var out []string
		for _, o := range hosts {
			if o != h {
				out = append(out, o.PeerAddr())
			}
		}
		return out
	}
	for _, h := range hosts {
		h.Launch(t, peersOf(h)...)
	}
	var cs []*netns.Container
	for i, h := range hosts {
		cs = append(cs, h.AddContainer(t, fmt.Sprintf("c%d", i+1), fmt.Sprintf("10.2.30.%d/24", i+1)))
	}
	for _, a := range cs {
		for _, b := range cs {
			if a != b {
				a.WaitPing(t, b.IP, 30*time.Second)
			}
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var streams []*stream
	for i := range cs {
		from, to := cs[i], cs[(i+1)%len(cs)]
		s := &stream{name: from.Nick + "->" + to.Nick}
		s.run(t, from.Name, to.Name, fmt.Sprintf("%s:%d", to.IP, 7000+i), 2<<20, stop, &wg)
		streams = append(streams, s)
	}

	start := time.Now()
	rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), 1))
	every := max(*duration/10, 30*time.Second) // one chaos event per tenth of the run
	nextChaos := start.Add(every / 2)
	var samples [][]netns.Usage // per sample, per host
	pingsSent, pingsGot := 0, 0
	var events []string
	cut := [2]int{-1, -1}
	for time.Since(start) < *duration {
		time.Sleep(min(*sample, time.Until(start.Add(*duration))))
		now := time.Since(start).Round(time.Second)
		if time.Now().After(nextChaos) {
			nextChaos = time.Now().Add(every)
			switch {
			case cut[0] >= 0:
				w.Unblock(t, hosts[cut[0]], hosts[cut[1]])
				events = append(events, fmt.Sprintf("%v unblock %s-%s", now, hosts[cut[0]].Nick, hosts[cut[1]].Nick))
				cut = [2]int{-1, -1}
			case rng.IntN(2) == 0:
				h := hosts[rng.IntN(len(hosts))]
				h.Stop(t)
				time.Sleep(2 * time.Second)
				h.Launch(t, peersOf(h)...)
				events = append(events, fmt.Sprintf("%v restart %s", now, h.Nick))
			default:
				a := rng.IntN(len(hosts))
				b := (a + 1 + rng.IntN(len(hosts)-1)) % len(hosts)
				w.Block(t, hosts[a], hosts[b])
				cut = [2]int{a, b}
				events = append(events, fmt.Sprintf("%v block %s-%s", now, hosts[a].Nick, hosts[b].Nick))
			}
			t.Logf("chaos: %s", events[len(events)-1])
		}
		var row []netns.Usage
		line := fmt.Sprintf("%6v", now)
		for _, h := range hosts {
			u, err := h.RouterUsage()
			if err != nil {
				t.Logf("sample: %v", err)
			}
			row = append(row, u)
			line += fmt.Sprintf("  %s rss=%dKiB gor=%d fds=%d", h.Nick, u.RSSKiB, u.Goroutines, u.FDs)
		}
		samples = append(samples, row)
		for _, s := range streams {
			line += fmt.Sprintf("  %s sent=%dMB", s.name, s.sent.Load()>>20)
		}
		r := cs[0].Run("ping", "-n", "-q", "-c", "20", "-i", "0.05", "-W", "1", cs[1].IP)
		if m := pingRE.FindStringSubmatch(r.Stdout); m != nil {
			n, _ := strconv.Atoi(m[1])
			pingsGot += n
		}
		pingsSent += 20
		t.Log(line)
	}
	if cut[0] >= 0 {
		w.Unblock(t, hosts[cut[0]], hosts[cut[1]])
	}
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("streams did not drain within 3 minutes of the end")
	}

	// Bytes: every byte sent arrived, unchanged.
	var sentTotal, recvTotal int64
	for _, s := range streams {
		sentTotal += s.sent.Load()
		recvTotal += s.received.Load()
		t.Logf("stream %s: sent %d bytes, received %d, %d differed", s.name, s.sent.Load(), s.received.Load(), s.bad.Load())
		if f := s.failed.Load(); f != nil {
			t.Errorf("stream %s ended early: %v", s.name, f)
		}
		if s.received.Load() != s.sent.Load() || s.bad.Load() != 0 {
			t.Errorf("stream %s lost or changed bytes", s.name)
		}
	}
	t.Logf("chaos events: %s", strings.Join(events, "; "))
	t.Logf("pings c1->c2: %d of %d answered (they span restarts and cuts)", pingsGot, pingsSent)

	// Growth: the last third of the samples against the first third, per
	// host, by median (restarts reset a router; a leak grows within and
	// across them).
	third := len(samples) / 3
	if third == 0 {
		t.Logf("too few samples (%d) to judge growth", len(samples))
		return
	}
	med := func(rows [][]netns.Usage, host int, f func(netns.Usage) int) int {
		var v []int
		for _, r := range rows {
			v = append(v, f(r[host]))
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	for i, h := range hosts {
		for _, m := range []struct {
			name  string
			f     func(netns.Usage) int
			slack func(int) int
		}{
			{"goroutines", func(u netns.Usage) int { return u.Goroutines }, func(v int) int { return v/10 + 5 }},
			{"open files", func(u netns.Usage) int { return u.FDs }, func(v int) int { return v/10 + 3 }},
			{"RSS KiB", func(u netns.Usage) int { return u.RSSKiB }, func(v int) int { return v / 2 }},
		} {
			first, last := med(samples[:third], i, m.f), med(samples[len(samples)-third:], i, m.f)
			t.Logf("%s %s: first third %d, last third %d", h.Nick, m.name, first, last)
			if last > first+m.slack(first) {
				t.Errorf("%s: %s grew from %d to %d", h.Nick, m.name, first, last)
			}
		}
	}
	fmt.Printf("soak: duration=%v bytes_sent=%d bytes_received=%d lost=%d pings=%d/%d events=%d\n",
		*duration, sentTotal, recvTotal, sentTotal-recvTotal, pingsGot, pingsSent, len(events))
}
