package mesh

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

// fuzzSeeds are the checked-in seed corpora; TestWriteFuzzSeeds rewrites
// testdata/fuzz from them when MESH_WRITE_SEEDS=1.
func fuzzSeeds() map[string][][]byte {
	feat := (&features{Name: 0x0a0b0c0d0e0f, NickName: "host", UID: 1, ConnNonce: 2, DataPort: 6784,
		Extra: map[string]string{"k": "v"}}).encode()
	topo := encodeTopology([]peerEntry{
		{Name: 1, NickName: "a", UID: 1, Version: 2, Conns: []connEntry{
			{Peer: 2, Addr: netip.MustParseAddrPort("192.0.2.1:6783"), Outbound: true, Established: true},
			{Peer: 3, Addr: netip.MustParseAddrPort("[2001:db8::1]:1")},
		}},
		{Name: 2, UID: 5, Version: 1},
	})
	frames := func(msgs ...[]byte) []byte {
		var buf bytes.Buffer
		ch := newPlainChannel(&buf, 0)
		for _, m := range msgs {
			ch.WriteMsg(m)
		}
		return buf.Bytes()
	}
	gossip := encodeGossip(tagGossip, "dns", 1, [][]byte{[]byte("a"), []byte("bc")})
	bcast := encodeGossip(tagGossipBroadcast, "ipam", 2, [][]byte{[]byte("x")})
	uni := append([]byte{tagGossipUnicast, 3, 'd', 'n', 's', 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2}, "hello"...)
	return map[string][][]byte{
		"FuzzHandshake": {
			append(header{1, 1, 0}.encode(), frames(feat)...),
			append(header{1, 2, flagPassword}.encode(), frames(feat)...),
			[]byte("weave\x01\x02"),
		},
		"FuzzDecodeTopology": {topo, encodeTopology(nil), {tagTopology, 0, 1}},
		"FuzzReadMsg": {
			frames([]byte{tagHeartbeat}, topo, gossip, bcast, uni, []byte{tagOverlayControl, 1, 2}, []byte{tagClose, 'b', 'y', 'e'}),
			{0, 0, 0, 0},
			{0xff, 0xff, 0xff, 0xff},
		},
	}
}

func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("MESH_WRITE_SEEDS") != "1" {
		t.Skip("set MESH_WRITE_SEEDS=1 to rewrite testdata/fuzz")
	}
	for name, seeds := range fuzzSeeds() {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// FuzzHandshake feeds arbitrary bytes to the header and features
// decoders as the handshake reads them.
func FuzzHandshake(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < headerLen {
			decodeHeader(b)
			return
		}
		h, err := decodeHeader(b[:headerLen])
		if err != nil {
			return
		}
		negotiate(header{ProtocolMinVersion, ProtocolMaxVersion, 0}, h)
		ch := newPlainChannel(struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(b[headerLen:]), io.Discard}, 1<<16)
		msg, err := ch.ReadMsg()
		if err != nil {
			return
		}
		fe, err := decodeFeatures(msg)
		if err != nil {
			return
		}
		again, err := decodeFeatures(fe.encode())
		if err != nil || again.Name != fe.Name || again.UID != fe.UID || again.NickName != fe.NickName {
			t.Fatalf("features do not round-trip: %+v vs %+v (%v)", fe, again, err)
		}
	})
}

// FuzzDecodeTopology checks that decoding never panics and that what
// decodes re-encodes to the same entries.
func FuzzDecodeTopology(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := decodeTopology(b)
		if err != nil {
			return
		}
		again, err := decodeTopology(encodeTopology(entries))
		if err != nil || len(again) != len(entries) {
			t.Fatalf("round trip: %v", err)
		}
		self := peerEntry{Name: 0xffffff, UID: 1}
		topo := newTopology(&self)
		topo.merge(entries)
		topo.gc()
		computeRoutes(self.Name, topo.peers, true)
	})
}

// FuzzReadMsg reads framed messages and decodes each by its tag.
func FuzzReadMsg(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		ch := newPlainChannel(struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(b), io.Discard}, 1<<16)
		for {
			msg, err := ch.ReadMsg()
			if err != nil {
				return
			}
			switch msg[0] {
			case tagFeatures:
				decodeFeatures(msg)
			case tagTopology:
				decodeTopology(msg)
			case tagGossip, tagGossipUnicast, tagGossipBroadcast:
				decodeGossip(msg)
			}
		}
	})
}
