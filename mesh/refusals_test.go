package mesh

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/weftnet/weft/secure"
)

func TestRefusalsBoundedAndExpire(t *testing.T) {
	n, err := NewNode(testConfig(1, newFakeOverlay()))
	if err != nil {
		t.Fatal(err)
	}
	for i := range maxRefusals + 8 {
		n.noteRefusal(netip.MustParseAddrPort(fmt.Sprintf("192.0.2.%d:4000", i+1)), "r")
	}
	// A second attempt from a known IP (another port) replaces its entry.
	n.noteRefusal(netip.MustParseAddrPort("192.0.2.40:5000"), "again")
	n.mu.Lock()
	got := n.refusalsLocked(time.Now())
	if len(got) != maxRefusals {
		t.Fatalf("%d refusals kept, want %d", len(got), maxRefusals)
	}
	if last := got[len(got)-1]; last.Address != "192.0.2.40:5000" || last.Reason != "again" || last.State != StateFailed || last.Outbound {
		t.Fatalf("last refusal %+v", last)
	}
	n.forgetRefusalLocked(netip.MustParseAddrPort("192.0.2.40:1"))
	if got := n.refusalsLocked(time.Now()); len(got) != maxRefusals-1 {
		t.Fatalf("%d refusals after forget", len(got))
	}
	if got := n.refusalsLocked(time.Now().Add(n.refusalTTL() + time.Second)); len(got) != 0 {
		t.Fatalf("%d refusals after expiry", len(got))
	}
	n.mu.Unlock()
}

func TestIsRefusal(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("encrypted handshake: %w", secure.ErrAuthentication), true},
		{fmt.Errorf("handshake: %w", ErrPeerUsesPassword), true},
		{fmt.Errorf("handshake: %w", ErrWeUsePassword), true},
		{fmt.Errorf("handshake: %w: 1..1", ErrVersionMismatch), true},
		{fmt.Errorf("handshake: %w", ErrNotWeft), false},
		{errors.New("handshake: read header: EOF"), false},
		{nil, false},
	} {
		if got := isRefusal(tc.err); got != tc.want {
			t.Errorf("isRefusal(%v) = %v", tc.err, got)
		}
	}
}
