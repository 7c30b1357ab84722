package daemon

import (
	"io"
	"net"
	"testing"
)

// TestTCPRTT: a TCP connection that carried data has a round-trip time;
// a connection that is no socket, and a closed one, have none.
func TestTCPRTT(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	for range 10 {
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
	}
	if rtt := tcpRTT(c); rtt <= 0 {
		t.Errorf("RTT of a loopback connection that echoed 10 messages: %v", rtt)
	}
	c.Close()
	if rtt := tcpRTT(c); rtt != 0 {
		t.Errorf("closed connection: %v", rtt)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if rtt := tcpRTT(a); rtt != 0 {
		t.Errorf("pipe: %v", rtt)
	}
}
