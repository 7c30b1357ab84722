package secure

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Fuzz fixtures are deterministic: fixed password, fixed ephemeral keys,
// fixed data secrets, so that the checked-in seeds stay valid messages.

func fuzzConfigs() (Config, Config) {
	ic, rc := cfgPair("fuzz", "fuzz")
	ic.Rand, rc.Rand = seededRand(1), seededRand(2)
	return ic, rc
}

// fuzzMessages returns a valid message 1, 2 and 3 for the fuzz fixtures.
func fuzzMessages(t testing.TB) (m1, m2, m3 []byte) {
	ic, rc := fuzzConfigs()
	ih, _ := NewInitiator(ic)
	rh, _ := NewResponder(rc)
	m1, err := ih.Step(nil)
	if err != nil {
		t.Fatal(err)
	}
	if m2, err = rh.Step(m1); err != nil {
		t.Fatal(err)
	}
	if m3, err = ih.Step(m2); err != nil {
		t.Fatal(err)
	}
	return m1, m2, m3
}

// FuzzResponderMessage1 feeds arbitrary bytes to a responder as message 1,
// then the rest of the input as message 3.
func FuzzResponderMessage1(f *testing.F) {
	m1, _, m3 := fuzzMessages(f)
	f.Add(m1)
	f.Add(append(append([]byte{}, m1...), m3...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, rc := fuzzConfigs()
		rh, err := NewResponder(rc)
		if err != nil {
			t.Fatal(err)
		}
		msg1, rest := data, []byte(nil)
		if len(data) > len(m1) {
			msg1, rest = data[:len(m1)], data[len(m1):]
		}
		out, err := rh.Step(msg1)
		if err != nil {
			if rh.Session() != nil {
				t.Fatal("session after a failed step")
			}
			return
		}
		if len(out) < dhLen+tagLen+2 {
			t.Fatalf("message 2 of %d bytes", len(out))
		}
		if _, err := rh.Step(rest); err == nil && (!rh.Done() || rh.Session() == nil) {
			t.Fatal("message 3 accepted but no session")
		}
	})
}

// FuzzInitiatorMessage2 feeds arbitrary bytes to an initiator that sent
// the fixed message 1.
func FuzzInitiatorMessage2(f *testing.F) {
	_, m2, _ := fuzzMessages(f)
	f.Add(m2)
	f.Add(m2[:dhLen])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		ic, _ := fuzzConfigs()
		ih, err := NewInitiator(ic)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ih.Step(nil); err != nil {
			t.Fatal(err)
		}
		out, err := ih.Step(data)
		if err != nil {
			if ih.Session() != nil {
				t.Fatal("session after a failed step")
			}
			return
		}
		if len(out) != ConfirmLen || ih.Session() == nil {
			t.Fatalf("accepted message 2 but confirmation %d bytes, session %v", len(out), ih.Session())
		}
	})
}

// fuzzRing returns the receiving ring of the fixed data secrets, and the
// sending ring matching it.
func fuzzRings(t testing.TB, now time.Time) (send, recv *KeyRing) {
	var x, y [32]byte
	copy(x[:], "fuzz data secret one 0123456789a")
	copy(y[:], "fuzz data secret two 0123456789a")
	send, err := newKeyRing(SuiteChaCha20Poly1305, x, y, RekeyPolicy{AfterMessages: 4}, now)
	if err != nil {
		t.Fatal(err)
	}
	recv, err = newKeyRing(SuiteChaCha20Poly1305, y, x, RekeyPolicy{AfterMessages: 4}, now)
	if err != nil {
		t.Fatal(err)
	}
	return send, recv
}

// encodeFuzzDatagram lays out a fuzz input: key id, 8-byte counter,
// header length, header, sealed body.
func encodeFuzzDatagram(keyID uint8, counter uint64, hdr, sealed []byte) []byte {
	b := []byte{keyID}
	b = binary.BigEndian.AppendUint64(b, counter)
	b = append(b, byte(len(hdr)))
	b = append(b, hdr...)
	return append(b, sealed...)
}

// fuzzDatagrams seals a few datagrams across an epoch change.
func fuzzDatagrams(t testing.TB, now time.Time) [][]byte {
	send, _ := fuzzRings(t, now)
	var out [][]byte
	for i := range 6 {
		s, c, err := send.Reserve(now)
		if err != nil {
			t.Fatal(err)
		}
		hdr := []byte{1, 1, 1, s.KeyID(), 7, 7, 7, 7, 7, 7, 0, 0}
		hdr = binary.BigEndian.AppendUint64(hdr, c)
		body := make([]byte, i*10, i*10+TagLen)
		sealed, err := s.Seal(c, hdr, body)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, encodeFuzzDatagram(s.KeyID(), c, hdr, sealed))
	}
	return out
}

// FuzzOpen feeds arbitrary datagrams to a key ring, twice each (the second
// must never open: replay).
func FuzzOpen(f *testing.F) {
	now := time.Unix(1000, 0)
	for _, d := range fuzzDatagrams(f, now) {
		f.Add(d)
	}
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 10 {
			return
		}
		keyID, counter, hl := data[0], binary.BigEndian.Uint64(data[1:9]), int(data[9])
		rest := data[10:]
		if hl > len(rest) {
			return
		}
		hdr, sealed := rest[:hl], rest[hl:]
		_, recv := fuzzRings(t, now)
		buf := append([]byte(nil), sealed...)
		out, err := recv.Open(keyID, counter, hdr, buf, now)
		if err != nil {
			return
		}
		if len(out) != len(sealed)-TagLen {
			t.Fatalf("opened %d bytes from %d", len(out), len(sealed))
		}
		if _, err := recv.Open(keyID, counter, hdr, append([]byte(nil), sealed...), now); err == nil {
			t.Fatal("replay accepted")
		}
	})
}

// TestWriteFuzzSeeds regenerates testdata/fuzz when WEFT_WRITE_FUZZ_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("WEFT_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set WEFT_WRITE_FUZZ_SEEDS=1 to rewrite the seed corpora")
	}
	m1, m2, m3 := fuzzMessages(t)
	seeds := map[string][][]byte{
		"FuzzResponderMessage1": {m1, append(append([]byte{}, m1...), m3...), m1[:dhLen]},
		"FuzzInitiatorMessage2": {m2, m2[:len(m2)-1]},
		"FuzzOpen":              fuzzDatagrams(t, time.Unix(1000, 0)),
	}
	for name, list := range seeds {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range list {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%d", i)), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
