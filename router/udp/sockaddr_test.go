package udp

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSockaddrRoundTrip(t *testing.T) {
	tests := []struct {
		ap   string
		v6   bool
		ok   bool
		want string
	}{
		{"10.1.2.3:6783", false, true, "10.1.2.3:6783"},
		{"[::ffff:10.1.2.3]:1", false, true, "10.1.2.3:1"},
		{"[2001:db8::1]:65535", false, false, ""},
		{"[2001:db8::1]:65535", true, true, "[2001:db8::1]:65535"},
		{"10.1.2.3:9", true, true, "10.1.2.3:9"}, // v4-mapped on the wire, unmapped back
	}
	for _, tt := range tests {
		var b batch
		b.names = make([]unix.RawSockaddrInet6, 1)
		n, ok := putSockaddr(&b.names[0], netip.MustParseAddrPort(tt.ap), tt.v6)
		if ok != tt.ok {
			t.Errorf("putSockaddr(%s, v6=%v) ok = %v", tt.ap, tt.v6, ok)
			continue
		}
		if !ok {
			continue
		}
		if want := uint32(unix.SizeofSockaddrInet4); !tt.v6 && n != want {
			t.Errorf("length %d, want %d", n, want)
		}
		if got := b.addrAt(0).String(); got != tt.want {
			t.Errorf("round trip of %s = %s, want %s", tt.ap, got, tt.want)
		}
	}
	if _, ok := putSockaddr(new(unix.RawSockaddrInet6), netip.AddrPort{}, false); ok {
		t.Error("invalid address accepted")
	}
}
