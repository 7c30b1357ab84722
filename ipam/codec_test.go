package ipam

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/weftnet/weft/mesh"
)

var (
	testPool   = netip.MustParsePrefix("10.32.0.0/12")
	testPool2  = netip.MustParsePrefix("192.168.0.0/24")
	testUpdate = &update{pools: []poolUpdate{
		{pool: testPool, seed: Seed{At: 1700000000123456789, By: 0x7a0000000001}, ents: []entry{
			{start: a2u(testPool.Addr()), owner: 0x7a0000000001, version: 3, free: 1000},
			{start: a2u(testPool.Addr()) + 1<<19, owner: 0x7a0000000002, version: 1, free: 1 << 19},
		}},
		{pool: testPool2, seed: Seed{At: -5, By: 3}, ents: []entry{
			{start: a2u(testPool2.Addr()), owner: 3, version: 1 << 31, free: 0},
		}},
	}}
)

func testRequests() []request {
	return []request{
		{kind: kindSpaceRequest, pool: testPool, subnet: netip.MustParsePrefix("10.32.4.0/24")},
		{kind: kindSpaceDenied, pool: testPool, subnet: testPool},
		{kind: kindClaim, pool: testPool, addr: netip.MustParseAddr("10.32.0.9"), ident: "c1"},
		{kind: kindClaimDenied, pool: testPool2, addr: netip.MustParseAddr("192.168.0.255"), ident: strings.Repeat("x", maxIdentLen)},
		{kind: kindNotOwner, pool: testPool, addr: netip.MustParseAddr("10.47.255.255")},
		{kind: kindRingRequest, pool: testPool2},
		{kind: kindReclaim, pool: testPool, addr: netip.MustParseAddr("10.32.0.10"), ident: "c2"},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	b := encodeUpdate(testUpdate.pools)
	u, _, err := decodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(u, testUpdate) {
		t.Fatalf("update round trip:\n got %+v\nwant %+v", u, testUpdate)
	}
	// Encode is one message per pool.
	parts := testUpdate.Encode()
	if len(parts) != 2 {
		t.Fatalf("Encode gave %d messages", len(parts))
	}
	for i, p := range parts {
		u, _, err := decodeMessage(p)
		if err != nil || len(u.pools) != 1 || !reflect.DeepEqual(u.pools[0], testUpdate.pools[i]) {
			t.Fatalf("part %d: %+v %v", i, u, err)
		}
	}
	for _, r := range testRequests() {
		u, got, err := decodeMessage(r.encode())
		if err != nil || u != nil || got != r {
			t.Errorf("request %d round trip: got %+v %v, want %+v", r.kind, got, err, r)
		}
	}
	// An ident too long is cut, not refused.
	long := request{kind: kindClaim, pool: testPool, addr: netip.MustParseAddr("10.32.0.9"), ident: strings.Repeat("y", 300)}
	if _, got, err := decodeMessage(long.encode()); err != nil || got.ident != long.ident[:maxIdentLen] {
		t.Errorf("long ident: %q %v", got.ident, err)
	}
}

// TestEncodeSorts checks that entries are sent sorted whatever the order
// they were collected in (a delta comes from a map).
func TestEncodeSorts(t *testing.T) {
	ents := slices.Clone(testUpdate.pools[0].ents)
	slices.Reverse(ents)
	u, _, err := decodeMessage(encodeUpdate([]poolUpdate{{pool: testPool, seed: testUpdate.pools[0].seed, ents: ents}}))
	if err != nil || !slices.Equal(u.pools[0].ents, testUpdate.pools[0].ents) {
		t.Fatalf("%v %v", u, err)
	}
}

func TestUpdateMerge(t *testing.T) {
	s := Seed{At: 1, By: 1}
	lo := a2u(testPool.Addr())
	a := &update{pools: []poolUpdate{{pool: testPool, seed: s, ents: []entry{{start: lo, owner: 1, version: 2}}}}}
	b := &update{pools: []poolUpdate{
		{pool: testPool, seed: s, ents: []entry{{start: lo, owner: 1, version: 1}, {start: lo + 8, owner: 2, version: 1}}},
		{pool: testPool, seed: Seed{At: 2, By: 2}, ents: []entry{{start: lo, owner: 2, version: 1}}},
	}}
	m := a.Merge(b).(*update)
	want := []poolUpdate{
		{pool: testPool, seed: s, ents: []entry{{start: lo, owner: 1, version: 2}, {start: lo + 8, owner: 2, version: 1}}},
		{pool: testPool, seed: Seed{At: 2, By: 2}, ents: []entry{{start: lo, owner: 2, version: 1}}},
	}
	if !reflect.DeepEqual(m.pools, want) {
		t.Fatalf("merge: %+v", m.pools)
	}
	if len(a.pools[0].ents) != 1 {
		t.Fatal("Merge changed its receiver")
	}
	if a.Merge(nil) != a {
		t.Fatal("merge with nil")
	}
}

// TestDecodeMalformed checks that every kind of bad message is refused
// with ErrMalformed, not a panic.
func TestDecodeMalformed(t *testing.T) {
	good := encodeUpdate(testUpdate.pools[:1])
	// Offsets in a one-pool update: header 4, prefix 5, seed 14, count 4,
	// then entries of 18 bytes (start 4, owner 6, version 4, free 4).
	const ent0 = 4 + 5 + 14 + 4
	mod := func(f func(b []byte) []byte) []byte { return f(slices.Clone(good)) }
	claim := request{kind: kindClaim, pool: testPool, addr: netip.MustParseAddr("10.32.0.9"), ident: "c1"}.encode()
	space := request{kind: kindSpaceRequest, pool: testPool, subnet: netip.MustParsePrefix("10.32.4.0/24")}
	cases := []struct {
		name string
		msg  []byte
	}{
		{"empty", nil},
		{"version only", []byte{wireVersion}},
		{"wrong version", mod(func(b []byte) []byte { b[0] = 2; return b })},
		{"unknown kind", []byte{wireVersion, 99, 10, 32, 0, 0, 12}},
		{"update trailing", append(slices.Clone(good), 0)},
		{"too many pools", mod(func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], maxPoolsPerMsg+1); return b })},
		{"more pools than sent", mod(func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], 2); return b })},
		{"pool /31", mod(func(b []byte) []byte { b[8] = 31; return b })},
		{"pool /7", mod(func(b []byte) []byte { b[8] = 7; return b })},
		{"pool /33", mod(func(b []byte) []byte { b[8] = 33; return b })},
		{"pool host bits", mod(func(b []byte) []byte { b[7] = 1; return b })},
		{"seed without peer", mod(func(b []byte) []byte { clear(b[17:23]); return b })},
		{"too many entries", mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[23:], maxEntries+1); return b })},
		{"more entries than sent", mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[23:], 3); return b })},
		{"truncated entry", good[:len(good)-1]},
		{"token outside pool", mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[ent0:], 0x0b000000); return b })},
		{"tokens out of order", mod(func(b []byte) []byte {
			copy(b[ent0+entryLen:ent0+entryLen+4], b[ent0:ent0+4])
			return b
		})},
		{"token without owner", mod(func(b []byte) []byte { clear(b[ent0+4 : ent0+10]); return b })},
		{"free beyond the pool", mod(func(b []byte) []byte { binary.BigEndian.PutUint32(b[ent0+14:], 1<<20+1); return b })},
		{"request truncated", claim[:len(claim)-1]},
		{"request trailing", append(slices.Clone(claim), 'x')},
		{"ident longer than sent", func() []byte { b := slices.Clone(claim); b[11] = 200; return b }()},
		{"claim outside pool", request{kind: kindClaim, pool: testPool, addr: netip.MustParseAddr("10.48.0.1")}.encode()},
		{"claim denial outside pool", request{kind: kindClaimDenied, pool: testPool, addr: netip.MustParseAddr("1.2.3.4")}.encode()},
		{"subnet outside pool", func() []byte { r := space; r.subnet = netip.MustParsePrefix("10.64.0.0/24"); return r.encode() }()},
		{"subnet larger than pool", func() []byte { r := space; r.subnet = netip.MustParsePrefix("10.32.0.0/11"); return r.encode() }()},
		{"subnet /31", func() []byte { r := space; r.subnet = netip.MustParsePrefix("10.32.0.0/31"); return r.encode() }()},
		{"request pool host bits", []byte{wireVersion, kindRingRequest, 10, 32, 0, 1, 12}},
		{"ring request trailing", []byte{wireVersion, kindRingRequest, 10, 32, 0, 0, 12, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := decodeMessage(c.msg)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode: %v, want ErrMalformed", err)
			}
		})
	}
	// Every truncation of valid messages fails cleanly.
	for _, m := range append([][]byte{encodeUpdate(testUpdate.pools)}, encodeAll(testRequests())...) {
		for i := range len(m) {
			if _, _, err := decodeMessage(m[:i]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("truncated to %d of %d bytes: %v", i, len(m), err)
			}
		}
	}
}

