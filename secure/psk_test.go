package secure

import (
	"encoding/hex"
	"errors"
	"testing"
)

// TestDerivePSK pins the Argon2id parameters and salt: changing any of
// them changes the key and breaks interoperability with older routers.
func TestDerivePSK(t *testing.T) {
	if testing.Short() {
		t.Skip("Argon2id with 64 MiB takes about a second")
	}
	p, err := DerivePSK([]byte("correct horse battery staple"))
	if err != nil {
		t.Fatal(err)
	}
	const want = "1f813449d6d3afed0fdbabf772d090c5563cfd2e567c97ca019ed515bc432c2c"
	if got := hex.EncodeToString(p.key[:]); got != want {
		t.Fatalf("PSK = %s, want %s (protocol parameters changed?)", got, want)
	}
	q, _ := DerivePSK([]byte("correct horse battery stapler"))
	if p.Equal(q) {
		t.Fatal("different passwords give the same key")
	}
}

func TestDerivePSKEmpty(t *testing.T) {
	if _, err := DerivePSK(nil); !errors.Is(err, ErrEmptyPassword) {
		t.Fatalf("got %v, want ErrEmptyPassword", err)
	}
}

func TestPSKEqual(t *testing.T) {
	a, b := testPSK("a"), testPSK("b")
	if !a.Equal(testPSK("a")) || a.Equal(b) || a.Equal(nil) || !(*PSK)(nil).Equal(nil) {
		t.Fatal("Equal is wrong")
	}
}

func TestNewPSK(t *testing.T) {
	k := make([]byte, PSKLen)
	k[0] = 1
	p, err := NewPSK(k)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := NewPSK(k)
	if !p.Equal(q) {
		t.Fatal("same key, different PSKs")
	}
	if _, err := NewPSK(k[:31]); !errors.Is(err, ErrBadKey) {
		t.Fatalf("short key: %v", err)
	}
}
