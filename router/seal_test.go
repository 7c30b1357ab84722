package router

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/weftnet/weft/secure"
)

// Deterministic tests of sealed datagrams: the pipes of path_test.go and
// conn_test.go with key rings put on the connections before anything is
// sent.

// linkedRings returns two connected key rings for suite.
func linkedRings(t testing.TB, suite secure.Suite, p secure.RekeyPolicy, now time.Time) (*secure.KeyRing, *secure.KeyRing) {
	t.Helper()
	a, b, err := secure.NewLinkedKeyRings(suite, p, now)
	if err != nil {
		t.Fatal(err)
	}
	return a, b
}

// newSealedPathPair is newPathPair with data keys on both connections,
// MACs taught so that frames from ..:0a to ..:0b go a → b.
func newSealedPathPair(t testing.TB, suite secure.Suite) *pathPair {
	t.Helper()
	p := newPathPair(t)
	ka, kb := linkedRings(t, suite, secure.RekeyPolicy{}, time.Now())
	(*p.a.conns.Load())[peerB].keys = ka
	(*p.b.conns.Load())[peerA].keys = kb
	p.a.macs.learn(macKey([]byte{2, 0, 0, 0, 0, 0x0b}), peerB, now())
	p.b.macs.learn(macKey([]byte{2, 0, 0, 0, 0, 0x0b}), peerB, now())
	return p
}

// marker is a plaintext pattern put into frames; it must never show on
// the wire of a sealed connection.
var marker = []byte("WEFT-PLAINTEXT-MARKER")

func markedFrame(n int) []byte {
	f := ethFrame(0x0b, 0x0a, n)
	copy(f[EthernetHeaderLen+10:], marker)
	return f
}

// sendOnly switches n frames at a and returns how many datagrams wait at b.
func (p *pathPair) sendOnly(n int) int {
	p.trA.n = 0
	p.tapA.handle(n)
	return p.trA.n
}

func TestSealedRoundTrip(t *testing.T) {
	for _, suite := range []secure.Suite{secure.SuiteChaCha20Poly1305, secure.SuiteAES256GCM} {
		t.Run(suite.String(), func(t *testing.T) {
			p := newSealedPathPair(t, suite)
			f := markedFrame(1000)
			p.fill(32, f)
			n := p.sendOnly(32)
			if n == 0 {
				t.Fatal("nothing sent")
			}
			for i := range n {
				b := p.udpB.dgrams[i].Buf[:p.udpB.dgrams[i].N]
				if b[2]&FlagSealed == 0 || bytes.Contains(b, marker) || bytes.Contains(b, f[EthernetHeaderLen:100]) {
					t.Fatalf("datagram %d not sealed: flags %#x", i, b[2])
				}
				if bytes.Equal(b[len(b)-TagLen:], make([]byte, TagLen)) {
					t.Fatalf("datagram %d has a zero tag", i)
				}
			}
			p.udpB.handle(n)
			if p.devB.frames != 32 || !bytes.Equal(p.devB.last, f) {
				t.Fatalf("b delivered %d frames, last equal %v", p.devB.frames, bytes.Equal(p.devB.last, f))
			}
			if st := p.b.Stats(); st.DropAuthFailed+st.DropReplay+st.DropUnsealed+st.DropUnknownKey+st.DropBadDatagram != 0 {
				t.Fatalf("b drops: %+v", st)
			}
			if st := (*p.a.conns.Load())[peerB].Status(); !st.Encrypted {
				t.Fatalf("status %+v", st)
			}
		})
	}
}

func TestSealedRoundTripNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	p := newSealedPathPair(t, secure.SuiteChaCha20Poly1305)
	p.fill(32, ethFrame(0x0b, 0x0a, 1400))
	p.roundTrip(32) // warm up
	if allocs := testing.AllocsPerRun(50, func() { p.roundTrip(32) }); allocs != 0 {
		t.Fatalf("sealed round trip of 32 frames allocates %v times", allocs)
	}
	if p.devB.frames != 51*32+32 {
		t.Fatalf("b delivered %d frames", p.devB.frames)
	}
}

