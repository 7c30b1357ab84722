package nameserver

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/weftnet/weft/mesh"
)

// MaxTargetLen is the longest target id a record may carry.
const MaxTargetLen = 255

// MaxVersion is the highest version a record may carry at all; the decoder
// refuses higher ones. It is far above any VersionCeiling (the Unix time in
// milliseconds plus a bound), so that Version+1 never wraps.
const MaxVersion = 1 << 62

// DefaultVersionAhead is how far, in milliseconds of the receiving store's
// clock, a gossiped version may be above the current Unix time in
// milliseconds (StoreConfig.VersionAhead).
const DefaultVersionAhead = 24 * time.Hour

// VersionCeiling returns the highest version a store whose clock reads now
// accepts from gossip: the Unix time in milliseconds plus ahead. Versions
// count an owner's changes from 1, so an honest record stays many orders of
// magnitude below it; a forged one (a member speaking for another peer, which
// nothing stops before records are signed) can reach it, but the owner
// answers with that version plus one, which the same stores accept one
// millisecond later. The ceiling only grows with time, so nobody can push a
// record to a version its owner cannot go beyond, nor towards overflow.
func VersionCeiling(now time.Time, ahead time.Duration) uint64 {
	ms := now.UnixMilli() + ahead.Milliseconds()
	if ms < 1 {
		return 1
	}
	return min(uint64(ms), MaxVersion)
}

// Record is one name-to-address binding, owned by the peer that registered it.
// Only the owner changes a record; every change raises Version. A removal is
// a record with Tombstone set, so that it travels by gossip like an addition.
type Record struct {
	// Name is the fully qualified name with a trailing dot, in the case it
	// was registered with. Matching ignores case.
	Name string
	// Addr is the IPv4 address the name resolves to.
	Addr netip.Addr
	// Owner is the peer that registered the record.
	Owner mesh.PeerName
	// Target is the id of what the address belongs to ("netns:c1",
	// "pid:42", a container id), or empty for a name added by hand.
	Target string
	// Version counts the owner's changes to this record, starting at 1.
	// Stores accept from gossip only versions up to VersionCeiling, so it
	// cannot be pinned or made to overflow (docs/dns.md).
	Version uint64
	// Tombstone marks a removed record.
	Tombstone bool
	// Sig is the owner's signature over the gossiped fields (Name, Addr,
	// Owner, Target, Version, Tombstone; see SignatureContext), made by
	// StoreConfig.Sign and checked by StoreConfig.Verify.
	Sig []byte
	// Changed is the local time this store last changed the record. It is
	// not gossiped: each store ages tombstones by its own clock.
	Changed time.Time
}

// recordKey identifies a record: the owner changes it, nobody else does.
type recordKey struct {
	name   string // lower-cased
	addr   netip.Addr
	owner  mesh.PeerName
	target string
}

func (r *Record) key() recordKey {
	return recordKey{name: strings.ToLower(r.Name), addr: r.Addr, owner: r.Owner, target: r.Target}
}

// supersedes reports whether r should replace old, which has the same key.
// Higher versions win; on equal versions a tombstone wins; the remaining tie
// (only possible when an owner restarted and reused a version) is broken on
// the displayed name so that every store picks the same record.
func (r *Record) supersedes(old *Record) bool {
	if r.Version != old.Version {
		return r.Version > old.Version
	}
	if r.Tombstone != old.Tombstone {
		return r.Tombstone
	}
	return r.Name > old.Name
}

// Equal reports whether r and o are the same record, signature included
// (Changed, which is local, aside).
func (r Record) Equal(o Record) bool {
	return r.Name == o.Name && r.Addr == o.Addr && r.Owner == o.Owner && r.Target == o.Target &&
		r.Version == o.Version && r.Tombstone == o.Tombstone && bytes.Equal(r.Sig, o.Sig)
}

// sameState reports whether r and o carry the same gossiped state.
func (r *Record) sameState(o *Record) bool {
	return r.Version == o.Version && r.Tombstone == o.Tombstone && r.Name == o.Name
}

