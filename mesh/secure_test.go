package mesh

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/weftnet/weft/secure"
)

// logBuf collects a node's log lines for assertions.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// withPassword sets a test PSK (fixed key, no Argon2id) and a log buffer.
func withPassword(t *testing.T, key byte, trusted string, log *logBuf) func(*Config) {
	return func(c *Config) {
		if key != 0 {
			c.PSK = testPSK(t, key)
		}
		ts, err := secure.ParseTrustedSubnets(trusted)
		if err != nil {
			t.Fatal(err)
		}
		c.TrustedSubnets = ts
		if log != nil {
			c.Logger = slog.New(slog.NewTextHandler(log, nil))
		}
	}
}

// hasReason checks that n's status has a connection entry in state with reason.
func hasReason(n *testNode, state, reason string) error {
	for _, cs := range n.Status().Connections {
		if cs.State == state && cs.Reason == reason {
			return nil
		}
	}
	return fmt.Errorf("%v: no %s connection with reason %q in %+v", n.Name(), state, reason, n.Status().Connections)
}

func TestEqualPasswordsGossip(t *testing.T) {
	var nodes []*testNode
	gs := make([]*setGossiper, 3)
	chans := make([]*GossipChannel, 3)
	for i := range 3 {
		n := startNode(t, i+1, withPassword(t, 7, "", nil))
		gs[i] = newSetGossiper()
		chans[i] = n.RegisterGossip("test", gs[i])
		nodes = append(nodes, n)
	}
	nodes[0].connect(t, nodes[1], nodes[2])
	nodes[1].connect(t, nodes[2])
	eventually(t, converge, func() error { return directMesh(nodes...) })

	gs[0].add("x")
	chans[0].GossipBroadcast(setData{"x": {}})
	if err := chans[0].GossipUnicast(testName(3), []byte("hi")); err != nil {
		t.Fatal(err)
	}
	eventually(t, converge, func() error {
		for i, g := range gs[1:] {
			if !g.has("x") {
				return fmt.Errorf("node %d lacks x", i+2)
			}
		}
		gs[2].mu.Lock()
		defer gs[2].mu.Unlock()
		if len(gs[2].unicasts) != 1 {
			return fmt.Errorf("unicasts at 3: %v", gs[2].unicasts)
		}
		return nil
	})
	// Overlay control messages travel over the sealed channel too.
	eventually(t, converge, func() error {
		for _, m := range nodes[1].ov.received() {
			if strings.HasPrefix(m, testName(1).String()+":hello from") {
				return nil
			}
		}
		return fmt.Errorf("received %v", nodes[1].ov.received())
	})
	// Every connection has its own data keys; the two ends' rings match.
	ring := func(a, b int) *secure.KeyRing {
		p, ok := nodes[a].ov.paramsFor(nodes[b].Name())
		if !ok || !p.ControlEncrypted || p.Keys == nil {
			t.Fatalf("%d->%d: params %+v", a+1, b+1, p)
		}
		return p.Keys
	}
	ringsInteroperate(t, ring(0, 1), ring(1, 0))
	ringsInteroperate(t, ring(0, 2), ring(2, 0))
	if err := sealOpen(ring(0, 1), ring(2, 0)); err == nil {
		t.Fatal("keys of connection 1-2 open a datagram of connection 1-3")
	}
	if err := sealOpen(ring(0, 2), ring(1, 0)); err == nil {
		t.Fatal("keys of connection 1-3 open a datagram of connection 1-2")
	}
}

func TestPasswordRefusals(t *testing.T) {
	const (
		mismatch     = "authentication failed: password mismatch"
		peerRequires = "authentication failed: peer requires a password, we have none"
		peerHasNone  = "authentication failed: peer has no password, we require one"
	)
	for _, tc := range []struct {
		name             string
		keyA, keyB       byte // 0: no password
		reasonA, reasonB string
	}{
		{"different passwords", 1, 2, mismatch, mismatch},
		{"dialler without password", 0, 2, peerRequires, peerHasNone},
		{"acceptor without password", 1, 0, peerHasNone, peerRequires},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var la, lb logBuf
			a := startNode(t, 1, withPassword(t, tc.keyA, "", &la))
			b := startNode(t, 2, withPassword(t, tc.keyB, "", &lb))
			a.connect(t, b)
			eventually(t, converge, func() error {
				if err := hasReason(a, StateRetrying, tc.reasonA); err != nil {
					return err
				}
				return hasReason(b, StateFailed, tc.reasonB)
			})
			if _, ok := a.conn(2); ok {
				t.Fatal("a connected to b")
			}
			if _, ok := b.conn(1); ok {
				t.Fatal("b connected to a")
			}
			for _, l := range []*logBuf{&la, &lb} {
				if !strings.Contains(l.String(), "connection refused") {
					t.Errorf("refusal not logged:\n%s", l.String())
				}
			}
			if !strings.Contains(la.String(), tc.reasonA) || !strings.Contains(lb.String(), tc.reasonB) {
				t.Errorf("reasons not logged:\n%s\n%s", la.String(), lb.String())
			}
		})
	}
}

