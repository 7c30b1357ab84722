package daemon

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/nameserver"
	"github.com/weftnet/weft/state"
)

// Connect implements control.Backend.
func (d *Daemon) Connect(peers []string, replace bool) error {
	if len(peers) == 0 && !replace {
		// {"peers":null} used to be taken as a connect of nothing.
		return control.Userf("connect: no peers given: name at least one (HOST or HOST:PORT), or ask to replace the list with none")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.node.Connect(peers, replace); err != nil {
		return &control.UserError{Err: err}
	}
	return d.store.SetTargets(d.node.Targets())
}

// Forget implements control.Backend.
func (d *Daemon) Forget(peers []string) error {
	if len(peers) == 0 {
		return control.Userf("forget: no peers given: name at least one (HOST or HOST:PORT)")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.node.Forget(peers); err != nil {
		return &control.UserError{Err: err}
	}
	return d.store.SetTargets(d.node.Targets())
}

// Attach implements control.Backend.
func (d *Daemon) Attach(req control.AttachRequest) ([]string, error) {
	target, err := d.parseTarget(req.Target)
	if err != nil {
		return nil, err
	}
	if req.Name != "" {
		// Checked even without DNS: the name is kept with the attachment.
		if err := nameserver.ValidateName(req.Name); err != nil {
			return nil, control.Userf("attach %s: --name %q: %v; want a DNS name like web or web-1.weft.local", target, req.Name, err)
		}
	}
	specs, err := parseAddrSpecs(req.CIDRs)
	if err != nil {
		return nil, err
	}
	addrs, undo, err := d.resolveAddrs(target, specs)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	fqdn, err := d.attachName(req, target)
	if err != nil {
		undo()
		return nil, err
	}
	prev, err := d.attachmentOf(target)
	if err != nil {
		undo()
		return nil, err
	}
	var started uint64
	if pid, ok := pidOf(target); ok {
		// Read before attaching: the process whose namespace we join.
		started, _ = d.processStart(pid)
	}
	opts := AttachOptions{SourceCheck: sourceCheck(req.SourceCheck, prev, specs)}
	if prev != nil {
		opts.Given, _ = parsePrefixes(prev.Addrs)
	}
	att, err := d.deps.Host.Attach(d.cfg.Bridge, target, addrs, d.mtu, opts)
	if err != nil {
		undo()
		return nil, &control.UserError{Err: fmt.Errorf("attach %s: %w", target, err)}
	}
	rec := state.Attachment{Target: target, Addrs: prefixStrings(att.Addrs), Name: req.Name, WithoutDNS: req.WithoutDNS, PIDStart: started,
		SourceCheck: opts.SourceCheck}
	// From here on a failure takes back what this attach did.
	fail := func(err error) ([]string, error) {
		d.undoAttach(target, prev, addrs)
		undo()
		return nil, err
	}
	if err := d.store.PutAttachment(rec); err != nil {
		return fail(fmt.Errorf("attach %s: %w", target, err))
	}
	if d.dns != nil && !req.WithoutDNS {
		if err := d.registerAttached(target, fqdn, addrs); err != nil {
			return fail(fmt.Errorf("attach %s: register DNS name: %w", target, err))
		}
	}
	if strings.HasPrefix(target, ContainerPrefix) {
		// A container the Docker API proxy holds runs its command now.
		if err := d.deps.Host.MarkReady(target); err != nil {
			return fail(fmt.Errorf("attach %s: %w", target, err))
		}
	}
	return prefixStrings(addrs), nil
}

// sourceCheck decides whether an attach guards the target's sources: as
// asked; otherwise as the target had it; for a new target, on when weft
// chose every address (net:, or none given), off when one was given
// exactly (the user manages that target's addresses).
func sourceCheck(asked *bool, prev *state.Attachment, specs []addrSpec) bool {
	switch {
	case asked != nil:
		return *asked
	case prev != nil:
		return prev.SourceCheck
	}
	for _, s := range specs {
		if s.exact.IsValid() {
			return false
		}
	}
	return true
}

// attachmentOf returns the persisted attachment of target, nil for none.
func (d *Daemon) attachmentOf(target string) (*state.Attachment, error) {
	atts, err := d.store.Attachments()
	if err != nil {
		return nil, fmt.Errorf("attach %s: %w", target, err)
	}
	if i := slices.IndexFunc(atts, func(a state.Attachment) bool { return a.Target == target }); i >= 0 {
		return &atts[i], nil
	}
	return nil, nil
}

// undoAttach takes back an attach of addrs to target that failed after
// the host attached it: for a target that was not attached before (prev
// nil), its DNS records, resolv.conf, interface and record; for one that
// was, the records and addresses this attach added, and its record as it
// was. Failures are logged: the attach has failed already. Called with
// d.mu held; the caller frees the addresses in IPAM.
func (d *Daemon) undoAttach(target string, prev *state.Attachment, addrs []netip.Prefix) {
	var added []netip.Prefix
	if prev != nil {
		for _, p := range addrs {
			if !slices.Contains(prev.Addrs, p.String()) {
				added = append(added, p)
			}
		}
	}
	if prev == nil || len(added) > 0 {
		// Detach with no addresses removes them all, and the interface.
		if err := d.unregisterDetached(target, added, prev == nil); err != nil {
			d.log.Warn("undo failed attach: remove DNS records", "target", target, "err", err)
		}
		if _, err := d.deps.Host.Detach(d.cfg.Bridge, target, added); err != nil {
			d.log.Warn("undo failed attach: detach", "target", target, "err", err)
		}
	}
	var err error
	if prev == nil {
		err = d.store.DeleteAttachment(target)
	} else {
		err = d.store.PutAttachment(*prev)
	}
	if err != nil {
		d.log.Warn("undo failed attach: restore the record", "target", target, "err", err)
	}
}

// Detach implements control.Backend.
func (d *Daemon) Detach(req control.AttachRequest) ([]string, error) {
	target, err := d.parseTarget(req.Target)
	if err != nil {
		return nil, err
	}
	addrs, err := parsePrefixes(req.CIDRs)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	removed, err := d.deps.Host.Detach(d.cfg.Bridge, target, addrs)
	if errors.Is(err, ErrTargetGone) && len(addrs) == 0 {
		return d.forgetGone(target, err)
	}
	if err != nil {
		return nil, &control.UserError{Err: fmt.Errorf("detach %s: %w", target, err)}
	}
	gone, err := d.updateRecord(target, addrs, removed)
	if err != nil {
		return nil, err
	}
	if !gone && len(removed) > 0 {
		d.narrowSourceCheck(target)
	}
	for _, p := range removed {
		d.ipam.Free(target, p.Addr())
	}
	if gone {
		d.ipam.Release(target)
	}
	if err := d.unregisterDetached(target, removed, gone); err != nil {
		return nil, fmt.Errorf("detach %s: remove DNS records: %w", target, err)
	}
	return prefixStrings(removed), nil
}

// narrowSourceCheck takes addresses a partial detach removed out of the
// target's source guard, by attaching it again with what is left. Called
// with d.mu held.
func (d *Daemon) narrowSourceCheck(target string) {
	rec, err := d.attachmentOf(target)
	if err != nil || rec == nil || !rec.SourceCheck {
		return
	}
	left, err := parsePrefixes(rec.Addrs)
	if err == nil {
		_, err = d.deps.Host.Attach(d.cfg.Bridge, target, left, d.mtu, AttachOptions{SourceCheck: true})
	}
	if err != nil {
		d.log.Warn("could not narrow the source guard after a detach", "target", target, "err", err)
	}
}

// forgetGone fully detaches a target whose namespace has gone: the kernel
// took its interface with it, and what the router remembers of it (the
// attachment, DNS records, resolv.conf) goes too. It returns the addresses
// the target was attached with; a target the router never knew stays an
// error. Called with d.mu held.
func (d *Daemon) forgetGone(target string, cause error) ([]string, error) {
	atts, err := d.store.Attachments()
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(atts, func(a state.Attachment) bool { return a.Target == target })
	own := false
	if d.dns != nil {
		for _, r := range d.dns.store.Own() {
			own = own || r.Target == target
		}
	}
	if i < 0 && !own {
		return nil, &control.UserError{Err: fmt.Errorf("detach %s: %w", target, cause)}
	}
	var addrs []string
	d.ipam.Release(target)
	if i >= 0 {
		addrs = atts[i].Addrs
		if err := d.store.DeleteAttachment(target); err != nil {
			return nil, err
		}
	}
	if err := d.unregisterDetached(target, nil, true); err != nil {
		return nil, fmt.Errorf("detach %s: remove DNS records: %w", target, err)
	}
	d.log.Info("forgot a target that no longer exists", "target", target, "addrs", addrs)
	return addrs, nil
}

// updateRecord brings the persisted attachment of target in line after a
// detach of removed addresses, and reports whether the target is now fully
// detached.
func (d *Daemon) updateRecord(target string, asked, removed []netip.Prefix) (bool, error) {
	atts, err := d.store.Attachments()
	if err != nil {
		return false, err
	}
	for _, a := range atts {
		if a.Target != target {
			continue
		}
		if len(asked) == 0 {
			return true, d.store.DeleteAttachment(target)
		}
		gone := prefixStrings(removed)
		a.Addrs = slices.DeleteFunc(a.Addrs, func(s string) bool { return slices.Contains(gone, s) })
		if len(a.Addrs) == 0 {
			return true, d.store.DeleteAttachment(target)
		}
		return false, d.store.PutAttachment(a)
	}
	return len(asked) == 0, nil
}

// Expose implements control.Backend.
func (d *Daemon) Expose(cidrs []string) ([]string, error) {
	specs, err := parseAddrSpecs(cidrs)
	if err != nil {
		return nil, err
	}
	addrs, undo, err := d.resolveAddrs(exposeIdent, specs)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.deps.Host.Expose(d.cfg.Bridge, addrs); err != nil {
		undo()
		return nil, &control.UserError{Err: fmt.Errorf("expose: %w", err)}
	}
	defer d.refreshForwardFrom()
	return prefixStrings(addrs), d.saveExposed()
}

// Hide implements control.Backend.
func (d *Daemon) Hide(cidrs []string) ([]string, error) {
	addrs, err := parsePrefixes(cidrs)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	removed, err := d.deps.Host.Hide(d.cfg.Bridge, addrs)
	if err != nil {
		return nil, &control.UserError{Err: fmt.Errorf("hide: %w", err)}
	}
	for _, p := range removed {
		d.ipam.Free(exposeIdent, p.Addr())
	}
	defer d.refreshForwardFrom()
	return prefixStrings(removed), d.saveExposed()
}

// exposeIdent is what holds the host's own addresses in IPAM.
const exposeIdent = "weft:expose"

func (d *Daemon) saveExposed() error {
	exposed, err := d.deps.Host.Exposed(d.cfg.Bridge)
	if err != nil {
		return err
	}
	return d.store.SetExposed(prefixStrings(exposed))
}
