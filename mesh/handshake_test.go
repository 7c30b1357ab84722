package mesh

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/weftnet/weft/secure"
)

func TestHeaderRoundTrip(t *testing.T) {
	h := header{minVersion: 1, maxVersion: 3, flags: flagPassword}
	b := h.encode()
	if string(b[:4]) != "weft" || len(b) != headerLen {
		t.Fatalf("encode = %q", b)
	}
	got, err := decodeHeader(b)
	if err != nil || got != h {
		t.Fatalf("decode = %+v, %v", got, err)
	}
	for _, bad := range [][]byte{nil, []byte("weave12"), []byte("weft\x00\x01\x00"), []byte("weft\x02\x01\x00"), []byte("weft\x01")} {
		if _, err := decodeHeader(bad); !errors.Is(err, ErrNotWeft) {
			t.Errorf("decodeHeader(%q) err = %v, want ErrNotWeft", bad, err)
		}
	}
}

func TestNegotiate(t *testing.T) {
	for _, tc := range []struct {
		name          string
		local, remote header
		want          byte
		password      bool
		err           error
	}{
		{"same", header{1, 1, 0}, header{1, 1, 0}, 1, false, nil},
		{"overlap picks highest common", header{1, 3, 0}, header{2, 5, 0}, 3, false, nil},
		{"peer too new", header{1, 1, 0}, header{2, 2, 0}, 0, false, ErrVersionMismatch},
		{"peer too old", header{2, 3, 0}, header{1, 1, 0}, 0, false, ErrVersionMismatch},
		{"peer password", header{1, 1, 0}, header{1, 1, flagPassword}, 0, false, ErrPeerUsesPassword},
		{"our password", header{1, 1, flagPassword}, header{1, 1, 0}, 0, false, ErrWeUsePassword},
		{"both password", header{1, 1, flagPassword}, header{1, 1, flagPassword}, 1, true, nil},
		{"unknown flag bits ignored", header{1, 1, 0}, header{1, 1, 0x80}, 1, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, pw, err := negotiate(tc.local, tc.remote)
			if !errors.Is(err, tc.err) || v != tc.want || pw != tc.password {
				t.Fatalf("negotiate = %d, %v, %v; want %d, %v, %v", v, pw, err, tc.want, tc.password, tc.err)
			}
		})
	}
	_, _, err := negotiate(header{1, 1, 0}, header{1, 1, flagPassword})
	if !errors.Is(err, secure.ErrPeerRequiresPassword) || secure.Reason(err) != "authentication failed: peer requires a password, we have none" {
		t.Errorf("error text %q", err)
	}
}

