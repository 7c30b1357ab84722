package mesh

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

const sendQueueLen = 1024

// conn is one control connection. Its reader goroutine runs runConn; its
// writer goroutine runs writeLoop.
type conn struct {
	node       *Node
	nc         net.Conn
	outbound   bool
	remoteAddr netip.AddrPort
	tgt        *target // the target we dialled, nil for inbound

	// Set by the reader goroutine during setup; read by others only once
	// the connection is registered (under Node.mu).
	ch      msgChannel
	remote  features
	connUID uint64
	since   time.Time
	oc      OverlayConnection // also guarded by mu: close may run during setup

	established atomic.Bool
	sendq       chan []byte
	done        chan struct{}
	closeOnce   sync.Once
	mu          sync.Mutex
	err         error // why the connection closed
	closed      bool  // close has run
	writing     bool  // registered: the writer goroutine owns writes
	rejectErr   error // set by rejectWith

	// Owned by the reader goroutine.
	topoBudget  tokenBucket // topology entries we check for this connection
	lastTopoLog time.Time   // when a refused entry from it was last logged
}

// close ends the connection with err (the first error wins).
func (c *conn) close(err error) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.err = err
		c.closed = true
		oc := c.oc
		c.mu.Unlock()
		close(c.done)
		c.nc.Close()
		if oc != nil {
			oc.Stop()
		}
	})
}

// closeErr returns the error the connection was closed with.
func (c *conn) closeErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// send queues a whole message (tag byte first) without blocking. A full
// queue closes the connection.
func (c *conn) send(msg []byte) error {
	select {
	case <-c.done:
		return ErrConnClosed
	default:
	}
	select {
	case c.sendq <- msg:
		return nil
	default:
		c.close(ErrSendQueueFull)
		return ErrSendQueueFull
	}
}

// runConn handshakes a new TCP connection, registers it and reads from it
// until it fails. It runs on the connection's reader goroutine. slot is
// the pre-authentication slot of an inbound connection (nil for
// outbound), released once the handshake is over.
func (n *Node) runConn(nc net.Conn, tgt *target, slot *preauthSlot) {
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetLinger(0)
		tc.SetNoDelay(true)
	}
	c := &conn{
		node: n, nc: nc, outbound: tgt != nil, tgt: tgt,
		remoteAddr: addrPortOf(nc.RemoteAddr()),
		sendq:      make(chan []byte, sendQueueLen),
		done:       make(chan struct{}),
		topoBudget: tokenBucket{burst: n.cfg.MaxPeers, every: time.Second / time.Duration(n.cfg.TopologyBudget)},
	}
	defer slot.release()
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		nc.Close()
		n.endAttempt(tgt, nil, ErrStopped, time.Time{})
		return
	}
	n.all[c] = struct{}{}
	n.mu.Unlock()

	registered, err := n.setupConn(c, slot)
	if err == nil {
		n.wg.Add(1)
		go c.writeLoop()
		c.oc.Confirm()
		n.sendAllGossip(c)
		err = c.readLoop()
	}
	c.close(err)
	err = c.closeErr()
	n.mu.Lock()
	delete(n.all, c)
	if registered && n.conns[c.remote.Name] == c {
		delete(n.conns, c.remote.Name)
		n.localChangedLocked()
	}
	n.mu.Unlock()
	switch {
	case isRefusal(err):
		// Refused by us, or by the peer after we registered it (a
		// duplicate peer name only the peer could see).
		n.log.Warn("connection refused", "addr", c.remoteAddr.String(), "outbound", c.outbound, "reason", reason(err), "err", err)
		n.refusals.count(err)
		if !c.outbound {
			n.noteRefusal(c.remoteAddr, reason(err))
		}
	case registered:
		n.log.Info("connection closed", "peer", c.remote.Name.String(), "addr", c.remoteAddr.String(), "err", err)
	default:
		n.log.Debug("connection failed", "addr", c.remoteAddr.String(), "err", err)
	}
	var peer *PeerName
	if c.remote.Name != UnknownPeerName {
		peer = &c.remote.Name
	}
	n.endAttempt(tgt, peer, err, c.since)
}

