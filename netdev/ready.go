package netdev

import (
	"fmt"
)

// ReadyAlias is the alias (IFLA_IFALIAS) MarkReady gives a target's
// ethweft once the router has finished attaching it. A process held in
// the target until weft is ready (package proxy/hold) waits for it: the
// interface alone is not enough, since it appears before its addresses
// and routes are in place.
const ReadyAlias = "weft:ready"

// MarkReady sets the alias of the target's ethweft to ReadyAlias. Call it
// after Attach has returned. A target without ethweft is an error wrapping
// ErrNotAttached. Marking a marked target again does nothing new.
func MarkReady(t Target) error {
	if err := markReady(t); err != nil {
		return fmt.Errorf("mark %s ready: %w", t, err)
	}
	return nil
}

func markReady(t Target) error {
	tns, err := openTarget(t)
	if err != nil {
		return err
	}
	defer tns.Close()
	link, err := tns.h.LinkByName(ContainerIf)
	if isNotFound(err) {
		return explain(ErrNotAttached, fmt.Sprintf("%s has no interface %s: attach it first", t, ContainerIf))
	}
	if err != nil {
		return fmt.Errorf("find %s: %w", ContainerIf, err)
	}
	if link.Attrs().Alias == ReadyAlias {
		return nil
	}
	if err := tns.h.LinkSetAlias(link, ReadyAlias); err != nil {
		return fmt.Errorf("set alias of %s: %w", ContainerIf, err)
	}
	return nil
}

// Ready reports whether the calling thread's network namespace has an
// ethweft whose alias is ReadyAlias: what a process inside a target sees
// once MarkReady has run. A missing ethweft is (false, nil); other errors
// are netlink's. It needs no privilege.
func Ready() (bool, error) {
	link, err := host().LinkByName(ContainerIf)
	if isNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("find %s: %w", ContainerIf, err)
	}
	return link.Attrs().Alias == ReadyAlias, nil
}
