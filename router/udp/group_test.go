package udp

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/weftnet/weft/router"
)

func listenGroup(t *testing.T, addr netip.AddrPort, n int) []*Conn {
	t.Helper()
	g, err := ListenGroup(addr, Options{}, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, c := range g {
			c.Close()
		}
	})
	return g
}

func TestGroupSpreadsSenders(t *testing.T) {
	g := listenGroup(t, loopback4, 2)
	if g[0].LocalPort() == 0 || g[1].LocalPort() != g[0].LocalPort() {
		t.Fatalf("group ports %d and %d", g[0].LocalPort(), g[1].LocalPort())
	}
	const senders, each = 32, 3
	for s := range senders {
		c := listen(t, loopback4)
		batch := make([]router.Datagram, each)
		for i := range batch {
			batch[i] = router.Datagram{Buf: []byte{byte(s), byte(i)}, Addr: dest(g[0])}
		}
		if n, err := c.WriteBatch(batch); n != each || err != nil {
			t.Fatalf("sender %d: WriteBatch = %d, %v", s, n, err)
		}
	}
	// Each sender's datagrams on one socket, in order; both sockets used.
	socketOf := map[byte]int{}
	next := map[byte]byte{}
	got := 0
	deadline := time.Now().Add(5 * time.Second)
	rx := makeBatch(64, 100)
	for got < senders*each {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d datagrams arrived", got, senders*each)
		}
		for i, c := range g {
			c.conn.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			n, err := c.ReadBatch(rx)
			if err != nil && !errors.Is(err, syscall.EAGAIN) && !isTimeout(err) {
				t.Fatal(err)
			}
			for _, d := range rx[:n] {
				s, seq := d.Buf[0], d.Buf[1]
				if prev, ok := socketOf[s]; ok && prev != i {
					t.Fatalf("sender %d's datagrams on sockets %d and %d", s, prev, i)
				}
				socketOf[s] = i
				if seq != next[s] {
					t.Fatalf("sender %d: datagram %d after %d", s, seq, next[s])
				}
				next[s]++
				got++
			}
		}
	}
	used := map[int]bool{}
	for _, i := range socketOf {
		used[i] = true
	}
	if len(used) != 2 {
		t.Fatalf("32 senders all on one socket of the group: %v", socketOf)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestGroupRefusesTakenPort(t *testing.T) {
	plain := listen(t, loopback4)
	taken := dest(plain)
	if _, err := ListenGroup(taken, Options{}, 2); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("group on a port a plain socket holds: %v, want EADDRINUSE", err)
	}
	g := listenGroup(t, loopback4, 2)
	held := dest(g[0])
	if c, err := ListenOptions(held, Options{}); err == nil {
		c.Close()
		t.Fatal("a plain socket bound the port a group holds")
	}
	if _, err := ListenGroup(held, Options{}, 2); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("second group on a group's port: %v, want EADDRINUSE", err)
	}
}

func TestGroupOfOneIsPlain(t *testing.T) {
	g := listenGroup(t, loopback4, 1)
	if len(g) != 1 {
		t.Fatalf("%d sockets", len(g))
	}
	// Without SO_REUSEPORT nobody else may bind the port, even with it.
	if _, err := ListenGroup(dest(g[0]), Options{}, 2); err == nil {
		t.Fatal("a group bound the port of a plain socket")
	}
}