// setupConn runs the handshake and the overlay preparation and registers
// the connection. registered reports whether it was added to n.conns.
// The pre-authentication slot is released as soon as the handshake ends.
func (n *Node) setupConn(c *conn, slot *preauthSlot) (registered bool, err error) {
	nonce, err := randomUint64()
	if err != nil {
		return false, err
	}
	extra := maps.Clone(n.cfg.Features)
	if extra == nil {
		extra = map[string]string{}
	}
	extra[featTopoSummary] = "1"
	local := features{NickName: n.cfg.NickName, UID: n.uid, ConnNonce: nonce, DataPort: n.cfg.DataPort, Extra: extra}
	res, err := handshake(c.nc, handshakeConfig{
		local:     local,
		identity:  n.cfg.Identity,
		header:    header{minVersion: ProtocolMinVersion, maxVersion: ProtocolMaxVersion},
		psk:       n.cfg.PSK,
		initiator: c.outbound,
		trustPeer: n.cfg.TrustedSubnets.Contains(c.remoteAddr.Addr()),
		rekey:     n.cfg.DataRekey,
		timeout:   n.cfg.HandshakeTimeout,
		maxMsg:    n.cfg.MaxMessageSize,
		clock:     n.cfg.Clock,
	})
	slot.release()
	if err != nil {
		return false, err
	}
	c.ch, c.remote, c.connUID = res.ch, res.remote, nonce^res.remote.ConnNonce
	if c.remote.Name == n.cfg.Name {
		if c.remote.UID != n.uid {
			err := fmt.Errorf("%w %s: %q at %s uses it too (we are %q)", ErrDuplicateName, n.cfg.Name, c.remote.NickName, c.remoteAddr, n.cfg.NickName)
			c.rejectWith(err)
			return false, err
		}
		return false, ErrConnectToSelf
	}
	if err := n.checkPeer(c.remote); err != nil {
		c.rejectWith(err)
		return false, err
	}
	oc, err := n.cfg.Overlay.PrepareConnection(OverlayConnectionParams{
		LocalPeer: n.cfg.Name, RemotePeer: c.remote.Name, RemoteNickName: c.remote.NickName,
		Outbound: c.outbound, ConnUID: c.connUID, RemoteAddr: c.remoteAddr,
		RemoteDataPort: c.remote.DataPort, SendControl: c.sendControl,
		Keys: res.keys, ControlEncrypted: res.encrypted, RemoteFeatures: maps.Clone(c.remote.Extra),
	})
	if err != nil {
		return false, fmt.Errorf("prepare data path: %w", err)
	}
	c.mu.Lock()
	closed := c.closed
	if !closed {
		c.oc = oc
	}
	c.mu.Unlock()
	if closed {
		oc.Stop()
		return false, c.closeErr()
	}
	old, err := n.register(c)
	if old != nil {
		old.rejectWith(fmt.Errorf("%w %s: replaced", ErrDuplicate, c.remote.Name))
	}
	if err != nil {
		c.rejectWith(err)
		return false, err
	}
	return true, nil
}

// checkPeer runs Config.CheckPeer on the remote features, without the
// keys the mesh sets itself. A refusal is an *incompatibleError.
func (n *Node) checkPeer(f features) error {
	if n.cfg.CheckPeer == nil {
		return nil
	}
	remote := make(map[string]string, len(f.Extra))
	maps.Copy(remote, f.Extra)
	delete(remote, featTrustsPeer)
	delete(remote, featTopoSummary)
	if err := n.cfg.CheckPeer(f.Name, f.NickName, remote); err != nil {
		return &incompatibleError{err}
	}
	return nil
}

// register adds c to the registered connections unless it is a duplicate
// or over the limit. Of two connections to the same peer both ends keep
// the same one: a connection from a restarted peer replaces the old one;
// otherwise the one dialled by the lower name wins, then the lower ConnUID.
// The replaced connection, if any, is returned for the caller to close.
func (n *Node) register(c *conn) (replaced *conn, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return nil, ErrStopped
	}
	name := c.remote.Name
	old := n.conns[name]
	if old == nil && !c.outbound && n.cfg.ConnLimit > 0 && len(n.conns) >= n.cfg.ConnLimit {
		return nil, fmt.Errorf("%w (limit %d)", ErrConnLimit, n.cfg.ConnLimit)
	}
	if old != nil {
		if old.remote.UID == c.remote.UID && !n.better(c, old) {
			return nil, fmt.Errorf("%w %s", ErrDuplicate, name)
		}
		if old.remote.UID != c.remote.UID && !sameHost(old, c) {
			// Not a restart of the peer we hold: another router with
			// its name. Keep the live connection, refuse the newcomer.
			return nil, fmt.Errorf("%w %s: already connected to %q at %s; refusing %q at %s",
				ErrDuplicateName, name, old.remote.NickName, old.remoteAddr, c.remote.NickName, c.remoteAddr)
		}
	}
	c.since = n.cfg.Clock.Now()
	c.mu.Lock()
	c.writing = true // from now on only the writer goroutine writes
	c.mu.Unlock()
	n.conns[name] = c
	n.forgetRefusalLocked(c.remoteAddr)
	if c.tgt != nil {
		c.tgt.peer, c.tgt.state, c.tgt.err = name, "", nil
	}
	if e, ok := n.topo.peers[name]; !ok || e.UID != c.remote.UID {
		// A new peer or a new incarnation: show it until its own gossip arrives.
		// It is unsigned (version 0), never gossiped, and replaced by
		// the peer's first signed entry.
		n.topo.merge([]peerEntry{{Name: name, Key: c.remote.Key, NickName: c.remote.NickName, UID: c.remote.UID}})
	}
	n.localChangedLocked()
	return old, nil
}

