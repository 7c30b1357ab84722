package secure

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestHandshakeEqualPasswords(t *testing.T) {
	ic, rc := cfgPair("s3cret", "s3cret")
	is, rs, ierr, rerr, msgs := handshake(t, ic, rc, nil)
	if ierr != nil || rerr != nil {
		t.Fatalf("handshake failed: initiator %v, responder %v", ierr, rerr)
	}
	if got := string(is.RemotePayload()); got != "peer-r" {
		t.Errorf("initiator got payload %q, want peer-r", got)
	}
	if got := string(rs.RemotePayload()); got != "peer-i" {
		t.Errorf("responder got payload %q, want peer-i", got)
	}
	if !is.Initiator() || rs.Initiator() {
		t.Errorf("roles: initiator %v responder %v", is.Initiator(), rs.Initiator())
	}
	if is.Binding() != rs.Binding() {
		t.Error("handshake hashes differ")
	}
	if bytes.Contains(msgs.m1, []byte("peer-i")) || bytes.Contains(msgs.m2, []byte("peer-r")) {
		t.Error("identity payload visible on the wire")
	}
	if len(msgs.m3) != ConfirmLen {
		t.Errorf("message 3 is %d bytes, want %d", len(msgs.m3), ConfirmLen)
	}
	checkControl(t, is, rs)
	checkData(t, is, rs)
}

// checkControl sends control messages both ways.
func checkControl(t *testing.T, a, b *Session) {
	t.Helper()
	for _, p := range [][2]*Session{{a, b}, {b, a}} {
		s, o := p[0].ControlSealer(), p[1].ControlOpener()
		for i, msg := range []string{"hello", "", "gossip"} {
			rec, err := s.Seal(nil, []byte(msg))
			if err != nil {
				t.Fatalf("control seal %d: %v", i, err)
			}
			got, err := o.Open(nil, rec)
			if err != nil || string(got) != msg {
				t.Fatalf("control open %d: %q, %v; want %q", i, got, err, msg)
			}
		}
	}
}

