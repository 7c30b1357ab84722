package router

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/weftnet/weft/mesh"
)

// Confirmed path changes of unencrypted connections.
//
// An unencrypted connection is bound to the peer's data address (fromPeer),
// because nothing else authenticates its datagrams. When the peer's address
// changes (NAT rebinding), its heartbeats arrive from a new address; the
// only authenticated channel is then the control connection. So a
// heartbeat with the connection's ConnUID from another address does not
// move the path: it makes the router send a path challenge (a random
// nonce) to that address, and the path moves only when the peer echoes the
// nonce over the control connection. A stranger at the new address
// receives the nonce but cannot put it on the peer's control connection;
// the peer echoes only challenges that come from its own bound address for
// the connection. At most one challenge per connection per
// challengeInterval, so forged heartbeats cannot make a router a reflector.

const (
	// challengeInterval is the least time between two path challenges
	// of one connection.
	challengeInterval = time.Second
	// challengeLifetime is how long the echo of a challenge is accepted.
	challengeLifetime = 5 * time.Second

	pathChallengeBodyLen = 8 + 8      // ConnUID, nonce
	ctlPathEcho          = 2          // control: "your challenge reached me", with its nonce
	ctlPathEchoLen       = ctlLen + 8 // type, ConnUID, nonce
)

// pathChallenge is a challenge sent to a candidate address of the peer.
type pathChallenge struct {
	addr  netip.AddrPort
	nonce uint64
	at    int64 // unix nanos
}

// challengeFrom returns a fresh nonce to send in a path challenge to from,
// after a heartbeat with the connection's ConnUID (body) arrived from
// there, or false when none is to be sent: the body is not such a
// heartbeat, the connection has no data address yet, or a challenge went
// out less than challengeInterval ago. Readers.
func (c *conn) challengeFrom(body []byte, from netip.AddrPort, now int64) (uint64, bool) {
	if uid, err := parseHeartbeat(body); err != nil || uid != c.uid || c.addr.Load() == nil {
		return 0, false
	}
	old := c.challenge.Load()
	if old != nil && now-old.at < int64(challengeInterval) {
		return 0, false
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, false
	}
	p := &pathChallenge{addr: from, nonce: binary.BigEndian.Uint64(b[:]), at: now}
	if !c.challenge.CompareAndSwap(old, p) {
		return 0, false // another reader sent one
	}
	c.r.log.Debug("peer heartbeat from a new address: challenging it", "peer", c.peer, "addr", from)
	return p.nonce, true
}

// gotChallenge handles a path challenge body that came from the peer's
// bound address: the timer echoes its nonce over the control connection.
// Readers.
func (c *conn) gotChallenge(body []byte) bool {
	uid, nonce, err := parsePathChallenge(body)
	if err != nil || uid != c.uid {
		return false
	}
	c.echo.Store(nonce)
	c.r.wake()
	return true
}

// sendEcho sends the nonce of the last challenge that reached us back
// over the control connection. Timer goroutine only.
func (c *conn) sendEcho() {
	nonce := c.echo.Swap(0)
	if nonce == 0 {
		return
	}
	var msg [ctlPathEchoLen]byte
	msg[0] = ctlPathEcho
	binary.BigEndian.PutUint64(msg[ctlUIDStart:], c.uid)
	binary.BigEndian.PutUint64(msg[ctlLen:], nonce)
	if err := c.p.SendControl(msg[:]); err != nil {
		c.r.log.Debug("send control", "peer", c.peer, "err", err)
	}
}

// gotEcho moves the path to the challenged address when msg (a
// ctlPathEcho of the right length and ConnUID) echoes the live challenge.
func (c *conn) gotEcho(msg []byte) {
	p := c.challenge.Load()
	if p == nil || binary.BigEndian.Uint64(msg[ctlLen:]) != p.nonce ||
		c.r.cfg.Now().UnixNano()-p.at > int64(challengeLifetime) {
		c.r.log.Debug("ignoring path echo", "peer", c.peer)
		return
	}
	if !c.challenge.CompareAndSwap(p, nil) {
		return
	}
	addr := p.addr
	old := c.addr.Swap(&addr)
	c.r.log.Info("peer address changed, confirmed over the control connection", "peer", c.peer, "addr", addr, "was", old)
}

// putPathChallenge writes a whole path challenge datagram into b and
// returns its length.
func putPathChallenge(b []byte, sender mesh.PeerName, counter, uid, nonce uint64) int {
	PutHeader(b, Header{Type: TypePathChallenge, Sender: sender, Counter: counter})
	binary.BigEndian.PutUint64(b[HeaderLen:], uid)
	binary.BigEndian.PutUint64(b[HeaderLen+8:], nonce)
	n := HeaderLen + pathChallengeBodyLen
	PutTag(b[n:])
	return n + TagLen
}

// parsePathChallenge returns the ConnUID and nonce of a path challenge
// body.
func parsePathChallenge(body []byte) (uid, nonce uint64, err error) {
	if len(body) != pathChallengeBodyLen {
		return 0, 0, fmt.Errorf("parse path challenge: %d bytes: %w", len(body), ErrBadBody)
	}
	return binary.BigEndian.Uint64(body), binary.BigEndian.Uint64(body[8:]), nil
}