// better reports whether a should be kept over b (same remote peer).
func (n *Node) better(a, b *conn) bool {
	dialer := func(c *conn) PeerName {
		if c.outbound {
			return n.cfg.Name
		}
		return c.remote.Name
	}
	if da, db := dialer(a), dialer(b); da != db {
		return da < db
	}
	return a.connUID < b.connUID
}

// rejectWith tells the peer why we close the connection, then closes it.
// Before the writer goroutine runs the reason is written directly;
// afterwards it is queued, and the writer closes the connection once it
// has written it.
func (c *conn) rejectWith(err error) {
	msg := append([]byte{tagClose}, err.Error()...)
	c.mu.Lock()
	writer := c.writing
	if c.rejectErr == nil {
		c.rejectErr = err
	}
	c.mu.Unlock()
	if !writer && c.ch != nil {
		c.nc.SetWriteDeadline(c.node.cfg.Clock.Now().Add(time.Second))
		c.ch.WriteMsg(msg)
	} else if writer && c.send(msg) == nil {
		return
	}
	c.close(err)
}

// sendControl is OverlayConnectionParams.SendControl.
func (c *conn) sendControl(msg []byte) error {
	b := make([]byte, 1+len(msg))
	b[0] = tagOverlayControl
	copy(b[1:], msg)
	return c.send(b)
}

// writeLoop writes queued messages and heartbeats and watches the overlay.
func (c *conn) writeLoop() {
	n := c.node
	defer n.wg.Done()
	hb := n.cfg.Clock.NewTicker(n.cfg.HeartbeatInterval)
	defer hb.Stop()
	est, failed := c.oc.Established(), c.oc.Failed()
	heartbeat := []byte{tagHeartbeat}
	write := func(msg []byte) bool {
		c.nc.SetWriteDeadline(n.cfg.Clock.Now().Add(n.cfg.HeartbeatTimeout))
		if err := c.ch.WriteMsg(msg); err != nil {
			c.close(fmt.Errorf("write: %w", err))
			return false
		}
		n.traffic.count(&n.traffic.sent, msg)
		return true
	}
	for {
		select {
		case <-c.done:
			return
		case msg := <-c.sendq:
			if !write(msg) {
				return
			}
			if msg[0] == tagClose {
				c.mu.Lock()
				err := c.rejectErr
				c.mu.Unlock()
				c.close(err)
				return
			}
		case <-hb.C():
			if !write(heartbeat) {
				return
			}
		case <-est:
			est = nil
			n.connEstablished(c)
		case err := <-failed:
			failed = nil
			if err == nil {
				err = errors.New("data path failed")
			}
			c.close(err)
			return
		}
	}
}

// connEstablished marks c established once its data path is up.
func (n *Node) connEstablished(c *conn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.conns[c.remote.Name] == c && !c.established.Load() {
		c.established.Store(true)
		n.localChangedLocked()
		n.log.Info("connection established", "peer", c.remote.Name.String(), "addr", c.remoteAddr.String())
	}
}

// readLoop reads and dispatches messages until the connection fails.
func (c *conn) readLoop() error {
	n := c.node
	for {
		c.nc.SetReadDeadline(n.cfg.Clock.Now().Add(n.cfg.HeartbeatTimeout))
		msg, err := c.ch.ReadMsg()
		if err != nil {
			select {
			case <-c.done:
				return c.closeErr()
			default:
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return ErrHeartbeatTimeout
			}
			return fmt.Errorf("read: %w", err)
		}
		n.traffic.count(&n.traffic.received, msg)
		if err := n.handleMsg(c, msg); err != nil {
			return err
		}
	}
}

// handleMsg dispatches one message. msg is only valid during the call.
func (n *Node) handleMsg(c *conn, msg []byte) error {
	switch msg[0] {
	case tagHeartbeat:
	case tagClose:
		return closedByPeer(msg[1:])
	case tagTopology:
		entries, err := decodeTopology(msg)
		if err != nil {
			return err
		}
		n.applyTopology(c, entries)
	case tagTopologySummary:
		return n.handleSummary(c, msg)
	case tagGossip, tagGossipBroadcast, tagGossipUnicast:
		return n.handleGossip(c, msg)
	case tagOverlayControl:
		c.oc.HandleControl(append([]byte(nil), msg[1:]...))
	default:
		// Unknown tags come from newer versions; ignore them.
	}
	return nil
}
