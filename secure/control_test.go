package secure

import (
	"errors"
	"testing"
)

func controlPair(t *testing.T) (*ControlSealer, *ControlOpener) {
	t.Helper()
	ic, rc := cfgPair("pw", "pw")
	is, rs, ierr, rerr, _ := handshake(t, ic, rc, nil)
	if ierr != nil || rerr != nil {
		t.Fatal(ierr, rerr)
	}
	return is.ControlSealer(), rs.ControlOpener()
}

func TestControlStrictOrder(t *testing.T) {
	tests := []struct {
		name    string
		deliver func(recs [][]byte) [][]byte
	}{
		{"reordered", func(r [][]byte) [][]byte { return [][]byte{r[1], r[0]} }},
		{"dropped", func(r [][]byte) [][]byte { return [][]byte{r[1]} }},
		{"replayed", func(r [][]byte) [][]byte { return [][]byte{r[0], r[0]} }},
		{"tampered", func(r [][]byte) [][]byte { x := append([]byte(nil), r[0]...); x[0] ^= 1; return [][]byte{x} }},
		{"truncated", func(r [][]byte) [][]byte { return [][]byte{r[0][:len(r[0])-1]} }},
		{"short", func(r [][]byte) [][]byte { return [][]byte{r[0][:3]} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, o := controlPair(t)
			var recs [][]byte
			for _, m := range []string{"one", "two"} {
				r, err := s.Seal(nil, []byte(m))
				if err != nil {
					t.Fatal(err)
				}
				recs = append(recs, r)
			}
			var err error
			for _, r := range tt.deliver(recs) {
				if _, err = o.Open(nil, r); err != nil {
					break
				}
			}
			if !errors.Is(err, ErrControlAuthentication) {
				t.Fatalf("got %v, want ErrControlAuthentication", err)
			}
			// The opener stays failed, even for the right next record.
			if _, err := o.Open(nil, recs[0]); !errors.Is(err, ErrControlAuthentication) {
				t.Fatalf("after failure: %v", err)
			}
		})
	}
}

// memChannel is an in-memory MessageChannel.
type memChannel struct{ q [][]byte }

func (m *memChannel) WriteMsg(b []byte) error {
	m.q = append(m.q, append([]byte(nil), b...))
	return nil
}
func (m *memChannel) ReadMsg() ([]byte, error) {
	if len(m.q) == 0 {
		return nil, errors.New("empty")
	}
	b := m.q[0]
	m.q = m.q[1:]
	return b, nil
}

func TestControlChannel(t *testing.T) {
	ic, rc := cfgPair("pw", "pw")
	is, rs, _, _, _ := handshake(t, ic, rc, nil)
	wire := &memChannel{}
	a, b := NewControlChannel(wire, is), NewControlChannel(wire, rs)
	for _, m := range []string{"features", "gossip", "x"} {
		if err := a.WriteMsg([]byte(m)); err != nil {
			t.Fatal(err)
		}
		if string(wire.q[len(wire.q)-1]) == m {
			t.Fatal("message sent in clear")
		}
		got, err := b.ReadMsg()
		if err != nil || string(got) != m {
			t.Fatalf("ReadMsg = %q, %v; want %q", got, err, m)
		}
	}
}

func TestControlKeysHandedOutOnce(t *testing.T) {
	ic, rc := cfgPair("pw", "pw")
	is, _, _, _, _ := handshake(t, ic, rc, nil)
	is.ControlSealer()
	is.ControlOpener()
	if _, err := is.ControlSealer().Seal(nil, []byte("x")); !errors.Is(err, ErrKeysTaken) {
		t.Errorf("second sealer: %v, want ErrKeysTaken", err)
	}
	if _, err := is.ControlOpener().Open(nil, make([]byte, 20)); !errors.Is(err, ErrKeysTaken) {
		t.Errorf("second opener: %v, want ErrKeysTaken", err)
	}
}
