package netdev

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// inNamespace runs fn on a fresh goroutine whose locked OS thread is moved
// into ns and then back to where it was. If moving back fails, the thread
// stays locked and Go discards it when the goroutine ends.
func inNamespace(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- fmt.Errorf("get thread namespace: %w", err)
			return // the thread is discarded
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("enter namespace: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("leave namespace: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// targetNS is an open target namespace with a netlink handle in it.
type targetNS struct {
	ns netns.NsHandle
	h  *netlink.Handle
}

// openTarget opens t's namespace and a netlink handle inside it, refusing
// the host's own namespace.
func openTarget(t Target) (*targetNS, error) {
	ns, err := t.open()
	if err != nil {
		return nil, err
	}
	host, err := netns.Get()
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("get host namespace: %w", err)
	}
	same := host.Equal(ns)
	host.Close()
	if same {
		ns.Close()
		return nil, explain(ErrHostNamespace, fmt.Sprintf("%s is in the host's own network namespace", t))
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("netlink in %s: %w", t, err)
	}
	return &targetNS{ns: ns, h: h}, nil
}

func (t *targetNS) Close() {
	t.h.Close()
	t.ns.Close()
}

// retryDump repeats a netlink dump that the kernel interrupted because the
// table changed underneath it.
func retryDump[T any](dump func() ([]T, error)) ([]T, error) {
	for range 5 {
		res, err := dump()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return res, err
		}
	}
	return dump()
}

// isNotFound reports a missing link.
func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}