// checkData seals one datagram each way through key rings from the sessions.
func checkData(t *testing.T, a, b *Session) {
	t.Helper()
	now := time.Unix(1000, 0)
	ra, err := a.NewKeyRing(RekeyPolicy{}, now)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.NewKeyRing(RekeyPolicy{}, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.NewKeyRing(RekeyPolicy{}, now); !errors.Is(err, ErrKeysTaken) {
		t.Errorf("second NewKeyRing: %v, want ErrKeysTaken", err)
	}
	roundTrip(t, ra, rb, now)
	roundTrip(t, rb, ra, now)
}

func roundTrip(t *testing.T, from, to *KeyRing, now time.Time) {
	t.Helper()
	hdr := []byte("hdr")
	buf := make([]byte, 5, 5+TagLen)
	copy(buf, "frame")
	s, c, err := from.Reserve(now)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal(c, hdr, buf)
	if err != nil {
		t.Fatal(err)
	}
	got, err := to.Open(s.KeyID(), c, hdr, sealed, now)
	if err != nil || string(got) != "frame" {
		t.Fatalf("open: %q, %v", got, err)
	}
}

func TestHandshakeWrongPassword(t *testing.T) {
	ic, rc := cfgPair("s3cret", "other")
	_, _, ierr, rerr, _ := handshake(t, ic, rc, nil)
	if !errors.Is(rerr, ErrAuthentication) {
		t.Errorf("responder: %v, want ErrAuthentication", rerr)
	}
	if !errors.Is(ierr, ErrAuthentication) {
		t.Errorf("initiator (after refusal): %v, want ErrAuthentication", ierr)
	}
	for _, err := range []error{ierr, rerr} {
		if got := Reason(err); got != "authentication failed: password mismatch" {
			t.Errorf("Reason = %q", got)
		}
	}
}

func TestHandshakeTampered(t *testing.T) {
	ic, rc := cfgPair("s3cret", "s3cret")
	_, _, _, _, clean := handshake(t, ic, rc, nil)
	lens := map[int]int{1: len(clean.m1), 2: len(clean.m2), 3: len(clean.m3)}
	for msg := 1; msg <= 3; msg++ {
		for pos := 0; pos < lens[msg]; pos++ {
			flip := func(i int, m []byte) []byte {
				if i != msg {
					return m
				}
				m = append([]byte(nil), m...)
				m[pos] ^= 0x20
				return m
			}
			_, _, ierr, rerr, _ := handshake(t, ic, rc, flip)
			err := ierr
			if msg != 2 {
				err = rerr
			}
			if !errors.Is(err, ErrAuthentication) {
				t.Fatalf("message %d byte %d flipped: %v, want ErrAuthentication", msg, pos, err)
			}
		}
		trunc := func(i int, m []byte) []byte {
			if i != msg {
				return m
			}
			return m[:len(m)-1]
		}
		_, _, ierr, rerr, _ := handshake(t, ic, rc, trunc)
		if ierr == nil && rerr == nil {
			t.Errorf("message %d truncated: handshake succeeded", msg)
		}
	}
}

func TestHandshakeHeadersBound(t *testing.T) {
	ic, rc := cfgPair("s3cret", "s3cret")
	rc.RemoteHeader = []byte("weft hdr I pw=0") // an attacker changed the initiator's header
	_, _, _, rerr, _ := handshake(t, ic, rc, nil)
	if !errors.Is(rerr, ErrAuthentication) {
		t.Errorf("changed header: %v, want ErrAuthentication", rerr)
	}
}

func TestSessionKeysDifferPerConnection(t *testing.T) {
	ic, rc := cfgPair("s3cret", "s3cret")
	is1, rs1, _, _, m1 := handshake(t, ic, rc, nil)
	is2, _, _, _, m2 := handshake(t, ic, rc, nil)
	if is1.Binding() == is2.Binding() {
		t.Fatal("two connections have the same handshake hash")
	}
	if bytes.Equal(m1.m1[:32], m2.m1[:32]) {
		t.Fatal("ephemeral key reused")
	}
	r1, _ := is1.ControlSealer().Seal(nil, []byte("same"))
	r2, _ := is2.ControlSealer().Seal(nil, []byte("same"))
	if bytes.Equal(r1, r2) {
		t.Error("control ciphertexts equal across connections")
	}
	if _, err := rs1.ControlOpener().Open(nil, r2); !errors.Is(err, ErrControlAuthentication) {
		t.Errorf("connection 1 opened connection 2's record: %v", err)
	}
	now := time.Unix(1, 0)
	a, _ := is2.NewKeyRing(RekeyPolicy{}, now)
	b, _ := rs1.NewKeyRing(RekeyPolicy{}, now)
	s, c, _ := a.Reserve(now)
	buf := make([]byte, 4, 4+TagLen)
	sealed, _ := s.Seal(c, nil, buf)
	if _, err := b.Open(s.KeyID(), c, nil, sealed, now); !errors.Is(err, ErrForged) {
		t.Errorf("connection 1 opened connection 2's datagram: %v", err)
	}
}

func TestHandshakeReplayedMessage1(t *testing.T) {
	ic, rc := cfgPair("s3cret", "s3cret")
	_, _, _, _, old := handshake(t, ic, rc, nil)
	// An attacker replays a recorded message 1 and 3 to a new responder.
	rh, err := NewResponder(rc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rh.Step(old.m1); err != nil {
		t.Fatalf("replayed message 1 is indistinguishable until message 3, got %v", err)
	}
	if rh.Session() != nil {
		t.Fatal("session available before key confirmation")
	}
	if _, err := rh.Step(old.m3); !errors.Is(err, ErrAuthentication) {
		t.Fatalf("replayed message 3: %v, want ErrAuthentication", err)
	}
}

func TestHandshakeStepOrder(t *testing.T) {
	ic, rc := cfgPair("s3cret", "s3cret")
	ih, _ := NewInitiator(ic)
	if _, err := ih.Step([]byte("x")); !errors.Is(err, ErrHandshakeState) {
		t.Errorf("initiator first step with input: %v", err)
	}
	rh, _ := NewResponder(rc)
	if _, err := rh.Step(nil); !errors.Is(err, ErrMalformedHandshake) {
		t.Errorf("responder step with nil: %v", err)
	}
	if _, err := rh.Step(nil); !errors.Is(err, ErrHandshakeState) {
		t.Errorf("step after failure: %v", err)
	}
	if _, err := NewInitiator(Config{}); !errors.Is(err, ErrNoPSK) {
		t.Errorf("no PSK: %v", err)
	}
	big := ic
	big.Payload = make([]byte, MaxPayloadLen+1)
	if _, err := NewInitiator(big); !errors.Is(err, ErrPayloadTooLong) {
		t.Errorf("big payload: %v", err)
	}
}

func TestSuiteNegotiation(t *testing.T) {
	yes, no := func() bool { return true }, func() bool { return false }
	tests := []struct {
		name         string
		iPref, rPref Suite
		iHW, rHW     func() bool
		want         Suite
	}{
		{"both hardware", SuiteAuto, SuiteAuto, yes, yes, SuiteAES256GCM},
		{"initiator lacks AES", SuiteAuto, SuiteAuto, no, yes, SuiteChaCha20Poly1305},
		{"responder lacks AES", SuiteAuto, SuiteAuto, yes, no, SuiteChaCha20Poly1305},
		{"initiator forces chacha", SuiteChaCha20Poly1305, SuiteAuto, yes, yes, SuiteChaCha20Poly1305},
		{"both force AES", SuiteAES256GCM, SuiteAES256GCM, no, no, SuiteAES256GCM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ic, rc := cfgPair("pw", "pw")
			ic.DataSuite, rc.DataSuite = tt.iPref, tt.rPref
			ic.hasAES, rc.hasAES = tt.iHW, tt.rHW
			is, rs, ierr, rerr, _ := handshake(t, ic, rc, nil)
			if ierr != nil || rerr != nil {
				t.Fatalf("handshake: %v %v", ierr, rerr)
			}
			if is.Suite() != tt.want || rs.Suite() != tt.want {
				t.Fatalf("suites %v/%v, want %v", is.Suite(), rs.Suite(), tt.want)
			}
			checkData(t, is, rs)
		})
	}
}

func TestHandshakeRun(t *testing.T) {
	ic, rc := cfgPair("pw", "pw")
	ih, _ := NewInitiator(ic)
	rh, _ := NewResponder(rc)
	toR, toI := make(chan []byte, 4), make(chan []byte, 4)
	type result struct {
		s   *Session
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := rh.Run(func(b []byte) error { toI <- b; return nil }, func() ([]byte, error) { return <-toR, nil })
		done <- result{s, err}
	}()
	is, err := ih.Run(func(b []byte) error { toR <- b; return nil }, func() ([]byte, error) { return <-toI, nil })
	if err != nil {
		t.Fatalf("initiator: %v", err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("responder: %v", r.err)
	}
	checkControl(t, is, r.s)
}

func TestCheckPasswordFlags(t *testing.T) {
	tests := []struct {
		local, remote bool
		want          error
	}{
		{false, false, nil},
		{true, true, nil},
		{false, true, ErrPeerRequiresPassword},
		{true, false, ErrPeerHasNoPassword},
	}
	for _, tt := range tests {
		if err := CheckPasswordFlags(tt.local, tt.remote); err != tt.want {
			t.Errorf("CheckPasswordFlags(%v, %v) = %v, want %v", tt.local, tt.remote, err, tt.want)
		}
	}
}

// TestHandshakeRunWrongPassword checks that Run sends the refusal, so that
// both sides report the password mismatch.
func TestHandshakeRunWrongPassword(t *testing.T) {
	ic, rc := cfgPair("pw", "other")
	ih, _ := NewInitiator(ic)
	rh, _ := NewResponder(rc)
	toR, toI := make(chan []byte, 4), make(chan []byte, 4)
	rerr := make(chan error, 1)
	go func() {
		_, err := rh.Run(func(b []byte) error { toI <- b; return nil }, func() ([]byte, error) { return <-toR, nil })
		rerr <- err
	}()
	_, ierr := ih.Run(func(b []byte) error { toR <- b; return nil }, func() ([]byte, error) { return <-toI, nil })
	for side, err := range map[string]error{"initiator": ierr, "responder": <-rerr} {
		if got := Reason(err); got != "authentication failed: password mismatch" {
			t.Errorf("%s: Reason = %q (error %v)", side, got, err)
		}
	}
}
