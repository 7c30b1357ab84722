package mesh

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/weftnet/weft/secure"
)

// fuzzSeeds are the checked-in seed corpora; TestWriteFuzzSeeds rewrites
// testdata/fuzz from them when MESH_WRITE_SEEDS=1.
func fuzzSeeds() map[string][][]byte {
	initiator := testIdentity(0xf1)
	feat := features{NickName: "host", UID: 1, ConnNonce: 2, DataPort: 6784, Extra: map[string]string{"k": "v"}}
	topo := encodeTopologyMessage([]peerEntry{
		signed(1, peerEntry{NickName: "a", UID: 1, Version: 2, Conns: []connEntry{
			{Peer: 2, Addr: netip.MustParseAddrPort("192.0.2.1:6783"), Outbound: true, Established: true},
			{Peer: 3, Addr: netip.MustParseAddrPort("[2001:db8::1]:1")},
		}}),
		signed(2, peerEntry{UID: 5, Version: 1}),
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
	bcast := signGossip(testIdentity(2), encodeGossip(tagGossipBroadcast, "ipam", testName(2), [][]byte{[]byte("x")}))
	uni := signGossip(testIdentity(1), putNames([]byte{tagGossipUnicast, 3, 'd', 'n', 's'}, testName(1), testName(2), "hello"))
	return map[string][][]byte{
		"FuzzHandshake": {
			plainStream(initiator, feat, frames, []byte{tagHeartbeat}, topo),
			append(header{2, 2, flagPassword}.encode(), frames(encodeFeatures(plainFeatures(initiator, feat)))...),
			encryptedStream(initiator, feat, [][]byte{{tagHeartbeat}, topo, gossip}),
			[]byte("weave\x01\x02"),
			append(header{2, 2, 0}.encode(), stallingFrame(DefaultMaxMessageSize, 100)...), // features claim beyond maxFeaturesLen
		},
		"FuzzDecodeTopology": {topo, encodeTopologyMessage(nil), {tagTopology, 0, 1}},
		"FuzzClosedByPeer": {
			[]byte("duplicate peer name 00:00:00:00:00:01: already connected to \"a\" at 192.0.2.1:6783; refusing \"b\" at 192.0.2.2:4000"),
			[]byte("peer forgotten"), {}, {0xff, 0xfe, '\n', 0}, bytes.Repeat([]byte("\u00e9"), 200),
		},
		"FuzzReadMsg": {
			frames([]byte{tagHeartbeat}, topo, gossip, bcast, uni, []byte{tagOverlayControl, 1, 2}, []byte{tagClose, 'b', 'y', 'e'}),
			{0, 0, 0, 0},
			{0xff, 0xff, 0xff, 0xff},
			frames(append([]byte{tagOverlayControl}, make([]byte, 40000)...), []byte{tagHeartbeat}), // read in growing steps
			stallingFrame(60000, 20000), // claimed, partly sent
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

// fuzzConn is a net.Conn whose peer's bytes come from r; writes vanish.
type fuzzConn struct {
	io.Reader
	io.Writer
}

func (fuzzConn) Close() error                     { return nil }
func (fuzzConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (fuzzConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (fuzzConn) SetDeadline(time.Time) error      { return nil }
func (fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (fuzzConn) SetWriteDeadline(time.Time) error { return nil }

// fuzzResponder is the accepting end FuzzHandshake runs: deterministic
// (fixed features, key, suite and ephemeral key source), so that a seed
// recorded from a real initiator (encryptedStream) passes the encrypted
// handshake and reaches the sealed messages.
func fuzzResponder(psk *secure.PSK) handshakeConfig {
	return handshakeConfig{
		local:    features{NickName: "fuzz", UID: 1, ConnNonce: 1, DataPort: 1},
		identity: testIdentity(0xf0),
		header:   header{minVersion: ProtocolMinVersion, maxVersion: ProtocolMaxVersion},
		psk:      psk, timeout: time.Second, maxMsg: 1 << 16,
		suite: secure.SuiteChaCha20Poly1305, rand: rand.NewChaCha8([32]byte{2}),
	}
}

// fuzzPSK is the fixed key of FuzzHandshake's password runs.
func fuzzPSK() *secure.PSK {
	p, _ := secure.NewPSK(bytes.Repeat([]byte{0x5a}, secure.PSKLen))
	return p
}

// teeConn records what is written to a net.Conn.
type teeConn struct {
	net.Conn
	rec *bytes.Buffer
}

func (c teeConn) Write(b []byte) (int, error) {
	c.rec.Write(b)
	return c.Conn.Write(b)
}

func encodeFeatures(f features) []byte { return f.encode() }

// putNames appends src, dst and a payload, as in a gossip unicast.
func putNames(b []byte, src, dst PeerName, payload string) []byte {
	e := encoder{b: b}
	e.name(src)
	e.name(dst)
	return append(e.b, payload...)
}

// plainFeatures is f as id sends it.
func plainFeatures(id *Identity, f features) features {
	f.Name, f.Key = id.Name(), id.Public()
	return f
}

// plainStream is what an initiator with identity id and features f sends
// to fuzzResponder without a password: header, features, identity proof,
// then msgs.
func plainStream(id *Identity, f features, frames func(...[]byte) []byte, msgs ...[]byte) []byte {
	f = plainFeatures(id, f)
	resp := fuzzResponder(nil)
	remote := plainFeatures(resp.identity, resp.local)
	proof := append([]byte{tagIdentityProof}, id.sign(sigContextProof, proofTranscript(true, f, remote))...)
	return append(header{2, 2, 0}.encode(), frames(append([][]byte{encodeFeatures(f), proof}, msgs...)...)...)
}

// encryptedStream records what an initiator with identity id and features
// f sends to fuzzResponder: header, handshake messages 1 and 3, identity
// proof, then msgs sealed.
func encryptedStream(id *Identity, f features, msgs [][]byte) []byte {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	ci, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		panic(err)
	}
	defer ci.Close()
	cr, err := ln.Accept()
	if err != nil {
		panic(err)
	}
	defer cr.Close()
	var rec bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := handshake(cr, fuzzResponder(fuzzPSK())); err != nil {
			cr.Close()
			return
		}
		io.Copy(io.Discard, cr)
	}()
	res, err := handshake(teeConn{ci, &rec}, handshakeConfig{
		local: f, identity: id, header: header{2, 2, 0}, psk: fuzzPSK(), initiator: true, timeout: time.Second,
		suite: secure.SuiteChaCha20Poly1305, rand: rand.NewChaCha8([32]byte{1}),
	})
	if err != nil {
		panic(err)
	}
	for _, m := range msgs {
		res.ch.WriteMsg(m)
	}
	ci.(*net.TCPConn).CloseWrite()
	<-done
	return rec.Bytes()
}

// FuzzHandshake runs the accepting end of a handshake against arbitrary
// bytes from the peer, without and with a password, then reads and
// decodes messages as a connection does.
func FuzzHandshake(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, psk := range []*secure.PSK{nil, fuzzPSK()} {
			res, err := handshake(fuzzConn{bytes.NewReader(b), io.Discard}, fuzzResponder(psk))
			if err != nil {
				continue
			}
			again, err := decodeFeatures(res.remote.encode())
			if err != nil || again.Name != res.remote.Name || again.UID != res.remote.UID || again.NickName != res.remote.NickName {
				t.Fatalf("features do not round-trip: %+v vs %+v (%v)", res.remote, again, err)
			}
			if res.encrypted != (psk != nil) {
				t.Fatalf("encrypted = %v with psk %v", res.encrypted, psk != nil)
			}
			for {
				msg, err := res.ch.ReadMsg()
				if err != nil {
					break
				}
				if len(msg) == 0 {
					t.Fatal("empty message")
				}
				decodeByTag(msg)
			}
		}
	})
}

// decodeByTag decodes a message as handleMsg would.
func decodeByTag(msg []byte) {
	switch msg[0] {
	case tagFeatures:
		decodeFeatures(msg)
	case tagTopology:
		decodeTopology(msg)
	case tagGossip, tagGossipUnicast, tagGossipBroadcast:
		decodeGossip(msg)
	}
}

// FuzzDecodeTopology checks that decoding never panics and that what
// decodes re-encodes to the same entries.
func FuzzDecodeTopology(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := decodeTopology(b)
		if err != nil {
			return
		}
		again, err := decodeTopology(encodeTopologyMessage(entries))
		if err != nil || len(again) != len(entries) {
			t.Fatalf("round trip: %v", err)
		}
		self := signed(0xf0, peerEntry{UID: 1})
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
			decodeByTag(msg)
		}
	})
}

// TestEncryptedSeedReachesSealedMessages checks that the recorded
// encrypted seed gets through FuzzHandshake's handshake, so the fuzzer
// starts from inside the sealed channel.
func TestEncryptedSeedReachesSealedMessages(t *testing.T) {
	feat := features{NickName: "seed", UID: 3, ConnNonce: 4, DataPort: 5}
	stream := encryptedStream(testIdentity(7), feat, [][]byte{{tagHeartbeat}, {tagClose, 'x'}})
	res, err := handshake(fuzzConn{bytes.NewReader(stream), io.Discard}, fuzzResponder(fuzzPSK()))
	if err != nil {
		t.Fatal(err)
	}
	if res.remote.Name != testName(7) || !res.encrypted || res.keys == nil {
		t.Fatalf("result %+v", res)
	}
	for _, want := range []string{"\x01", "\x02x"} {
		msg, err := res.ch.ReadMsg()
		if err != nil || string(msg) != want {
			t.Fatalf("read %q, %v; want %q", msg, err, want)
		}
	}
	// One flipped bit in the last record fails it.
	stream[len(stream)-1] ^= 1
	res, err = handshake(fuzzConn{bytes.NewReader(stream), io.Discard}, fuzzResponder(fuzzPSK()))
	if err != nil {
		t.Fatal(err)
	}
	res.ch.ReadMsg()
	if _, err := res.ch.ReadMsg(); !errors.Is(err, secure.ErrControlAuthentication) {
		t.Fatalf("tampered record: %v", err)
	}
}
