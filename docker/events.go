package docker

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
)

// Event types and actions that Events sends.
const (
	TypeContainer = "container"
	TypeNetwork   = "network"

	ActionStart      = "start"      // container: it runs (again)
	ActionDie        = "die"        // container: its process ended
	ActionDestroy    = "destroy"    // container: removed
	ActionRename     = "rename"     // container: a new name
	ActionConnect    = "connect"    // network: a container joined it
	ActionDisconnect = "disconnect" // network: a container left it
	// ActionResync starts every (re)connected stream: events may have been
	// missed, so what was learnt from Docker before should be checked again.
	// Its Type and IDs are empty.
	ActionResync = "resync"
)

// Backoff between attempts to (re)open the event stream.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// Event is a change in Docker that weft follows.
type Event struct {
	Type        string // TypeContainer or TypeNetwork; "" for ActionResync
	Action      string // one of the Action constants
	ContainerID string // the container concerned (also for network events)
	NetworkID   string // for network events
	Time        time.Time
}

// wanted lists the actions Events passes on, per type.
var wanted = map[events.Type]map[events.Action]bool{
	events.ContainerEventType: {ActionStart: true, ActionDie: true, ActionDestroy: true, ActionRename: true},
	events.NetworkEventType:   {ActionConnect: true, ActionDisconnect: true},
}

// Events follows Docker's events until ctx ends, then closes the channel.
// It opens the stream again by itself when it breaks or Docker is not
// there, waiting 100 ms at first and up to 5 s between attempts; each time
// the stream is open it first sends an Event with Action ActionResync. The
// caller must keep reading until the channel is closed; once it is, no
// goroutine of the call is left.
func (c *Client) Events(ctx context.Context) <-chan Event {
	out := make(chan Event, 16)
	go func() {
		defer close(out)
		wait := minBackoff
		down := false // Docker was not reachable at the last attempt
		for {
			opened := time.Now()
			up, err := c.stream(ctx, out)
			if ctx.Err() != nil {
				return
			}
			switch {
			case up:
				c.log.Warn("Docker event stream ended; opening it again", "err", err)
				down = false
				if time.Since(opened) > maxBackoff {
					wait = minBackoff
				}
			case !down:
				c.log.Warn("cannot follow Docker's events; retrying", "err", err)
				down = true
			default:
				c.log.Debug("Docker events: still not reachable", "err", err)
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			wait = min(2*wait, maxBackoff)
		}
	}()
	return out
}

// stream follows one event stream until it breaks or ctx ends, sending to
// out. up says whether Docker accepted the stream (and a resync was sent).
// It returns only once the client library's reader has ended.
func (c *Client) stream(ctx context.Context, out chan<- Event) (up bool, err error) {
	var accepted atomic.Bool
	sctx, cancel := context.WithCancel(context.WithValue(ctx, streamUpKey{}, &accepted))
	msgs, errs := c.api.Events(sctx, events.ListOptions{Filters: eventFilters()})
	defer func() {
		cancel()
		for range errs { // closed when the reader has ended
		}
	}()
	if !accepted.Load() {
		// The request failed; the reader reports why and ends.
		select {
		case err = <-errs:
			return false, c.fail("events", err)
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	send := func(ev Event) bool {
		select {
		case out <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if !send(Event{Action: ActionResync, Time: time.Now()}) {
		return true, ctx.Err()
	}
	for {
		select {
		case m := <-msgs:
			if ev, ok := eventFrom(m); ok && !send(ev) {
				return true, ctx.Err()
			}
		case err := <-errs:
			if err == nil {
				err = errors.New("stream closed")
			}
			return true, c.fail("events", err)
		case <-ctx.Done():
			return true, ctx.Err()
		}
	}
}

// eventFilters asks Docker for the events in wanted only.
func eventFilters() filters.Args {
	f := filters.NewArgs()
	for typ, actions := range wanted {
		f.Add("type", string(typ))
		for action := range actions {
			f.Add("event", string(action))
		}
	}
	return f
}

// eventFrom keeps the events in wanted (Docker may send more than was
// asked for) that name what they concern.
func eventFrom(m events.Message) (Event, bool) {
	if !wanted[m.Type][m.Action] || m.Actor.ID == "" {
		return Event{}, false
	}
	ev := Event{Type: string(m.Type), Action: string(m.Action)}
	switch m.Type {
	case events.ContainerEventType:
		ev.ContainerID = m.Actor.ID
	case events.NetworkEventType:
		ev.NetworkID = m.Actor.ID
		ev.ContainerID = m.Actor.Attributes["container"]
		if ev.ContainerID == "" {
			return Event{}, false
		}
	}
	switch {
	case m.TimeNano > 0:
		ev.Time = time.Unix(0, m.TimeNano)
	case m.Time > 0:
		ev.Time = time.Unix(m.Time, 0)
	default:
		ev.Time = time.Now()
	}
	return ev, true
}