func encodeAll(rs []request) [][]byte {
	var out [][]byte
	for _, r := range rs {
		out = append(out, r.encode())
	}
	return out
}

func TestCheckPrefix(t *testing.T) {
	for _, c := range []struct {
		p    string
		want error
		ok   bool
	}{
		{"10.32.0.0/12", nil, true},
		{"10.0.0.0/8", nil, true},
		{"10.0.0.0/30", nil, true},
		{"10.0.0.0/31", ErrSubnetTooSmall, false},
		{"10.0.0.0/32", ErrSubnetTooSmall, false},
		{"10.0.0.0/7", nil, false},
		{"10.0.0.1/24", nil, false},
		{"fd00::/64", nil, false},
	} {
		err := checkPrefix("subnet", netip.MustParsePrefix(c.p))
		if (err == nil) != c.ok || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: %v", c.p, err)
		}
	}
	if err := checkPrefix("subnet", netip.Prefix{}); err == nil {
		t.Error("the zero prefix was accepted")
	}
	_ = mesh.UnknownPeerName
}

// TestWholeRing: a whole ring travels as its own kind, and a merge with a
// whole ring is whole.
func TestWholeRing(t *testing.T) {
	pu := testUpdate.pools[0]
	pu.whole = true
	b := encodeUpdate([]poolUpdate{pu})
	if b[1] != kindRing {
		t.Fatalf("kind %d", b[1])
	}
	u, _, err := decodeMessage(b)
	if err != nil || !u.pools[0].whole || !reflect.DeepEqual(u.pools[0], pu) {
		t.Fatalf("%+v %v", u, err)
	}
	// A message with a delta in it is not whole.
	if b := encodeUpdate([]poolUpdate{pu, testUpdate.pools[1]}); b[1] != kindUpdate {
		t.Fatalf("mixed message of kind %d", b[1])
	}
	delta := &update{pools: []poolUpdate{testUpdate.pools[0]}}
	if m := delta.Merge(&update{pools: []poolUpdate{pu}}).(*update); !m.pools[0].whole {
		t.Error("delta + whole is not whole")
	}
	if m := delta.Merge(delta).(*update); m.pools[0].whole {
		t.Error("delta + delta is whole")
	}
}
