package secure

import (
	"math/rand/v2"
	"sync"
	"testing"
)

// testPSKs caches cheap test keys: Argon2id with tiny parameters, so that
// tests stay fast. TestDerivePSK covers the real parameters.
var testPSKs sync.Map

func testPSK(password string) *PSK {
	if p, ok := testPSKs.Load(password); ok {
		return p.(*PSK)
	}
	p := derivePSK([]byte(password), 1, 64, 1)
	testPSKs.Store(password, p)
	return p
}

// seededRand is a deterministic reader for ephemeral keys.
func seededRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	return rand.NewChaCha8(s)
}

// cfgPair returns matching initiator and responder configs.
func cfgPair(iPass, rPass string) (Config, Config) {
	ih, rh := []byte("weft hdr I pw=1"), []byte("weft hdr R pw=1")
	i := Config{PSK: testPSK(iPass), LocalHeader: ih, RemoteHeader: rh, Payload: []byte("peer-i"), DataSuite: SuiteChaCha20Poly1305}
	r := Config{PSK: testPSK(rPass), LocalHeader: rh, RemoteHeader: ih, Payload: []byte("peer-r"), DataSuite: SuiteChaCha20Poly1305}
	return i, r
}

// messages holds the three handshake messages of a run.
type messages struct{ m1, m2, m3 []byte }

// handshake runs both sides in memory. tamper, if set, may change each
// message before delivery. It returns both sessions (nil on failure) and
// the errors of each side.
func handshake(t *testing.T, ic, rc Config, tamper func(i int, m []byte) []byte) (is, rs *Session, ierr, rerr error, msgs messages) {
	t.Helper()
	if tamper == nil {
		tamper = func(_ int, m []byte) []byte { return m }
	}
	ih, err := NewInitiator(ic)
	if err != nil {
		t.Fatalf("NewInitiator: %v", err)
	}
	rh, err := NewResponder(rc)
	if err != nil {
		t.Fatalf("NewResponder: %v", err)
	}
	m1, err := ih.Step(nil)
	if err != nil {
		t.Fatalf("initiator step 1: %v", err)
	}
	msgs.m1 = append([]byte(nil), m1...)
	m2, rerr := rh.Step(tamper(1, m1))
	if rerr != nil {
		if r := rh.Refusal(); r != nil {
			_, ierr = ih.Step(r)
		}
		return nil, nil, ierr, rerr, msgs
	}
	msgs.m2 = append([]byte(nil), m2...)
	m3, ierr := ih.Step(tamper(2, m2))
	if ierr != nil {
		return nil, nil, ierr, nil, msgs
	}
	msgs.m3 = append([]byte(nil), m3...)
	out, rerr := rh.Step(tamper(3, m3))
	if rerr != nil {
		return ih.Session(), nil, nil, rerr, msgs
	}
	if out != nil {
		t.Fatalf("responder sent %d bytes after message 3", len(out))
	}
	if !ih.Done() || !rh.Done() {
		t.Fatalf("done: initiator %v responder %v", ih.Done(), rh.Done())
	}
	return ih.Session(), rh.Session(), nil, nil, msgs
}
