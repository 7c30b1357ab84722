package ipam

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/weftnet/weft/internal/wire"
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

// decoder reads the fields of an IPAM message (wire.Decoder); every
// failure wraps ErrMalformed.
type decoder struct{ wire.Decoder }

// errTruncated is what a read past the end of a message records.
var errTruncated = fmt.Errorf("%w: truncated", ErrMalformed)

func newDecoder(b []byte) decoder { return decoder{wire.NewDecoder(b, errTruncated)} }

func (d *decoder) name() mesh.PeerName { return mesh.PeerName(d.U48()) }

func (d *decoder) addr() netip.Addr {
	if v := d.Take(4); v != nil {
		return netip.AddrFrom4([4]byte(v))
	}
	return netip.Addr{}
}

// prefix reads a pool or subnet prefix and checks it.
func (d *decoder) prefix() netip.Prefix {
	a := d.addr()
	bits := int(d.U8())
	if d.Err() != nil {
		return netip.Prefix{}
	}
	p := netip.PrefixFrom(a, bits)
	if err := checkPrefix("prefix", p); err != nil {
		d.Fail(fmt.Errorf("%w: %v", ErrMalformed, err))
	}
	return p
}

func (d *decoder) fail(format string, args ...any) {
	if d.Err() == nil {
		d.Fail(fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...))
	}
}

// decodeMessage parses any IPAM message: an update (u set) or a request.
func decodeMessage(b []byte) (u *update, r request, err error) {
	d := newDecoder(b)
	if v := d.U8(); d.Err() == nil && v != wireVersion {
		return nil, r, fmt.Errorf("%w: format version %d, this router speaks %d", ErrMalformed, v, wireVersion)
	}
	r.kind = d.U8()
	if d.Err() != nil {
		return nil, r, d.Err()
	}
	if r.kind == kindUpdate || r.kind == kindRing {
		u = d.update(r.kind == kindRing)
		if d.Err() == nil && d.Len() > 0 {
			d.fail("%d trailing bytes", d.Len())
		}
		return u, r, d.Err()
	}
	r.pool = d.prefix()
	switch r.kind {
	case kindSpaceRequest, kindSpaceDenied:
		r.subnet = d.prefix()
		if d.Err() == nil && (!r.pool.Contains(r.subnet.Addr()) || r.subnet.Bits() < r.pool.Bits()) {
			d.fail("subnet %s outside pool %s", r.subnet, r.pool)
		}
	case kindClaim, kindReclaim, kindClaimDenied, kindNotOwner:
		r.addr = d.addr()
		r.ident = string(d.Take(int(d.U8())))
		if d.Err() == nil && !r.pool.Contains(r.addr) {
			d.fail("address %s outside pool %s", r.addr, r.pool)
		}
	case kindRingRequest, kindClaimsDone:
	default:
		d.fail("unknown kind %d", r.kind)
	}
	if d.Err() == nil && d.Len() > 0 {
		d.fail("%d trailing bytes", d.Len())
	}
	return nil, r, d.Err()
}

func (d *decoder) update(whole bool) *update {
	n := int(d.U16())
	if n > maxPoolsPerMsg {
		d.fail("%d pools in one message (max %d)", n, maxPoolsPerMsg)
	}
	u := &update{}
	for i := 0; i < n && d.Err() == nil; i++ {
		p := poolUpdate{whole: whole}
		p.pool = d.prefix()
		p.seed.At = int64(d.U64())
		p.seed.By = d.name()
		cnt := int(d.U32())
		if d.Err() != nil {
			break
		}
		if p.seed.IsZero() {
			d.fail("pool %s: seed without a peer", p.pool)
			break
		}
		if cnt > maxEntries || cnt*entryLen > d.Len() {
			d.fail("pool %s: %d entries", p.pool, cnt)
			break
		}
		ps := spanOf(p.pool)
		p.ents = make([]entry, 0, cnt)
		for j := 0; j < cnt && d.Err() == nil; j++ {
			e := entry{start: uint64(d.U32()), owner: d.name(), version: d.U32(), free: uint64(d.U32())}
			switch {
			case d.Err() != nil:
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