func TestFeaturesRoundTrip(t *testing.T) {
	f := plainFeatures(testIdentity(1), features{NickName: "host-1", UID: 42, ConnNonce: 7, DataPort: 6784,
		Extra: map[string]string{"b": "2", "a": "1", "empty": ""}})
	got, err := decodeFeatures(f.encode())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, f) {
		t.Fatalf("got %+v, want %+v", got, f)
	}
	noExtra := plainFeatures(testIdentity(2), features{UID: 1})
	if got, err := decodeFeatures(noExtra.encode()); err != nil || !reflect.DeepEqual(got, noExtra) {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestDecodeFeaturesErrors(t *testing.T) {
	good := encodeFeatures(plainFeatures(testIdentity(1), features{NickName: "n", UID: 9, Extra: map[string]string{"k": "v"}}))
	for i := 0; i < len(good); i++ {
		if _, err := decodeFeatures(good[:i]); err == nil {
			t.Errorf("truncated at %d: no error", i)
		}
	}
	if _, err := decodeFeatures(append(append([]byte(nil), good...), 0)); err == nil {
		t.Error("trailing byte: no error")
	}
	zeroName := plainFeatures(testIdentity(1), features{UID: 9})
	zeroName.Name = 0
	if _, err := decodeFeatures(encodeFeatures(zeroName)); err == nil {
		t.Error("zero name accepted")
	}
	zeroUID := encodeFeatures(plainFeatures(testIdentity(1), features{}))
	if _, err := decodeFeatures(zeroUID); err == nil {
		t.Error("zero UID accepted")
	}
	// A name that is not the key's: another peer's name with our key.
	stolen := plainFeatures(testIdentity(1), features{UID: 9})
	stolen.Name = testName(2)
	if _, err := decodeFeatures(encodeFeatures(stolen)); !errors.Is(err, ErrNameNotKey) {
		t.Errorf("another peer's name: %v, want ErrNameNotKey", err)
	}
	wrongTag := append([]byte{tagTopology}, good[1:]...)
	if _, err := decodeFeatures(wrongTag); err == nil {
		t.Error("wrong tag accepted")
	}
}

// hsConfig is a handshake config with test defaults.
// f.Name is a test identity's number (testIdentity); the handshake
// replaces it with that identity's name.
func hsConfig(f features, h header, psk *secure.PSK) handshakeConfig {
	return handshakeConfig{local: f, identity: testIdentity(int(f.Name)), header: h, psk: psk, timeout: time.Second}
}

// runHandshakes runs both ends of a handshake over loopback TCP; a dials.
func runHandshakes(t *testing.T, a, b handshakeConfig) (ra, rb handshakeResult, ea, eb error) {
	ca, cb := tcpPair(t)
	defer ca.Close()
	defer cb.Close()
	a.initiator, b.initiator = true, false
	done := make(chan struct{})
	go func() {
		rb, eb = handshake(cb, b)
		if eb != nil {
			cb.Close()
		}
		close(done)
	}()
	ra, ea = handshake(ca, a)
	if ea != nil {
		ca.Close()
	}
	<-done
	return
}

// testPSK returns a PSK from a fixed key (no Argon2id cost).
func testPSK(t testing.TB, b byte) *secure.PSK {
	t.Helper()
	key := make([]byte, secure.PSKLen)
	for i := range key {
		key[i] = b ^ byte(i*7)
	}
	p, err := secure.NewPSK(key)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHandshake(t *testing.T) {
	a := features{Name: 1, NickName: "a", UID: 11, ConnNonce: 0xf0, DataPort: 1}
	b := features{Name: 2, NickName: "b", UID: 22, ConnNonce: 0x0f, DataPort: 2}
	v1 := header{2, 2, 0}
	ra, rb, ea, eb := runHandshakes(t, hsConfig(a, v1, nil), hsConfig(b, v1, nil))
	if ea != nil || eb != nil {
		t.Fatalf("handshake errors %v, %v", ea, eb)
	}
	if ra.remote.Name != testName(2) || rb.remote.Name != testName(1) || ra.version != 2 || ra.encrypted || ra.keys != nil {
		t.Fatalf("results %+v %+v", ra, rb)
	}
	if a.ConnNonce^ra.remote.ConnNonce != b.ConnNonce^rb.remote.ConnNonce {
		t.Fatal("ConnUIDs differ")
	}

	_, _, ea, eb = runHandshakes(t, hsConfig(a, v1, nil), hsConfig(b, header{3, 3, 0}, nil))
	if !errors.Is(ea, ErrVersionMismatch) || !errors.Is(eb, ErrVersionMismatch) {
		t.Fatalf("version mismatch: %v, %v", ea, eb)
	}
	_, _, ea, eb = runHandshakes(t, hsConfig(a, v1, nil), hsConfig(b, v1, testPSK(t, 1)))
	if !errors.Is(ea, ErrPeerUsesPassword) || !errors.Is(eb, ErrWeUsePassword) {
		t.Fatalf("password mismatch: %v, %v", ea, eb)
	}
}

func TestEncryptedHandshake(t *testing.T) {
	a := features{Name: 1, NickName: "a", UID: 11, ConnNonce: 0xf0, DataPort: 1}
	b := features{Name: 2, NickName: "b", UID: 22, ConnNonce: 0x0f, DataPort: 2}
	v1 := header{2, 2, 0}
	for _, tc := range []struct {
		name             string
		pskA, pskB       byte
		trustA, trustB   bool
		wantErr          error
		wantKeys, wantCh bool
	}{
		{"equal passwords", 1, 1, false, false, nil, true, true},
		{"one side trusts", 1, 1, true, false, nil, true, true},
		{"other side trusts", 1, 1, false, true, nil, true, true},
		{"both trust", 1, 1, true, true, nil, false, true},
		{"different passwords", 1, 2, false, false, secure.ErrAuthentication, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca, cb := hsConfig(a, v1, testPSK(t, tc.pskA)), hsConfig(b, v1, testPSK(t, tc.pskB))
			ca.trustPeer, cb.trustPeer = tc.trustA, tc.trustB
			ra, rb, ea, eb := runHandshakes(t, ca, cb)
			if tc.wantErr != nil {
				if !errors.Is(ea, tc.wantErr) || !errors.Is(eb, tc.wantErr) {
					t.Fatalf("errors %v, %v; want %v on both", ea, eb, tc.wantErr)
				}
				if secure.Reason(ea) != "authentication failed: password mismatch" {
					t.Fatalf("reason %q", secure.Reason(ea))
				}
				return
			}
			if ea != nil || eb != nil {
				t.Fatalf("handshake errors %v, %v", ea, eb)
			}
			if ra.remote.Name != testName(2) || rb.remote.Name != testName(1) || ra.remote.NickName != "b" || !ra.encrypted || !rb.encrypted {
				t.Fatalf("results %+v %+v", ra, rb)
			}
			if (ra.keys != nil) != tc.wantKeys || (rb.keys != nil) != tc.wantKeys {
				t.Fatalf("keys %v %v, want %v", ra.keys != nil, rb.keys != nil, tc.wantKeys)
			}
			if tc.wantKeys {
				ringsInteroperate(t, ra.keys, rb.keys)
			}
		})
	}
}

// ringsInteroperate checks that what one ring seals the other opens, both ways.
func ringsInteroperate(t *testing.T, a, b *secure.KeyRing) {
	t.Helper()
	if err := sealOpen(a, b); err != nil {
		t.Fatalf("a to b: %v", err)
	}
	if err := sealOpen(b, a); err != nil {
		t.Fatalf("b to a: %v", err)
	}
}

// sealOpen seals a datagram with from and opens it with to.
func sealOpen(from, to *secure.KeyRing) error {
	now := time.Now()
	hdr := []byte("header-as-ad")
	buf := make([]byte, 5+secure.TagLen)
	copy(buf, "frame")
	s, ctr, err := from.Reserve(now)
	if err != nil {
		return err
	}
	sealed, err := s.Seal(ctr, hdr, buf[:5])
	if err != nil {
		return err
	}
	plain, err := to.Open(s.KeyID(), ctr, hdr, sealed, now)
	if err != nil {
		return err
	}
	if string(plain) != "frame" {
		return fmt.Errorf("opened %q", plain)
	}
	return nil
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ca, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cb, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ca.Close(); cb.Close() })
	return ca, cb
}

func TestHandshakeTimeout(t *testing.T) {
	ca, cb := tcpPair(t)
	defer cb.Close()
	go func() { // the peer reads but never answers
		buf := make([]byte, 64)
		for {
			if _, err := cb.Read(buf); err != nil {
				return
			}
		}
	}()
	cfg := hsConfig(features{Name: 1, UID: 1}, header{2, 2, 0}, nil)
	cfg.timeout = 50 * time.Millisecond
	_, err := handshake(ca, cfg)
	if err == nil {
		t.Fatal("no timeout")
	}
}