// TestSealedDrops delivers altered copies of a sealed datagram: each is
// dropped, counted by its reason, and delivers nothing.
func TestSealedDrops(t *testing.T) {
	p := newSealedPathPair(t, secure.SuiteChaCha20Poly1305)
	p.fill(1, markedFrame(200))
	if p.sendOnly(1) != 1 {
		t.Fatal("want one datagram")
	}
	d := &p.udpB.dgrams[0]
	orig := bytes.Clone(d.Buf[:d.N])
	deliver := func(b []byte) {
		d.N = copy(d.Buf, b)
		p.udpB.handle(1)
	}
	alter := func(f func(b []byte)) []byte {
		b := bytes.Clone(orig)
		f(b)
		return b
	}
	plain := alter(func(b []byte) { b[2] &^= FlagSealed })
	tests := []struct {
		name string
		b    []byte
		stat func(Stats) uint64
	}{
		{"body bit flipped", alter(func(b []byte) { b[HeaderLen+5] ^= 1 }), func(s Stats) uint64 { return s.DropAuthFailed }},
		{"tag bit flipped", alter(func(b []byte) { b[len(b)-1] ^= 0x80 }), func(s Stats) uint64 { return s.DropAuthFailed }},
		{"type changed", alter(func(b []byte) { b[1] = TypeHeartbeat }), func(s Stats) uint64 { return s.DropAuthFailed }},
		{"counter changed", alter(func(b []byte) { b[19]++ }), func(s Stats) uint64 { return s.DropAuthFailed }},
		{"truncated", orig[:len(orig)-1], func(s Stats) uint64 { return s.DropAuthFailed }},
		{"sealed flag stripped", plain, func(s Stats) uint64 { return s.DropUnsealed }},
		{"unknown key id", alter(func(b []byte) { b[3] = 7 }), func(s Stats) uint64 { return s.DropUnknownKey }},
		{"original", orig, nil},
		{"replayed", orig, func(s Stats) uint64 { return s.DropReplay }},
	}
	for _, tc := range tests {
		before, frames := p.b.Stats(), p.devB.frames
		deliver(tc.b)
		after := p.b.Stats()
		if tc.stat == nil {
			if p.devB.frames != frames+1 {
				t.Fatalf("%s: not delivered (stats %+v)", tc.name, after)
			}
			continue
		}
		if got := tc.stat(after) - tc.stat(before); got != 1 || p.devB.frames != frames {
			t.Fatalf("%s: counter went up by %d, %d frames delivered; stats %+v", tc.name, got, p.devB.frames-frames, after)
		}
	}
}

// TestPlainAndSealedMismatch: a connection with keys drops plain
// datagrams; one without drops sealed ones.
func TestPlainAndSealedMismatch(t *testing.T) {
	p := newPathPair(t)
	p.b.macs.learn(macKey([]byte{2, 0, 0, 0, 0, 0x0b}), peerB, now())
	p.a.macs.learn(macKey([]byte{2, 0, 0, 0, 0, 0x0b}), peerB, now())
	ka, _ := linkedRings(t, secure.SuiteChaCha20Poly1305, secure.RekeyPolicy{}, time.Now())
	cb := (*p.b.conns.Load())[peerA]
	cb.keys = ka // b expects sealed datagrams, a sends plain ones
	p.fill(4, ethFrame(0x0b, 0x0a, 100))
	p.roundTrip(4)
	if st := p.b.Stats(); st.DropUnsealed != 1 || p.devB.frames != 0 {
		t.Fatalf("plain datagram to a sealed connection: stats %+v, %d frames", st, p.devB.frames)
	}
	cb.keys = nil
	(*p.a.conns.Load())[peerB].keys = ka // a seals, b expects plain
	p.roundTrip(4)
	if st := p.b.Stats(); st.DropUnsealed != 2 || p.devB.frames != 0 {
		t.Fatalf("sealed datagram to a plain connection: stats %+v, %d frames", st, p.devB.frames)
	}
}

// TestUnknownConnectionNotSent: a datagram whose connection the sender
// does not know is dropped and counted rather than sent unsealed.
func TestUnknownConnectionNotSent(t *testing.T) {
	p := newPathPair(t)
	ka, _ := linkedRings(t, secure.SuiteChaCha20Poly1305, secure.RekeyPolicy{}, time.Now())
	(*p.a.conns.Load())[peerB].keys = ka
	s := newSender(p.a, p.a.tapStats, 0)
	c := (*p.a.conns.Load())[peerB]
	buf, i := s.control(c, *c.addr.Load())
	s.commit(i, putHeartbeat(buf, p.a.self, 1, c.uid))
	s.seal.conns[i] = nil // connection unknown: must not go out unsealed
	p.trA.to = nil
	p.trA.sent = 0
	s.flush()
	if st := p.a.Stats(); st.DropSealFailed != 1 || p.trA.sent != 0 {
		t.Fatalf("stats %+v, sent %d", st, p.trA.sent)
	}
}

