package mesh

import (
	"errors"
	"fmt"
	"testing"

	"github.com/weftnet/weft/secure"
)

func TestRefusalCountsByKind(t *testing.T) {
	for _, tc := range []struct {
		err  error
		kind string
	}{
		{fmt.Errorf("handshake: %w", secure.ErrAuthentication), RefusalPassword},
		{secure.ErrPeerRequiresPassword, RefusalPassword},
		{secure.ErrPeerHasNoPassword, RefusalPassword},
		{secure.ErrUnsupportedVersion, RefusalVersion},
		{ErrVersionMismatch, RefusalVersion},
		{&peerRefusal{is: ErrDuplicateName, text: "duplicate peer name x"}, RefusalDuplicateName},
		{&incompatibleError{err: errors.New("no")}, RefusalIncompatible},
		{secure.ErrMalformedHandshake, RefusalMalformed},
	} {
		var r refusalCounts
		r.count(tc.err)
		for i, k := range refusalKinds {
			want := uint64(0)
			if k == tc.kind {
				want = 1
			}
			if got := r[i].Load(); got != want {
				t.Errorf("%v: %s counted %d, want %d", tc.err, k, got, want)
			}
		}
	}
}

func TestTrafficCountsByKind(t *testing.T) {
	var tc trafficCounts
	tc.count(&tc.sent, []byte{tagTopology, 1, 2, 3})
	tc.count(&tc.sent, []byte{tagGossip, 1})
	tc.count(&tc.sent, []byte{tagGossipBroadcast, 1, 2})
	tc.count(&tc.sent, []byte{200, 1})
	tc.count(&tc.sent, nil)
	tc.count(&tc.received, []byte{tagHeartbeat})
	got := controlBytes(&tc.sent)
	want := map[string]uint64{"topology": 4, "gossip": 5, "other": 2, "heartbeat": 0, "overlay": 0}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("sent %s: %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
	if r := controlBytes(&tc.received); r["heartbeat"] != 1 {
		t.Errorf("received: %v", r)
	}
}
