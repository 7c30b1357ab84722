package ipam

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/weftnet/weft/mesh"
)

// Wire format (docs/protocol.md, "IPAM"): every message starts with the
// format version and a kind. An update carries, per pool, the pool's
// prefix, its seed and ring entries sorted by start; the requests are
// unicasts between two routers.
const wireVersion = 1

const (
	kindUpdate       = 1  // ring entries (gossip, broadcast, or unicast to a borrower)
	kindSpaceRequest = 2  // please give me free space in a subnet
	kindSpaceDenied  = 3  // I have no free space in that subnet
	kindClaim        = 4  // please give me this one address
	kindClaimDenied  = 5  // that address is held here, by holder
	kindNotOwner     = 6  // I do not own that address (any more)
	kindRingRequest  = 7  // please send me your whole ring of this pool
	kindClaimsDone   = 8  // I adopted your ring and claimed all I hold: lift my quarantine
	kindRing         = 9  // whole rings: an update that carries every token its sender knows
	kindReclaim      = 10 // please give me this address, which I hold (our rings were seeded apart, or my range moved)
)

// Decoder bounds: a hostile peer cannot make us allocate more than a
// message's worth (the mesh bounds messages) or hold more pools. A ring
// only grows (tokens are never removed; each claim granted adds up to
// two), so maxEntries is as large as the mesh's default message limit
// (10 MiB) allows: a ring that outgrew it could no longer be sent or
// restored.
const (
	maxPoolsPerMsg = 64
	maxEntries     = 1 << 19
	maxIdentLen    = 255
	entryLen       = 4 + mesh.PeerNameLen + 4 + 4
)

// poolUpdate is the ring entries of one pool under one seed: the whole
// ring as its sender knew it, or only some entries (a delta). Only a
// whole ring may replace a ring: a delta lacks the tokens that end its
// ranges.
type poolUpdate struct {
	pool  netip.Prefix
	seed  Seed
	ents  []entry
	whole bool
}

// update is gossip data: ring entries of one or more pools. It implements
// mesh.GossipData.
type update struct{ pools []poolUpdate }

// Encode implements mesh.GossipData: one message per pool.
func (u *update) Encode() [][]byte {
	out := make([][]byte, 0, len(u.pools))
	for _, p := range u.pools {
		out = append(out, encodeUpdate([]poolUpdate{p}))
	}
	return out
}

// Merge implements mesh.GossipData: entries of the same pool and seed are
// merged token by token; the result is whole if either was (it holds
// every token of a whole ring).
func (u *update) Merge(o mesh.GossipData) mesh.GossipData {
	other, ok := o.(*update)
	if !ok || other == nil {
		return u
	}
	out := &update{pools: slices.Clone(u.pools)}
	for _, p := range other.pools {
		i := slices.IndexFunc(out.pools, func(q poolUpdate) bool { return q.pool == p.pool && q.seed == p.seed })
		if i < 0 {
			out.pools = append(out.pools, poolUpdate{pool: p.pool, seed: p.seed, ents: slices.Clone(p.ents), whole: p.whole})
			continue
		}
		r := ring{pool: spanOf(p.pool), ents: slices.Clone(out.pools[i].ents)}
		r.merge(p.ents)
		out.pools[i].ents = r.ents
		out.pools[i].whole = out.pools[i].whole || p.whole
	}
	return out
}

func appendPrefix(b []byte, p netip.Prefix) []byte {
	a := p.Addr().As4()
	return append(append(b, a[:]...), byte(p.Bits()))
}

func byStart(x, y entry) int { return int(int64(x.start) - int64(y.start)) }

// encodeUpdate encodes pool updates as one message: a whole-ring message
// (kindRing) when every pool in it is whole, else an update.
func encodeUpdate(pools []poolUpdate) []byte {
	size := 4
	kind := byte(kindRing)
	for _, p := range pools {
		size += 5 + 14 + 4 + len(p.ents)*entryLen
		if !p.whole {
			kind = kindUpdate
		}
	}
	b := make([]byte, 0, size)
	b = append(b, wireVersion, kind)
	b = binary.BigEndian.AppendUint16(b, uint16(len(pools)))
	var name [mesh.PeerNameLen]byte
	for _, p := range pools {
		b = appendPrefix(b, p.pool)
		b = binary.BigEndian.AppendUint64(b, uint64(p.seed.At))
		p.seed.By.Put(name[:])
		b = append(b, name[:]...)
		ents := p.ents
		if !slices.IsSortedFunc(ents, byStart) {
			ents = slices.SortedFunc(slices.Values(ents), byStart)
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(ents)))
		for _, e := range ents {
			b = binary.BigEndian.AppendUint32(b, uint32(e.start))
			e.owner.Put(name[:])
			b = append(b, name[:]...)
			b = binary.BigEndian.AppendUint32(b, e.version)
			b = binary.BigEndian.AppendUint32(b, uint32(e.free))
		}
	}
	return b
}