// stepChecked is steppedPair.step that checks every datagram on the wire.
func (s *steppedPair) stepChecked(d time.Duration, check func(b []byte)) {
	s.clk.t = s.clk.t.Add(d)
	now := s.clk.t.UnixNano()
	s.ta.tick(now)
	s.tb.tick(now)
	for s.pab.n > 0 || s.pba.n > 0 {
		for _, x := range []struct {
			p *linkPipe
			u *udpReader
		}{{s.pab, s.udpB}, {s.pba, s.udpA}} {
			if n := x.p.n; n > 0 {
				for i := range n {
					check(x.u.dgrams[i].Buf[:x.u.dgrams[i].N])
				}
				x.p.n = 0
				x.u.handle(n)
			}
		}
	}
}

func TestSealedConnEstablishesAndProbes(t *testing.T) {
	s := newSteppedPair(t)
	// Keys live 3s, less than the 10s between heartbeats once established.
	ka, kb := linkedRings(t, secure.SuiteAES256GCM, secure.RekeyPolicy{After: 3 * time.Second}, s.clk.t)
	s.ab.keys, s.ba.keys = ka, kb
	s.pab.limit, s.pba.limit = 1200, 1200
	types := map[uint8]int{}
	check := func(b []byte) {
		if b[2]&FlagSealed == 0 {
			t.Fatalf("unsealed datagram of type %d", b[1])
		}
		types[b[1]]++
	}
	for range 200 {
		s.stepChecked(100*time.Millisecond, check)
	}
	if !isClosed(s.ab.Established()) || !isClosed(s.ba.Established()) {
		t.Fatalf("not established: %+v %+v", s.ab.Status(), s.ba.Status())
	}
	want := 1200 - FrameOverhead
	for _, c := range []*conn{s.ab, s.ba} {
		if st := c.Status(); st.MTU != want || !st.Encrypted || st.Reason != "" {
			t.Fatalf("status %+v, want MTU %d, encrypted", st, want)
		}
	}
	if types[TypeHeartbeat] == 0 || types[TypeProbe] == 0 || types[TypeProbeAck] == 0 {
		t.Fatalf("datagram types seen: %v", types)
	}
	// A minute more without data: Tick rekeys every 3s, each new epoch
	// gets a heartbeat at once, and the receivers follow.
	for range 60 {
		s.stepChecked(time.Second, check)
	}
	if st := ka.Status(); st.SendEpoch < 20 || kb.Status().RecvEpoch != st.SendEpoch {
		t.Fatalf("a's ring %+v, b's %+v", st, kb.Status())
	}
	for _, c := range []*conn{s.ab, s.ba} {
		if st := c.Status(); st.State != "established" {
			t.Fatalf("status after rekeys %+v", st)
		}
	}
	for _, r := range []*Router{s.a, s.b} {
		if st := r.Stats(); st.DropAuthFailed+st.DropUnsealed+st.DropUnknownKey+st.DropReplay+st.DropSealFailed != 0 {
			t.Fatalf("drops %+v", st)
		}
	}
}

func TestMixedKeysNeverEstablish(t *testing.T) {
	s := newSteppedPair(t)
	ka, _ := linkedRings(t, secure.SuiteChaCha20Poly1305, secure.RekeyPolicy{}, s.clk.t)
	s.ab.keys = ka // b has no keys
	for range 30 {
		s.step(100 * time.Millisecond)
	}
	if isClosed(s.ab.Established()) || isClosed(s.ba.Established()) {
		t.Fatalf("established with keys on one side only: %+v %+v", s.ab.Status(), s.ba.Status())
	}
	if s.b.Stats().DropUnsealed == 0 {
		t.Fatalf("b did not count sealed heartbeats: %+v", s.b.Stats())
	}
	if s.ab.Status().Encrypted == s.ba.Status().Encrypted {
		t.Fatal("both ends report the same encryption")
	}
}

// BenchmarkSealedRoundTrip is BenchmarkRoundTrip over a sealed
// connection: switch 32 frames at a, seal, open and deliver them at b.
func BenchmarkSealedRoundTrip(b *testing.B) {
	for _, suite := range []secure.Suite{secure.SuiteChaCha20Poly1305, secure.SuiteAES256GCM} {
		for _, size := range []int{100, 1400} {
			b.Run(fmt.Sprintf("%v/%d", suite, size), func(b *testing.B) {
				p := newSealedPathPair(b, suite)
				p.fill(32, ethFrame(0x0b, 0x0a, size))
				p.roundTrip(32) // warm up: buffers grow on first use
				b.ReportAllocs()
				b.SetBytes(int64(32 * size))
				for b.Loop() {
					p.roundTrip(32)
				}
			})
		}
	}
}