func TestTrustedSubnets(t *testing.T) {
	for _, tc := range []struct {
		name           string
		trustA, trustB string
		wantKeys       bool
	}{
		{"both trust", "127.0.0.0/8", "10.0.0.0/8,127.0.0.1/32", false},
		{"only the dialler trusts", "127.0.0.0/8", "", true},
		{"only the acceptor trusts", "", "127.0.0.0/8", true},
		{"other subnet", "10.0.0.0/8", "127.0.0.0/8", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := startNode(t, 1, withPassword(t, 3, tc.trustA, nil))
			b := startNode(t, 2, withPassword(t, 3, tc.trustB, nil))
			a.connect(t, b)
			eventually(t, converge, func() error { return directMesh(a, b) })
			pa, _ := a.ov.paramsFor(2)
			pb, _ := b.ov.paramsFor(1)
			if !pa.ControlEncrypted || !pb.ControlEncrypted {
				t.Fatal("control not encrypted")
			}
			if (pa.Keys != nil) != tc.wantKeys || (pb.Keys != nil) != tc.wantKeys {
				t.Fatalf("keys %v, %v; want %v", pa.Keys != nil, pb.Keys != nil, tc.wantKeys)
			}
			if tc.wantKeys {
				ringsInteroperate(t, pa.Keys, pb.Keys)
			}
		})
	}
}

func TestNoPasswordNoKeys(t *testing.T) {
	a := startNode(t, 1, withPassword(t, 0, "127.0.0.0/8", nil))
	b := startNode(t, 2, nil)
	a.connect(t, b)
	eventually(t, converge, func() error { return directMesh(a, b) })
	if p, _ := a.ov.paramsFor(2); p.ControlEncrypted || p.Keys != nil {
		t.Fatalf("params %+v", p)
	}
}

// tamperProxy forwards TCP connections to dst and, when armed, flips the
// last byte of the next chunk going from the dialler to dst.
type tamperProxy struct {
	ln    net.Listener
	dst   string
	armed atomic.Bool
}

func newTamperProxy(t *testing.T, dst string) *tamperProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tamperProxy{ln: ln, dst: dst}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", dst)
			if err != nil {
				in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); p.forward(out, in, true); out.Close() }()
			go func() { defer wg.Done(); io.Copy(in, out); in.Close() }()
		}
	}()
	return p
}

func (p *tamperProxy) forward(dst, src net.Conn, tamper bool) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if tamper && p.armed.CompareAndSwap(true, false) {
				buf[n-1] ^= 0x01
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func TestTamperedControlMessageClosesConnection(t *testing.T) {
	var lb logBuf
	a := startNode(t, 1, withPassword(t, 5, "", nil))
	b := startNode(t, 2, withPassword(t, 5, "", &lb))
	p := newTamperProxy(t, b.addr())
	if err := a.Connect([]string{p.ln.Addr().String()}, false); err != nil {
		t.Fatal(err)
	}
	eventually(t, converge, func() error { return directMesh(a, b) })
	first, _ := b.ov.paramsFor(1)
	p.armed.Store(true) // the next heartbeat from a arrives with a flipped bit
	eventually(t, converge, func() error {
		if !strings.Contains(lb.String(), "control message authentication failed") {
			return fmt.Errorf("no authentication failure logged:\n%s", lb.String())
		}
		return nil
	})
	// The connection was closed and a reconnects with a new handshake.
	eventually(t, converge, func() error {
		if err := directMesh(a, b); err != nil {
			return err
		}
		if p, _ := b.ov.paramsFor(1); p.ConnUID == first.ConnUID {
			return fmt.Errorf("still the first connection")
		}
		return nil
	})
}
