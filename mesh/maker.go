package mesh

import (
	"errors"
	"math/rand/v2"
	"slices"
	"time"
)

// Target states shown in status (a target with a registered connection
// shows that connection instead).
const (
	StateConnecting  = "connecting"  // dialling or handshaking
	StatePending     = "pending"     // TCP up, data path not yet established
	StateEstablished = "established" // data path up in both directions
	StateRetrying    = "retrying"    // the last attempt failed; will retry
	StateFailed      = "failed"      // will not retry (e.g. the target is ourselves)
)

// target is an address the connection maker keeps a connection to:
// given by the user (direct) or learnt from the topology (discovered).
type target struct {
	addr       string // host:port
	direct     bool
	peer       PeerName // the peer behind it, once known
	state      string   // "" when idle or connected
	err        error
	bo         backoff
	nextTry    time.Time
	attempting bool
}

// Connect adds targets, each HOST or HOST:PORT. With replace the earlier
// direct targets are dropped (their connections stay up). Connecting to
// a known target again resets its backoff. If any target is malformed
// nothing changes.
func (n *Node) Connect(targets []string, replace bool) error {
	norm, err := n.normalizeAll(targets)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if replace {
		keep := map[string]bool{}
		for _, a := range norm {
			keep[a] = true
		}
		n.order = slices.DeleteFunc(n.order, func(a string) bool {
			if !keep[a] {
				delete(n.targets, a)
				return true
			}
			return false
		})
	}
	for _, a := range norm {
		delete(n.forgotten, a)
		delete(n.selfAddrs, a)
		t := n.targets[a]
		if t == nil {
			if t = n.found[a]; t != nil {
				delete(n.found, a)
			} else {
				t = &target{addr: a, bo: n.newBackoff()}
			}
			t.direct = true
			n.targets[a] = t
			n.order = append(n.order, a)
		}
		t.bo.reset()
		t.nextTry = time.Time{}
		if t.state == StateFailed {
			t.state, t.err = "", nil
		}
	}
	n.kick(n.kickMaker)
	return nil
}

// Forget removes targets: their connections close and they are not
// retried, nor rediscovered, until given to Connect again.
func (n *Node) Forget(targets []string) error {
	norm, err := n.normalizeAll(targets)
	if err != nil {
		return err
	}
	var closing, aborting []*conn
	n.mu.Lock()
	for _, a := range norm {
		n.forgotten[a] = true
		t := n.targets[a]
		if t == nil {
			t = n.found[a]
		}
		delete(n.targets, a)
		delete(n.found, a)
		n.order = slices.DeleteFunc(n.order, func(s string) bool { return s == a })
		if t == nil {
			continue
		}
		registered := map[*conn]bool{}
		for name, c := range n.conns {
			registered[c] = true
			if c.tgt == t || name == t.peer {
				closing = append(closing, c)
			}
		}
		for c := range n.all {
			if c.tgt == t && !registered[c] {
				aborting = append(aborting, c)
			}
		}
	}
	n.mu.Unlock()
	for _, c := range closing {
		c.rejectWith(ErrForgotten)
	}
	for _, c := range aborting {
		c.close(ErrForgotten)
	}
	return nil
}

// Targets returns the direct targets, as host:port, in the order given.
func (n *Node) Targets() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.order)
}

func (n *Node) normalizeAll(targets []string) ([]string, error) {
	out := make([]string, 0, len(targets))
	for _, s := range targets {
		a, err := normalizeTarget(s, n.cfg.DefaultPort)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func (n *Node) newBackoff() backoff {
	return backoff{initial: n.cfg.InitialBackoff, max: n.cfg.MaxBackoff}
}

// makerLoop starts connection attempts whenever a target is due.
func (n *Node) makerLoop() {
	defer n.wg.Done()
	timer := n.cfg.Clock.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Reset(n.connectToTargets())
		select {
		case <-n.ctx.Done():
			return
		case <-n.kickMaker:
		case <-timer.C():
		}
	}
}

// connectToTargets starts the attempts that are due and returns how long
// until the next one is.
func (n *Node) connectToTargets() time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return time.Hour
	}
	if n.cfg.Discovery {
		n.refreshDiscoveredLocked()
	}
	now := n.cfg.Clock.Now()
	wait := time.Hour
	all := make([]*target, 0, len(n.order)+len(n.found))
	for _, a := range n.order {
		all = append(all, n.targets[a])
	}
	for _, a := range sortedKeys(n.found) {
		all = append(all, n.found[a])
	}
	active := len(n.conns) // connections, and discovered attempts started below
	for _, t := range all {
		if t.attempting || t.state == StateFailed {
			continue
		}
		if t.peer != UnknownPeerName && n.conns[t.peer] != nil {
			t.state, t.err = "", nil
			continue
		}
		if d := t.nextTry.Sub(now); d > 0 {
			wait = min(wait, d)
			continue
		}
		if !t.direct {
			if n.cfg.DiscoveryMaxConns > 0 && active >= n.cfg.DiscoveryMaxConns {
				continue // dialled again when a connection goes (localChangedLocked kicks us)
			}
			if d := n.discoveryDials.take(now); d > 0 {
				wait = min(wait, d)
				continue
			}
			active++
		}
		t.attempting, t.state = true, StateConnecting
		n.wg.Add(1)
		go n.dial(t)
	}
	return wait
}

// dial runs one connection attempt; it becomes the connection's reader.
func (n *Node) dial(t *target) {
	defer n.wg.Done()
	nc, err := n.cfg.Network.Dial(n.ctx, t.addr, n.cfg.DialTimeout)
	if err != nil {
		n.endAttempt(t, nil, err, time.Time{})
		return
	}
	n.runConn(nc, t, nil)
}

// endAttempt records the end of an attempt or connection to t: the peer
// behind it if learnt, and when to retry. since is when the connection
// was registered (zero if it never was).
func (n *Node) endAttempt(t *target, peer *PeerName, err error, since time.Time) {
	if t == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	t.attempting = false
	if peer != nil {
		t.peer = *peer
	}
	if n.stopped {
		return
	}
	now := n.cfg.Clock.Now()
	switch {
	case errors.Is(err, ErrConnectToSelf):
		n.selfAddrs[t.addr] = true
		if t.direct {
			t.state, t.err = StateFailed, err
		} else {
			delete(n.found, t.addr)
		}
	case t.peer != UnknownPeerName && n.conns[t.peer] != nil:
		// Another connection to the same peer is up.
		t.state, t.err = "", nil
		t.bo.reset()
	case !since.IsZero() && now.Sub(since) >= n.cfg.BackoffReset:
		t.bo.reset()
		t.state, t.err, t.nextTry = StateRetrying, err, now
	default:
		t.state, t.err = StateRetrying, err
		t.nextTry = now.Add(t.bo.next(rand.Int64N))
	}
	n.kick(n.kickMaker)
}
