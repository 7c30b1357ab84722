package secure

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
)

func TestTrustedSubnets(t *testing.T) {
	ts, err := ParseTrustedSubnets("10.0.0.0/8, 192.168.1.7/24,fd00::/8,")
	if err != nil {
		t.Fatal(err)
	}
	if got := ts.String(); got != "10.0.0.0/8,192.168.1.0/24,fd00::/8" {
		t.Errorf("String = %q", got)
	}
	tests := []struct {
		addr string
		want bool
	}{
		{"10.1.2.3", true},
		{"::ffff:10.1.2.3", true},
		{"192.168.1.200", true},
		{"192.168.2.1", false},
		{"fd12::1", true},
		{"2001:db8::1", false},
	}
	for _, tt := range tests {
		if got := ts.Contains(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Contains(%s) = %v, want %v", tt.addr, got, tt.want)
		}
	}
	if _, err := ParseTrustedSubnets("10.0.0.0/33"); err == nil {
		t.Error("bad CIDR accepted")
	}
	if empty, _ := ParseTrustedSubnets(""); empty.Contains(netip.MustParseAddr("10.0.0.1")) {
		t.Error("empty list trusts an address")
	}
}

func TestEncryptData(t *testing.T) {
	tests := []struct {
		password, weTrust, theyTrust, want bool
	}{
		{false, false, false, false},
		{false, true, true, false},
		{true, false, false, true},
		{true, true, false, true},
		{true, false, true, true},
		{true, true, true, false},
	}
	for _, tt := range tests {
		if got := EncryptData(tt.password, tt.weTrust, tt.theyTrust); got != tt.want {
			t.Errorf("EncryptData(%v, %v, %v) = %v", tt.password, tt.weTrust, tt.theyTrust, got)
		}
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{fmt.Errorf("handshake: read message 1: %w", ErrAuthentication), "authentication failed: password mismatch"},
		{ErrPeerHasNoPassword, "authentication failed: peer has no password, we require one"},
		{fmt.Errorf("x: %w", ErrPeerRequiresPassword), "authentication failed: peer requires a password, we have none"},
		{errors.New("connection reset"), "connection reset"},
	}
	for _, tt := range tests {
		if got := Reason(tt.err); got != tt.want {
			t.Errorf("Reason(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
