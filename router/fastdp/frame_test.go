package fastdp

import (
	"errors"
	"github.com/weftnet/weft/mesh"
	"testing"
)

func TestHeartbeatRoundTrip(t *testing.T) {
	in := heartbeat{dst: HeartbeatMAC(nameB), src: HeartbeatMAC(nameA), hearsYou: true, sender: nameA, uid: 0x0102030405060708}
	buf := make([]byte, 100)
	for i := range buf {
		buf[i] = 0xff
	}
	putHeartbeat(buf, in)
	for _, b := range buf[HeaderLen:] {
		if b != 0 {
			t.Fatal("padding not zeroed")
		}
	}
	out, err := parseHeartbeat(buf)
	if err != nil || out != in {
		t.Fatalf("parse = %+v, %v; want %+v", out, err, in)
	}
	if _, err := parseHeartbeat(buf[:HeaderLen-1]); !errors.Is(err, ErrShortFrame) {
		t.Errorf("short: %v", err)
	}
	buf[offVersion] = 2
	if _, err := parseHeartbeat(buf); !errors.Is(err, ErrNotHeartbeat) {
		t.Errorf("version 2: %v", err)
	}
	buf[offVersion], buf[offType] = Version, 0x08
	if _, err := parseHeartbeat(buf); !errors.Is(err, ErrNotHeartbeat) {
		t.Errorf("IPv4: %v", err)
	}
}

func TestHeartbeatMACIsUnicastAndLocal(t *testing.T) {
	seen := map[MAC]bool{}
	for n := range 1000 {
		m := HeartbeatMAC(nameA + mesh.PeerName(n))
		if m[0]&1 != 0 || m[0]&2 == 0 {
			t.Fatalf("%s is not a locally administered unicast MAC", macString(m))
		}
		if seen[m] {
			t.Fatalf("collision at %d", n)
		}
		seen[m] = true
	}
}

func FuzzParseHeartbeat(f *testing.F) {
	buf := make([]byte, HeaderLen)
	putHeartbeat(buf, heartbeat{dst: HeartbeatMAC(nameB), src: HeartbeatMAC(nameA), sender: nameA, uid: 1, hearsYou: true})
	f.Add(buf)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHeartbeat(b)
		if err != nil {
			return
		}
		out := make([]byte, len(b))
		putHeartbeat(out, h)
		if h2, err := parseHeartbeat(out); err != nil || h2 != h {
			t.Fatalf("re-encoded heartbeat parses to %+v, %v; want %+v", h2, err, h)
		}
	})
}
