package mesh

import (
	"errors"
	"net"
	"reflect"
	"testing"
	"time"
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
		err           error
	}{
		{"same", header{1, 1, 0}, header{1, 1, 0}, 1, nil},
		{"overlap picks highest common", header{1, 3, 0}, header{2, 5, 0}, 3, nil},
		{"peer too new", header{1, 1, 0}, header{2, 2, 0}, 0, ErrVersionMismatch},
		{"peer too old", header{2, 3, 0}, header{1, 1, 0}, 0, ErrVersionMismatch},
		{"peer password", header{1, 1, 0}, header{1, 1, flagPassword}, 0, ErrPeerUsesPassword},
		{"our password", header{1, 1, flagPassword}, header{1, 1, 0}, 0, ErrWeUsePassword},
		{"both password", header{1, 1, flagPassword}, header{1, 1, flagPassword}, 0, ErrPasswordUnsupported},
		{"unknown flag bits ignored", header{1, 1, 0}, header{1, 1, 0x80}, 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := negotiate(tc.local, tc.remote)
			if !errors.Is(err, tc.err) || v != tc.want {
				t.Fatalf("negotiate = %d, %v; want %d, %v", v, err, tc.want, tc.err)
			}
		})
	}
	_, err := negotiate(header{1, 1, 0}, header{1, 1, flagPassword})
	if err.Error() != "peer uses a password but we do not" {
		t.Errorf("error text %q", err)
	}
}

func TestFeaturesRoundTrip(t *testing.T) {
	f := features{Name: 0x0a0b0c0d0e0f, NickName: "host-1", UID: 42, ConnNonce: 7, DataPort: 6784,
		Extra: map[string]string{"b": "2", "a": "1", "empty": ""}}
	got, err := decodeFeatures(f.encode())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, f) {
		t.Fatalf("got %+v, want %+v", got, f)
	}
	noExtra := features{Name: 1, UID: 1}
	if got, err := decodeFeatures(noExtra.encode()); err != nil || !reflect.DeepEqual(got, noExtra) {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestDecodeFeaturesErrors(t *testing.T) {
	good := (&features{Name: 1, NickName: "n", UID: 9, Extra: map[string]string{"k": "v"}}).encode()
	for i := 0; i < len(good); i++ {
		if _, err := decodeFeatures(good[:i]); err == nil {
			t.Errorf("truncated at %d: no error", i)
		}
	}
	if _, err := decodeFeatures(append(append([]byte(nil), good...), 0)); err == nil {
		t.Error("trailing byte: no error")
	}
	zeroName := (&features{UID: 9}).encode()
	if _, err := decodeFeatures(zeroName); err == nil {
		t.Error("zero name accepted")
	}
	zeroUID := (&features{Name: 1}).encode()
	if _, err := decodeFeatures(zeroUID); err == nil {
		t.Error("zero UID accepted")
	}
	wrongTag := append([]byte{tagTopology}, good[1:]...)
	if _, err := decodeFeatures(wrongTag); err == nil {
		t.Error("wrong tag accepted")
	}
}

// runHandshakes runs both ends of a handshake over an in-memory pipe.
func runHandshakes(t *testing.T, a, b features, ha, hb header) (ra, rb handshakeResult, ea, eb error) {
	ca, cb := tcpPair(t)
	defer ca.Close()
	defer cb.Close()
	done := make(chan struct{})
	go func() {
		rb, eb = handshake(cb, b, hb, time.Second, 0)
		if eb != nil {
			cb.Close()
		}
		close(done)
	}()
	ra, ea = handshake(ca, a, ha, time.Second, 0)
	if ea != nil {
		ca.Close()
	}
	<-done
	return
}

func TestHandshake(t *testing.T) {
	a := features{Name: 1, NickName: "a", UID: 11, ConnNonce: 0xf0, DataPort: 1}
	b := features{Name: 2, NickName: "b", UID: 22, ConnNonce: 0x0f, DataPort: 2}
	v1 := header{1, 1, 0}
	ra, rb, ea, eb := runHandshakes(t, a, b, v1, v1)
	if ea != nil || eb != nil {
		t.Fatalf("handshake errors %v, %v", ea, eb)
	}
	if ra.remote.Name != 2 || rb.remote.Name != 1 || ra.version != 1 {
		t.Fatalf("results %+v %+v", ra, rb)
	}
	if a.ConnNonce^ra.remote.ConnNonce != b.ConnNonce^rb.remote.ConnNonce {
		t.Fatal("ConnUIDs differ")
	}

	_, _, ea, eb = runHandshakes(t, a, b, v1, header{2, 2, 0})
	if !errors.Is(ea, ErrVersionMismatch) || !errors.Is(eb, ErrVersionMismatch) {
		t.Fatalf("version mismatch: %v, %v", ea, eb)
	}
	_, _, ea, eb = runHandshakes(t, a, b, v1, header{1, 1, flagPassword})
	if !errors.Is(ea, ErrPeerUsesPassword) || !errors.Is(eb, ErrWeUsePassword) {
		t.Fatalf("password mismatch: %v, %v", ea, eb)
	}
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
	_, err := handshake(ca, features{Name: 1, UID: 1}, header{1, 1, 0}, 50*time.Millisecond, 0)
	if err == nil {
		t.Fatal("no timeout")
	}
}