// request is any message other than an update.
type request struct {
	kind   byte
	pool   netip.Prefix
	subnet netip.Prefix // space request and denial
	addr   netip.Addr   // claim, claim denial, not owner
	ident  string       // claim: who wants it; claim denial: who holds it
}

func (r request) encode() []byte {
	b := make([]byte, 0, 2+5+5+1+len(r.ident))
	b = append(b, wireVersion, r.kind)
	b = appendPrefix(b, r.pool)
	switch r.kind {
	case kindSpaceRequest, kindSpaceDenied:
		b = appendPrefix(b, r.subnet)
	case kindClaim, kindReclaim, kindClaimDenied, kindNotOwner:
		a := r.addr.As4()
		b = append(b, a[:]...)
		id := r.ident
		if len(id) > maxIdentLen {
			id = id[:maxIdentLen]
		}
		b = append(b, byte(len(id)))
		b = append(b, id...)
	}
	return b
}

// decoder reads big-endian fields, remembering the first error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.err = fmt.Errorf("%w: truncated", ErrMalformed)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() byte {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if v := d.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if v := d.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (d *decoder) name() mesh.PeerName {
	if v := d.take(mesh.PeerNameLen); v != nil {
		return mesh.PeerNameFrom(v)
	}
	return mesh.UnknownPeerName
}

func (d *decoder) addr() netip.Addr {
	if v := d.take(4); v != nil {
		return netip.AddrFrom4([4]byte(v))
	}
	return netip.Addr{}
}

// prefix reads a pool or subnet prefix and checks it.
func (d *decoder) prefix() netip.Prefix {
	a := d.addr()
	bits := int(d.u8())
	if d.err != nil {
		return netip.Prefix{}
	}
	p := netip.PrefixFrom(a, bits)
	if err := checkPrefix("prefix", p); err != nil {
		d.err = fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return p
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
}

// decodeMessage parses any IPAM message: an update (u set) or a request.
func decodeMessage(b []byte) (u *update, r request, err error) {
	d := decoder{b: b}
	if v := d.u8(); d.err == nil && v != wireVersion {
		return nil, r, fmt.Errorf("%w: format version %d, this router speaks %d", ErrMalformed, v, wireVersion)
	}
	r.kind = d.u8()
	if d.err != nil {
		return nil, r, d.err
	}
	if r.kind == kindUpdate || r.kind == kindRing {
		u = d.update(r.kind == kindRing)
		if d.err == nil && len(d.b) > 0 {
			d.fail("%d trailing bytes", len(d.b))
		}
		return u, r, d.err
	}
	r.pool = d.prefix()
	switch r.kind {
	case kindSpaceRequest, kindSpaceDenied:
		r.subnet = d.prefix()
		if d.err == nil && (!r.pool.Contains(r.subnet.Addr()) || r.subnet.Bits() < r.pool.Bits()) {
			d.fail("subnet %s outside pool %s", r.subnet, r.pool)
		}
	case kindClaim, kindReclaim, kindClaimDenied, kindNotOwner:
		r.addr = d.addr()
		r.ident = string(d.take(int(d.u8())))
		if d.err == nil && !r.pool.Contains(r.addr) {
			d.fail("address %s outside pool %s", r.addr, r.pool)
		}
	case kindRingRequest, kindClaimsDone:
	default:
		d.fail("unknown kind %d", r.kind)
	}
	if d.err == nil && len(d.b) > 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return nil, r, d.err
}

func (d *decoder) update(whole bool) *update {
	n := int(d.u16())
	if n > maxPoolsPerMsg {
		d.fail("%d pools in one message (max %d)", n, maxPoolsPerMsg)
	}
	u := &update{}
	for i := 0; i < n && d.err == nil; i++ {
		p := poolUpdate{whole: whole}
		p.pool = d.prefix()
		p.seed.At = int64(d.u64())
		p.seed.By = d.name()
		cnt := int(d.u32())
		if d.err != nil {
			break
		}
		if p.seed.IsZero() {
			d.fail("pool %s: seed without a peer", p.pool)
			break
		}
		if cnt > maxEntries || cnt*entryLen > len(d.b) {
			d.fail("pool %s: %d entries", p.pool, cnt)
			break
		}
		ps := spanOf(p.pool)
		p.ents = make([]entry, 0, cnt)
		for j := 0; j < cnt && d.err == nil; j++ {
			e := entry{start: uint64(d.u32()), owner: d.name(), version: d.u32(), free: uint64(d.u32())}
			switch {
			case d.err != nil:
			case !ps.contains(e.start):
				d.fail("pool %s: token %s outside it", p.pool, u2a(e.start))
			case j > 0 && e.start <= p.ents[j-1].start:
				d.fail("pool %s: tokens out of order", p.pool)
			case e.owner == mesh.UnknownPeerName:
				d.fail("pool %s: token %s without owner", p.pool, u2a(e.start))
			case e.free > ps.size():
				d.fail("pool %s: token %s claims %d free addresses", p.pool, u2a(e.start), e.free)
			}
			p.ents = append(p.ents, e)
		}
		u.pools = append(u.pools, p)
	}
	return u
}