// String formats the record for logs.
func (r Record) String() string {
	state := "live"
	if r.Tombstone {
		state = "tombstone"
	}
	return fmt.Sprintf("%s %s owner=%s target=%q v%d %s", r.Name, r.Addr, r.Owner, r.Target, r.Version, state)
}

// validate checks what a record from the wire or the API must satisfy.
func (r *Record) validate() error {
	if err := checkName(r.Name); err != nil {
		return err
	}
	if !r.Addr.Is4() || r.Addr.IsUnspecified() {
		return fmt.Errorf("%w: %s", ErrInvalidAddr, r.Addr)
	}
	if r.Owner == mesh.UnknownPeerName {
		return fmt.Errorf("%w: record without owner", ErrMalformed)
	}
	if r.Version == 0 || r.Version > MaxVersion {
		return fmt.Errorf("%w: record version %d", ErrMalformed, r.Version)
	}
	return checkTarget(r.Target)
}

// checkName accepts a fully qualified DNS name (trailing dot) other than the root.
func checkName(name string) error {
	if name == "." || !dns.IsFqdn(name) {
		return fmt.Errorf("%w: %q (want a fully qualified name)", ErrInvalidName, name)
	}
	if len(name) > 254 {
		return fmt.Errorf("%w: %q is longer than 253 characters", ErrInvalidName, name)
	}
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if err := checkLabel(label); err != nil {
			return fmt.Errorf("%w: %q: %v", ErrInvalidName, name, err)
		}
	}
	return nil
}

// checkLabel accepts a host name label as RFC 1123 has it (letters,
// digits and '-', 1 to 63 of them, not starting or ending with '-'),
// and '_' as well, which Docker's container names (web_1) and service
// names (_http._tcp) use. miekg/dns's IsDomainName is not enough: it
// accepts spaces, newlines and any punctuation, which end up in
// one-line-per-record listings and in responses.
func checkLabel(label string) error {
	switch {
	case label == "":
		return errors.New("empty label (two dots in a row)")
	case len(label) > 63:
		return fmt.Errorf("label %q is longer than 63 characters", label)
	case label[0] == '-' || label[len(label)-1] == '-':
		return fmt.Errorf("label %q starts or ends with '-'", label)
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("label %q has %q: want letters, digits, '-' and '_'", label, string(rune(c)))
		}
	}
	return nil
}

// ValidateName checks a DNS name given by a user (`attach --name`,
// `dns-add -h`), with or without the trailing dot, independently of
// the domain: its labels as checkName wants them.
func ValidateName(name string) error {
	if name == "" || name == "." {
		return fmt.Errorf("%w: empty name", ErrInvalidName)
	}
	return checkName(dns.Fqdn(name))
}

func checkTarget(target string) error {
	if len(target) > MaxTargetLen {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidTarget, MaxTargetLen)
	}
	for i := 0; i < len(target); i++ {
		if c := target[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("%w: %q has a space or non-printable byte", ErrInvalidTarget, target)
		}
	}
	return nil
}

// NormalizeDomain returns domain lower-cased with a trailing dot
// ("Weft.Local" gives "weft.local."), or an error if it is not a valid name.
func NormalizeDomain(domain string) (string, error) {
	d := strings.ToLower(dns.Fqdn(strings.TrimSpace(domain)))
	if err := checkName(d); err != nil {
		return "", fmt.Errorf("DNS domain: %w", err)
	}
	return d, nil
}

// QualifyName turns a name given by a user into a fully qualified name inside
// domain (as returned by NormalizeDomain), keeping its case: a single label
// ("c1") gets the domain appended, a trailing dot is optional. A name outside
// the domain gives ErrOutsideDomain.
func QualifyName(name, domain string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || name == "." {
		return "", fmt.Errorf("%w: empty name", ErrInvalidName)
	}
	fq := dns.Fqdn(name)
	if dns.CountLabel(fq) == 1 {
		fq += domain
	}
	if err := checkName(fq); err != nil {
		return "", err
	}
	lower := strings.ToLower(fq)
	if lower == domain || !dns.IsSubDomain(domain, lower) {
		return "", fmt.Errorf("%w: %q is not inside %q", ErrOutsideDomain, name, domain)
	}
	return fq, nil
}
