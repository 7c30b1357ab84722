package ipam

import (
	"fmt"
	"net/netip"
)

// An address inside a pool is handled as its 32-bit value; pools and
// subnets as half-open spans of those values. Pools are IPv4 prefixes of
// /8 to /30, so a span's end fits in 64 bits without overflow.

// MinPoolBits and MaxPoolBits bound the prefix length of a pool (and of a
// subnet to allocate in): at most 2^24 addresses, at least 4.
const (
	MinPoolBits = 8
	MaxPoolBits = 30
)

type span struct{ lo, hi uint64 } // [lo, hi)

func (s span) size() uint64           { return s.hi - s.lo }
func (s span) contains(a uint64) bool { return a >= s.lo && a < s.hi }
func (s span) overlaps(o span) bool   { return s.lo < o.hi && o.lo < s.hi }
func (s span) intersect(o span) span  { return span{max(s.lo, o.lo), min(s.hi, o.hi)} }
func (s span) empty() bool            { return s.hi <= s.lo }
func (s span) within(o span) bool     { return s.lo >= o.lo && s.hi <= o.hi }
func (s span) String() string         { return fmt.Sprintf("%s-%s", u2a(s.lo), u2a(s.hi-1)) }
func spanOf(p netip.Prefix) span {
	lo := a2u(p.Masked().Addr())
	return span{lo, lo + 1<<(32-p.Bits())}
}
func u2a(v uint64) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
func a2u(a netip.Addr) uint64 {
	b := a.As4()
	return uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])
}

// checkPrefix validates a pool or subnet prefix.
func checkPrefix(what string, p netip.Prefix) error {
	if !p.IsValid() || !p.Addr().Is4() {
		return fmt.Errorf("%s %s: %w: want an IPv4 CIDR like 10.32.0.0/12", what, p, ErrBadPrefix)
	}
	if p.Bits() > MaxPoolBits {
		return fmt.Errorf("%s %s: %w: it has %d addresses, at least 4 are needed (use /%d or shorter)", what, p, ErrSubnetTooSmall, 1<<(32-p.Bits()), MaxPoolBits)
	}
	if p.Bits() < MinPoolBits {
		return fmt.Errorf("%s %s: %w: too large, at most a /%d", what, p, ErrBadPrefix, MinPoolBits)
	}
	if p != p.Masked() {
		return fmt.Errorf("%s %s: %w: host bits are set; did you mean %s?", what, p, ErrBadPrefix, p.Masked())
	}
	return nil
}

// usable is the part of a subnet handed out: all but its network and
// broadcast addresses.
func usable(subnet span) span { return span{subnet.lo + 1, subnet.hi - 1} }
