package mesh

import (
	"errors"
	"net/netip"
	"slices"
	"time"

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
		ErrIncompatible,
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
	n.refused[key] = refusal{addr: addr, reason: reason, at: time.Now()}
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