// sealedSeed returns a sealed frames datagram from peerA, sealed under a
// ring unrelated to the fuzzed router's (it fails authentication).
func sealedSeed(t testing.TB) []byte {
	ka, _ := linkedRings(t, secure.SuiteChaCha20Poly1305, secure.RekeyPolicy{}, time.Now())
	b := encodeFrames(peerA, Record{Type: RecordFrame, Src: peerA, Dst: peerB, Frame: ethFrame(0x0b, 0x0a, 100)})
	if err := sealDatagram(ka, b, len(b)-TagLen, time.Now()); err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzReceiveSealed runs arbitrary datagrams through the receive path of
// a connection with data keys: opening must never panic, and nothing that
// fails to open may reach the device.
func FuzzReceiveSealed(f *testing.F) {
	f.Add(sealedSeed(f))
	hb := make([]byte, 64)
	f.Add(hb[:putHeartbeat(hb, peerA, 1, 1)])
	p := newSealedPathPair(f, secure.SuiteChaCha20Poly1305)
	p.trB.to = nil
	// One genuine datagram: the fuzzer may mutate it.
	p.fill(1, ethFrame(0x0b, 0x0a, 100))
	p.sendOnly(1)
	f.Add(bytes.Clone(p.udpB.dgrams[0].Buf[:p.udpB.dgrams[0].N]))
	f.Fuzz(func(t *testing.T, b []byte) {
		d := &p.udpB.dgrams[0]
		d.N = copy(d.Buf, b)
		frames := p.devB.frames
		before := p.b.Stats()
		p.udpB.handle(1)
		if p.devB.frames != frames && (len(b) < DatagramOverhead || b[2]&FlagSealed == 0) {
			t.Fatalf("plain datagram delivered on a sealed connection (stats %+v)", before)
		}
		if p.devB.frames != frames && p.b.Stats().RecordsIn == before.RecordsIn {
			t.Fatal("frames delivered without records received")
		}
	})
}

// TestSealedTrain: a train of datagrams in one buffer (Datagram.Segment)
// is sealed datagram by datagram, and each opens on its own.
func TestSealedTrain(t *testing.T) {
	p := newSealedPathPair(t, secure.SuiteChaCha20Poly1305)
	c := (*p.a.conns.Load())[peerB]
	s := newSender(p.a, p.a.tapStats, 0)
	const seg = 300
	sizes := []int{seg, seg, 150} // whole datagrams, the last shorter
	frames := make([][]byte, len(sizes))
	buf, idx := s.control(c, *c.addr.Load())
	pos := 0
	for k, size := range sizes {
		frames[k] = markedFrame(size - DatagramOverhead - RecordHeaderLen)
		PutHeader(buf[pos:], Header{Type: TypeFrames, Sender: peerA, Counter: uint64(k)})
		n := HeaderLen + PutRecord(buf[pos+HeaderLen:], RecordFrame, peerA, peerB, frames[k])
		PutTag(buf[pos+n:])
		pos += n + TagLen
	}
	s.commit(idx, pos)
	s.dgrams[idx].Segment = seg
	p.trA.n = 0
	s.flush()
	if p.trA.n != 1 {
		t.Fatalf("%d buffers sent, want one train", p.trA.n)
	}
	train := bytes.Clone(p.udpB.dgrams[0].Buf[:p.udpB.dgrams[0].N])
	if len(train) != pos || bytes.Contains(train, marker) {
		t.Fatalf("train of %d bytes (want %d), marker visible %v", len(train), pos, bytes.Contains(train, marker))
	}
	for k, off := 0, 0; k < len(sizes); k++ {
		d := &p.udpB.dgrams[k]
		d.N = copy(d.Buf, train[off:off+sizes[k]])
		if d.Buf[2]&FlagSealed == 0 {
			t.Fatalf("datagram %d of the train not sealed", k)
		}
		off += sizes[k]
	}
	p.udpB.handle(len(sizes))
	if p.devB.frames != len(sizes) || !bytes.Equal(p.devB.last, frames[len(frames)-1]) {
		t.Fatalf("b delivered %d frames; stats %+v", p.devB.frames, p.b.Stats())
	}
}
