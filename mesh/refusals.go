package mesh

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/weftnet/weft/secure"
)

// maxRefusals bounds how many refused inbound addresses status remembers.
const maxRefusals = 32

// refusal is an inbound connection refused during its handshake (wrong
// or missing password, protocol version, incompatible features),
// remembered by remote IP so that status shows why a peer cannot join.
// The dialling side retries with backoff, which refreshes the entry.
type refusal struct {
	addr   netip.AddrPort
	reason string
	at     time.Time
}

// isRefusal reports whether err refused a peer during the handshake for
// a reason its operator must fix (as opposed to a dropped connection).
func isRefusal(err error) bool {
	for _, s := range []error{
		secure.ErrAuthentication, secure.ErrPeerRequiresPassword, secure.ErrPeerHasNoPassword,
		secure.ErrUnsupportedVersion, secure.ErrMalformedHandshake, ErrVersionMismatch,
		ErrIncompatible, ErrDuplicateName,
	} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// incompatibleError is a refusal by Config.CheckPeer: it is
// ErrIncompatible, and wraps the checker's error.
type incompatibleError struct{ err error }

func (e *incompatibleError) Error() string        { return ErrIncompatible.Error() + ": " + e.err.Error() }
func (e *incompatibleError) Is(target error) bool { return target == ErrIncompatible }
func (e *incompatibleError) Unwrap() error        { return e.err }

// reason is the short reason status shows for err: the checker's own text
// for a CheckPeer refusal, else secure.Reason.
func reason(err error) string {
	if ie, ok := errors.AsType[*incompatibleError](err); ok {
		return ie.err.Error()
	}
	return secure.Reason(err)
}

// maxCloseReason bounds the peer's close reason we keep and log.
const maxCloseReason = 256

// peerRefusal is a refusal the peer told us in its close message, for a
// reason it alone could see (ErrDuplicateName): it is that error, and
// carries the peer's text.
type peerRefusal struct {
	is   error
	text string
}

func (e *peerRefusal) Error() string        { return "refused by peer: " + e.text }
func (e *peerRefusal) Is(target error) bool { return target == e.is }

// closedByPeer is the error of a connection the peer closed with text,
// cut to maxCloseReason bytes and stripped of control characters.
func closedByPeer(text []byte) error {
	s := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(string(text[:min(len(text), maxCloseReason)]), "?"))
	if strings.HasPrefix(s, ErrDuplicateName.Error()) {
		return &peerRefusal{is: ErrDuplicateName, text: s}
	}
	return fmt.Errorf("closed by peer: %s", s)
}

// refusalTTL is how long a refusal is shown without a new attempt: longer
// than the peer's longest backoff, so a peer that keeps trying stays
// visible.
func (n *Node) refusalTTL() time.Duration {
	return 2*n.cfg.MaxBackoff + n.cfg.HandshakeTimeout
}

// noteRefusal remembers an inbound refusal for status.
func (n *Node) noteRefusal(addr netip.AddrPort, reason string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.refused == nil {
		n.refused = map[netip.Addr]refusal{}
	}
	key := addr.Addr().Unmap()
	if _, ok := n.refused[key]; !ok && len(n.refused) >= maxRefusals {
		var oldest netip.Addr
		var at time.Time
		for k, r := range n.refused {
			if at.IsZero() || r.at.Before(at) {
				oldest, at = k, r.at
			}
		}
		delete(n.refused, oldest)
	}
	n.refused[key] = refusal{addr: addr, reason: reason, at: n.cfg.Clock.Now()}
}

// forgetRefusalLocked drops the refusal of an address that now connected.
func (n *Node) forgetRefusalLocked(addr netip.AddrPort) {
	delete(n.refused, addr.Addr().Unmap())
}

// refusalsLocked lists the refusals still shown, oldest address first,
// dropping expired ones.
func (n *Node) refusalsLocked(now time.Time) []ConnectionStatus {
	var out []ConnectionStatus
	for k, r := range n.refused {
		if now.Sub(r.at) > n.refusalTTL() {
			delete(n.refused, k)
			continue
		}
		out = append(out, ConnectionStatus{Address: r.addr.String(), State: StateFailed, Reason: r.reason})
	}
	slices.SortFunc(out, func(a, b ConnectionStatus) int {
		return netip.MustParseAddrPort(a.Address).Compare(netip.MustParseAddrPort(b.Address))
	})
	return out
}
