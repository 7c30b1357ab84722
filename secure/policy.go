package secure

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// CheckPasswordFlags compares the "password in use" flags of the two plain
// protocol headers. It returns nil when both agree, else
// ErrPeerRequiresPassword or ErrPeerHasNoPassword. When both use a password
// the handshake follows; when neither does, the connection is plain.
func CheckPasswordFlags(local, remote bool) error {
	switch {
	case remote && !local:
		return ErrPeerRequiresPassword
	case local && !remote:
		return ErrPeerHasNoPassword
	}
	return nil
}

// Reason turns an error from this package into the short reason shown by
// `weft status connections`: the standard text of the first sentinel the
// error wraps (for example "authentication failed: password mismatch"), or
// the error's own text.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	for _, s := range []error{
		ErrAuthentication, ErrPeerRequiresPassword, ErrPeerHasNoPassword,
		ErrUnsupportedVersion, ErrMalformedHandshake, ErrControlAuthentication,
	} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return err.Error()
}

// TrustedSubnets is the parsed --trusted-subnets list: peers whose
// underlay address is inside one of them may exchange data unencrypted
// (the control connection stays authenticated and encrypted).
type TrustedSubnets struct {
	prefixes []netip.Prefix
}

// ParseTrustedSubnets parses a comma-separated CIDR list; empty means none.
func ParseTrustedSubnets(s string) (TrustedSubnets, error) {
	var t TrustedSubnets
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return TrustedSubnets{}, fmt.Errorf("trusted subnet %q: %w", f, err)
		}
		t.prefixes = append(t.prefixes, p.Masked())
	}
	return t, nil
}

// Contains reports whether addr is inside a trusted subnet. IPv4-mapped
// IPv6 addresses match IPv4 subnets.
func (t TrustedSubnets) Contains(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range t.prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// String lists the subnets comma-separated, as parsed.
func (t TrustedSubnets) String() string {
	s := make([]string, len(t.prefixes))
	for i, p := range t.prefixes {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// EncryptData decides whether a connection's data plane is sealed: always
// when a password is in use, unless each side trusts the other's underlay
// address (both flags are exchanged over the authenticated control
// channel, so neither side can be talked into plain data by an attacker).
func EncryptData(password, weTrustPeer, peerTrustsUs bool) bool {
	return password && !(weTrustPeer && peerTrustsUs)
}
