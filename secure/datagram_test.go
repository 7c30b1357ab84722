package secure

import (
	"bytes"
	"errors"
	"testing"
)

var testKey = bytes.Repeat([]byte{7}, 32)

func testPair(t testing.TB, s Suite, limit uint64) (*Sealer, *Opener) {
	t.Helper()
	sl, err := NewSealer(s, testKey, 3, limit)
	if err != nil {
		t.Fatal(err)
	}
	op, err := NewOpener(s, testKey, 3, limit)
	if err != nil {
		t.Fatal(err)
	}
	return sl, op
}

// datagram lays out header, payload and tag room in one buffer, as the
// router does, and returns the header and the payload slice.
func datagram(payload string) (hdr, body []byte) {
	buf := make([]byte, 20+len(payload)+TagLen)
	copy(buf, "HEADER-0123456789abc")
	copy(buf[20:], payload)
	return buf[:20], buf[20 : 20+len(payload)]
}

var suites = []Suite{SuiteChaCha20Poly1305, SuiteAES256GCM}

func TestSealOpen(t *testing.T) {
	for _, s := range suites {
		t.Run(s.String(), func(t *testing.T) {
			sl, op := testPair(t, s, 0)
			for _, p := range []string{"", "x", "a frame of some length"} {
				hdr, body := datagram(p)
				c, err := sl.Next()
				if err != nil {
					t.Fatal(err)
				}
				sealed, err := sl.Seal(c, hdr, body)
				if err != nil {
					t.Fatal(err)
				}
				if len(sealed) != len(p)+TagLen || (len(p) > 4 && bytes.Contains(sealed, []byte(p))) {
					t.Fatalf("sealed %q badly: %x", p, sealed)
				}
				got, err := op.Open(c, hdr, sealed)
				if err != nil || string(got) != p {
					t.Fatalf("Open = %q, %v; want %q", got, err, p)
				}
			}
		})
	}
}

func TestOpenRejects(t *testing.T) {
	for _, s := range suites {
		sl, op := testPair(t, s, 0)
		seal := func() (uint64, []byte, []byte) {
			hdr, body := datagram("payload")
			c, _ := sl.Next()
			sealed, _ := sl.Seal(c, hdr, body)
			return c, hdr, sealed
		}
		tests := []struct {
			name string
			open func() error
			want error
		}{
			{"wrong counter", func() error { c, h, d := seal(); _, err := op.Open(c+1, h, d); return err }, ErrForged},
			{"tampered header", func() error { c, h, d := seal(); h[0] ^= 1; _, err := op.Open(c, h, d); return err }, ErrForged},
			{"tampered body", func() error { c, h, d := seal(); d[0] ^= 1; _, err := op.Open(c, h, d); return err }, ErrForged},
			{"tampered tag", func() error { c, h, d := seal(); d[len(d)-1] ^= 1; _, err := op.Open(c, h, d); return err }, ErrForged},
			{"short", func() error { c, h, d := seal(); _, err := op.Open(c, h, d[:TagLen-1]); return err }, ErrShortDatagram},
			{"replayed", func() error {
				c, h, d := seal()
				cp := append([]byte(nil), d...)
				if _, err := op.Open(c, h, d); err != nil {
					return err
				}
				_, err := op.Open(c, h, cp)
				return err
			}, ErrReplay},
			{"counter over limit", func() error { _, h, d := seal(); _, err := op.Open(RejectAfterMessages, h, d); return err }, ErrReplay},
		}
		for _, tt := range tests {
			t.Run(s.String()+"/"+tt.name, func(t *testing.T) {
				if err := tt.open(); !errors.Is(err, tt.want) {
					t.Fatalf("got %v, want %v", err, tt.want)
				}
			})
		}
	}
}

// TestForgedDoesNotAdvanceWindow checks that a forged datagram with a high
// counter does not shift the replay window.
func TestForgedDoesNotAdvanceWindow(t *testing.T) {
	sl, op := testPair(t, SuiteChaCha20Poly1305, 0)
	hdr, body := datagram("first")
	c, _ := sl.Next()
	sealed, _ := sl.Seal(c, hdr, body)
	junk := make([]byte, 40)
	if _, err := op.Open(c+1_000_000, hdr, junk); !errors.Is(err, ErrForged) {
		t.Fatalf("forged: %v", err)
	}
	if _, err := op.Open(c, hdr, sealed); err != nil {
		t.Fatalf("genuine datagram refused after a forgery: %v", err)
	}
}

func TestSealerLimit(t *testing.T) {
	sl, _ := testPair(t, SuiteChaCha20Poly1305, 3)
	for i := range 3 {
		if c, err := sl.Next(); err != nil || c != uint64(i) {
			t.Fatalf("Next = %d, %v; want %d", c, err, i)
		}
	}
	for range 2 {
		if _, err := sl.Next(); !errors.Is(err, ErrRekeyRequired) {
			t.Fatalf("beyond limit: %v, want ErrRekeyRequired", err)
		}
	}
	if sl.Used() != 3 {
		t.Errorf("Used = %d, want 3", sl.Used())
	}
}

func TestSealShortBuffer(t *testing.T) {
	sl, _ := testPair(t, SuiteChaCha20Poly1305, 0)
	b := make([]byte, 10, 10+TagLen-1)
	if _, err := sl.Seal(0, nil, b); !errors.Is(err, ErrShortBuffer) {
		t.Fatalf("got %v, want ErrShortBuffer", err)
	}
}

func TestNewSealerBadKey(t *testing.T) {
	if _, err := NewSealer(SuiteChaCha20Poly1305, testKey[:16], 0, 0); !errors.Is(err, ErrBadKey) {
		t.Errorf("short key: %v", err)
	}
	if _, err := NewOpener(Suite(9), testKey, 0, 0); !errors.Is(err, ErrBadKey) {
		t.Errorf("unknown suite: %v", err)
	}
}

func TestSealOpenAllocs(t *testing.T) {
	for _, s := range suites {
		sl, op := testPair(t, s, 0)
		buf := make([]byte, 20+1400+TagLen)
		hdr, body := buf[:20], buf[20:1420]
		allocs := testing.AllocsPerRun(1000, func() {
			c, err := sl.Next()
			if err != nil {
				t.Fatal(err)
			}
			sealed, err := sl.Seal(c, hdr, body)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := op.Open(c, hdr, sealed); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%v: %v allocations per seal+open, want 0", s, allocs)
		}
	}
}
