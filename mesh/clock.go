package mesh

import (
	"context"
	"net"
	"time"
)

// Clock is the mesh's source of time: the current time, timers and
// tickers. Every deadline, backoff, heartbeat and gossip period of a Node
// is taken from it, so that a test or a simulation (mesh/meshtest) can
// run many nodes in one process on a virtual clock. The zero Config uses
// SystemClock.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTimer returns a timer that sends the time on its channel once,
	// after d.
	NewTimer(d time.Duration) Timer
	// NewTicker returns a ticker that sends the time on its channel every
	// d (d > 0), dropping ticks a slow receiver misses.
	NewTicker(d time.Duration) Ticker
}

// Timer is a Clock's one-shot timer, with time.Timer's semantics (Go
// 1.23 and later: Stop and Reset leave no stale value in the channel).
type Timer interface {
	// C returns the channel the time is sent on.
	C() <-chan time.Time
	// Stop prevents the timer from firing; it reports whether it was
	// still pending.
	Stop() bool
	// Reset makes the timer fire after d; it reports whether it was still
	// pending.
	Reset(d time.Duration) bool
}

// Ticker is a Clock's periodic ticker.
type Ticker interface {
	// C returns the channel the ticks are sent on.
	C() <-chan time.Time
	// Stop turns the ticker off.
	Stop()
}

// Network is how a Node opens its TCP control connections: listening and
// dialling by host:port. Connections must honour deadlines
// (net.Conn.SetDeadline and friends) against the Node's Clock: mesh sets
// them to Clock.Now() plus a timeout. The zero Config uses SystemNetwork.
type Network interface {
	// Listen listens on a host:port address ("tcp"); port 0 picks one.
	Listen(ctx context.Context, addr string) (net.Listener, error)
	// Dial connects to a host:port address within timeout, or fails when
	// ctx ends.
	Dial(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error)
}

// SystemClock is the Clock of the time package.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// NewTimer wraps time.NewTimer.
func (SystemClock) NewTimer(d time.Duration) Timer { return sysTimer{time.NewTimer(d)} }

// NewTicker wraps time.NewTicker.
func (SystemClock) NewTicker(d time.Duration) Ticker { return sysTicker{time.NewTicker(d)} }

type sysTimer struct{ t *time.Timer }

func (t sysTimer) C() <-chan time.Time        { return t.t.C }
func (t sysTimer) Stop() bool                 { return t.t.Stop() }
func (t sysTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

type sysTicker struct{ t *time.Ticker }

func (t sysTicker) C() <-chan time.Time { return t.t.C }
func (t sysTicker) Stop()               { t.t.Stop() }

// SystemNetwork is the Network of the operating system's TCP stack.
type SystemNetwork struct{}

// Listen listens on TCP.
func (SystemNetwork) Listen(ctx context.Context, addr string) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(ctx, "tcp", addr)
}

// Dial dials TCP.
func (SystemNetwork) Dial(ctx context.Context, addr string, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.DialContext(ctx, "tcp", addr)
}
