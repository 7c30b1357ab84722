package integration

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// This file is a member of the mesh built from docs/protocol-control.md
// alone (§1–§3a and §5, version 2, no password): a test's hostile peer.

// memberKey is an identity: an Ed25519 key and the peer name derived
// from it (docs/protocol-control.md, "Identity").
type memberKey struct {
	priv ed25519.PrivateKey
	pub  ed25519.PublicKey
	name uint64
}

// newMemberKey derives identity number seq deterministically.
func newMemberKey(seq uint64) memberKey {
	seed := make([]byte, ed25519.SeedSize)
	binary.BigEndian.PutUint64(seed, seq)
	seed[8] = 0x77
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	return memberKey{priv: priv, pub: pub, name: nameOfKey(pub)}
}

func nameOfKey(pub []byte) uint64 {
	sum := sha256.Sum256(append([]byte("weft peer name v2\x00"), pub...))
	sum[0] = (sum[0] | 0x02) &^ 0x01
	return macName(sum[:6])
}

func (k memberKey) sign(context string, msg []byte) []byte {
	return ed25519.Sign(k.priv, append(append([]byte(context), 0), msg...))
}

func putName(b []byte, n uint64) []byte {
	return append(b, byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func macName(b []byte) uint64 {
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}

// encodeFeatures is the features message, §3, with no extra features.
func encodeFeatures(k memberKey, uid, nonce uint64, nick string) []byte {
	b := putName([]byte{0}, k.name)
	b = append(b, k.pub...)
	b = binary.BigEndian.AppendUint64(b, uid)
	b = binary.BigEndian.AppendUint64(b, nonce)
	b = binary.BigEndian.AppendUint16(b, 6784)
	b = append(append(b, byte(len(nick))), nick...)
	return binary.BigEndian.AppendUint16(b, 0)
}

type topoConn struct {
	peer     uint64
	addr     netip.AddrPort
	outbound bool
}

// topoEntry is a topology entry; key signs it (unless sig is set).
type topoEntry struct {
	key          memberKey
	name         uint64 // 0: key's name
	uid, version uint64
	nick         string
	conns        []topoConn
	sig          []byte // set: sent instead of the key's signature
}

func (e topoEntry) body() []byte {
	name := e.name
	if name == 0 {
		name = e.key.name
	}
	b := putName(nil, name)
	b = append(b, e.key.pub...)
	b = binary.BigEndian.AppendUint64(b, e.uid)
	b = binary.BigEndian.AppendUint64(b, e.version)
	b = append(append(b, byte(len(e.nick))), e.nick...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.conns)))
	for _, c := range e.conns {
		b = putName(b, c.peer)
		flags := byte(2)
		if c.outbound {
			flags |= 1
		}
		var ip []byte
		if c.addr.IsValid() {
			ip = c.addr.Addr().AsSlice()
		}
		b = append(append(append(b, flags), byte(len(ip))), ip...)
		b = binary.BigEndian.AppendUint16(b, c.addr.Port())
	}
	return b
}

// encodeTopo is one or more topology messages, §5 (at most 256 entries
// each); every connection established.
func encodeTopo(entries []topoEntry) [][]byte {
	var msgs [][]byte
	for len(entries) > 0 {
		n := min(len(entries), 256)
		b := binary.BigEndian.AppendUint16([]byte{3}, uint16(n))
		for _, e := range entries[:n] {
			body := e.body()
			sig := e.sig
			if sig == nil {
				sig = e.key.sign("weft topology entry v2", body)
			}
			b = append(append(b, body...), sig...)
		}
		msgs = append(msgs, b)
		entries = entries[n:]
	}
	return msgs
}

// member is an open, authenticated control connection of a hostile peer.
type member struct {
	mu   sync.Mutex // one writer at a time
	nc   net.Conn
	key  memberKey
	peer uint64 // the router's name
}

func writeFrame(w io.Writer, m []byte) error {
	_, err := w.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(m))), m...))
	return err
}

func readFrame(r io.Reader) ([]byte, error) {
	var l [4]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(l[:])
	if n > 1<<20 {
		return nil, fmt.Errorf("frame of %d bytes", n)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}

// joinMember runs the plain handshake as the dialler on nc: header,
// features, identity proof (§1, §3, §3a). It then reads and discards
// what the router sends, and sends a heartbeat every second, until nc is
// closed.
func joinMember(t *testing.T, nc net.Conn, k memberKey, nick string) *member {
	t.Helper()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	const nonce = 0x1234
	local := encodeFeatures(k, 99, nonce, nick)
	if _, err := nc.Write([]byte("weft\x02\x02\x00")); err != nil {
		t.Fatal(err)
	}
	if err := writeFrame(nc, local); err != nil {
		t.Fatal(err)
	}
	var hdr [7]byte
	if _, err := io.ReadFull(nc, hdr[:]); err != nil || string(hdr[:4]) != "weft" {
		t.Fatalf("router's header %q: %v", hdr, err)
	}
	remote, err := readFrame(nc)
	if err != nil || len(remote) < 1+6+32+8+8 || remote[0] != 0 {
		t.Fatalf("router's features: %x, %v", remote, err)
	}
	rName, rKey := remote[1:7], remote[7:39]
	rNonce := remote[47:55]
	transcript := []byte{1}
	transcript = append(append(append(transcript, putName(nil, k.name)...), binary.BigEndian.AppendUint64(nil, nonce)...), k.pub...)
	transcript = append(append(append(transcript, rName...), rNonce...), rKey...)
	if err := writeFrame(nc, append([]byte{8}, k.sign("weft identity proof v2", transcript)...)); err != nil {
		t.Fatal(err)
	}
	proof, err := readFrame(nc)
	if err != nil || len(proof) != 65 || proof[0] != 8 {
		t.Fatalf("router's identity proof: %x, %v", proof, err)
	}
	theirs := []byte{0}
	theirs = append(append(append(theirs, rName...), rNonce...), rKey...)
	theirs = append(append(append(theirs, putName(nil, k.name)...), binary.BigEndian.AppendUint64(nil, nonce)...), k.pub...)
	if !ed25519.Verify(rKey, append([]byte("weft identity proof v2\x00"), theirs...), proof[1:]) {
		t.Fatal("the router's identity proof does not verify")
	}
	nc.SetDeadline(time.Time{})
	m := &member{nc: nc, key: k, peer: macName(rName)}
	go io.Copy(io.Discard, nc)
	go func() {
		for {
			time.Sleep(time.Second)
			m.mu.Lock()
			err := writeFrame(nc, []byte{1})
			m.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return m
}

// send writes topology messages.
func (m *member) send(msgs [][]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, b := range msgs {
		if err := writeFrame(m.nc, b); err != nil {
			return errors.Join(fmt.Errorf("send topology"), err)
		}
	}
	return nil
}
