package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/ipam"
	"github.com/weftnet/weft/mesh"
	"github.com/weftnet/weft/state"
)

// ipamChannel is the name of the mesh gossip channel of IPAM.
const ipamChannel = "ipam"

// featureIPAllocRange is the handshake feature that carries the range; a
// peer with another range is refused.
const featureIPAllocRange = "ipalloc-range"

// allocTimeout bounds how long an attach waits for peers to lend space.
const allocTimeout = 20 * time.Second

// ipamTransport sends the allocator's messages on the gossip channel:
// broadcasts along our tree and to our neighbours (as DNS does, so that a
// change made while the routes do not yet include a new neighbour still
// reaches it), unicasts hop by hop.
type ipamTransport struct{ ch *mesh.GossipChannel }

func (t *ipamTransport) Broadcast(data mesh.GossipData) {
	t.ch.GossipBroadcast(data)
	t.ch.GossipNeighbours(data)
}

func (t *ipamTransport) Unicast(dst mesh.PeerName, msg []byte) error {
	return t.ch.GossipUnicast(dst, msg)
}

// ipamStore persists the allocator's changes in the state database.
type ipamStore struct{ store *state.Store }

func (s ipamStore) Persist(c ipam.Change) error {
	held := make(map[[4]byte]string, len(c.Held))
	for a, id := range c.Held {
		held[a.As4()] = id
	}
	freed := make([][4]byte, 0, len(c.Freed))
	for _, a := range c.Freed {
		freed = append(freed, a.As4())
	}
	return s.store.PersistIPAM(c.Pool.String(), c.Ring, held, freed)
}

// checkRange is the mesh's CheckPeer: every router must share the range.
func (d *Daemon) checkRange(_ mesh.PeerName, nick string, remote map[string]string) error {
	ours := d.cfg.IPAllocRange.String()
	theirs, ok := remote[featureIPAllocRange]
	if !ok {
		// A router from before IPAM: it allocates nothing and relays the
		// gossip it cannot read, so it does not disagree.
		return nil
	}
	if theirs != ours {
		return fmt.Errorf("IP allocation range %s differs from the peer's %s (%s); every router must use the same --ipalloc-range", ours, theirs, nick)
	}
	return nil
}

// startIPAM builds the allocator from the persisted state and registers
// it on the mesh. It runs before the node starts.
func (d *Daemon) startIPAM() error {
	rng, pools, err := d.store.IPAM()
	if err != nil {
		return err
	}
	var saved []ipam.SavedPool
	if rng != d.cfg.IPAllocRange.String() {
		if rng != "" {
			d.log.Warn("--ipalloc-range changed: forgetting the persisted address ranges and allocations of the old range", "old", rng, "new", d.cfg.IPAllocRange)
		}
		if err := d.store.ResetIPAM(d.cfg.IPAllocRange.String()); err != nil {
			return err
		}
	} else {
		for _, p := range pools {
			prefix, err := netip.ParsePrefix(p.Pool)
			if err != nil {
				d.log.Warn("dropping an unreadable persisted IPAM pool", "pool", p.Pool)
				continue
			}
			sp := ipam.SavedPool{Pool: prefix, Ring: p.Ring, Held: map[netip.Addr]string{}}
			for a, id := range p.Held {
				sp.Held[netip.AddrFrom4(a)] = id
			}
			saved = append(saved, sp)
		}
	}
	tr := &ipamTransport{}
	d.ipam, err = ipam.New(ipam.Config{
		Self:          d.self,
		Range:         d.cfg.IPAllocRange,
		DefaultSubnet: d.cfg.IPAllocDefaultSubnet,
		Transport:     tr,
		Peers:         d.node,
		Persister:     ipamStore{d.store},
		Saved:         saved,
		Logger:        d.log.With("part", "ipam"),
		Joining:       func() bool { return len(d.node.Targets()) > 0 },
	})
	if err != nil {
		return err
	}
	tr.ch = d.node.RegisterGossip(ipamChannel, d.ipam)
	d.takeOverFormerName()
	return nil
}

// takeOverFormerName takes over the address ranges of the name this
// router had before its name came from its identity key (loadIdentity),
// so that the addresses it handed out stay its own. It is done once; a
// failure is retried at the next start.
func (d *Daemon) takeOverFormerName() {
	old, err := d.store.RenamedFrom()
	if err != nil || old == "" {
		return
	}
	name, err := mesh.ParsePeerName(old)
	if err == nil {
		var n uint64
		n, err = d.ipam.TakeOver(name)
		if err == nil {
			d.log.Info("took over the address ranges of this router's former peer name", "old_name", old, "addresses", n)
		}
	}
	if err != nil && !errors.Is(err, ipam.ErrUnknownPeer) {
		d.log.Warn("could not take over the address ranges of this router's former peer name; will try again at the next start",
			"old_name", old, "err", err)
		return
	}
	if err := d.store.SetRenamedFrom(""); err != nil {
		d.log.Warn("could not clear the former peer name", "err", err)
	}
}

// runIPAMTicker drives the allocator's retries and frees the addresses of
// targets that have been gone for longer than the grace period.
func (d *Daemon) runIPAMTicker(ctx context.Context, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(d.cfg.ipamTick)
		defer t.Stop()
		gone := map[string]time.Time{}
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			d.ipam.Tick()
			d.reapGone(gone, time.Now())
		}
	}()
}

// reapGone frees what targets hold once they have been gone (their
// namespace or process no longer exists) for the grace period: a target
// restarted within it keeps its addresses.
func (d *Daemon) reapGone(gone map[string]time.Time, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	atts, err := d.store.Attachments()
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, a := range atts {
		seen[a.Target] = true
		if d.deps.Host.TargetExists(a.Target) {
			delete(gone, a.Target)
			continue
		}
		since, ok := gone[a.Target]
		if !ok {
			gone[a.Target] = now
			continue
		}
		if now.Sub(since) < d.cfg.IPAMGrace {
			continue
		}
		delete(gone, a.Target)
		addrs, err := d.forgetGone(a.Target, ErrTargetGone)
		d.log.Info("freed the addresses of a target gone for longer than the grace period", "target", a.Target, "addrs", addrs, "err", err)
	}
	for t := range gone {
		if !seen[t] {
			delete(gone, t)
		}
	}
}

// claimPersisted registers with IPAM the addresses of persisted
// attachments and exposed addresses that lie in a pool but IPAM does not
// hold for them (made before IPAM existed, or its state was lost), so that
// they are not handed out again. It runs in the background after launch:
// a claim may wait for the mesh.
func (d *Daemon) claimPersisted(ctx context.Context, wg *sync.WaitGroup) {
	type claim struct {
		ident string
		addr  netip.Addr
	}
	var todo []claim
	atts, _ := d.store.Attachments()
	for _, a := range atts {
		for _, s := range a.Addrs {
			if p, err := netip.ParsePrefix(s); err == nil {
				todo = append(todo, claim{a.Target, p.Addr()})
			}
		}
	}
	exposed, _ := d.store.Exposed()
	for _, s := range exposed {
		if p, err := netip.ParsePrefix(s); err == nil {
			todo = append(todo, claim{exposeIdent, p.Addr()})
		}
	}
	todo = slices.DeleteFunc(todo, func(c claim) bool {
		return !d.ipam.InPools(c.addr) || slices.Contains(d.ipam.Addresses(c.ident), c.addr)
	})
	if len(todo) == 0 {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, c := range todo {
			cctx, cancel := context.WithTimeout(ctx, time.Minute)
			_, err := d.ipam.Claim(cctx, c.ident, c.addr)
			cancel()
			if err != nil {
				d.log.Warn("an attached address could not be registered with IPAM; it may be handed out again", "target", c.ident, "addr", c.addr, "err", err)
			} else {
				d.log.Info("registered an attached address with IPAM", "target", c.ident, "addr", c.addr)
			}
		}
	}()
}

// addrSpec is one address argument of attach: a subnet to allocate in, or
// an exact address to claim (or record, outside every pool).
type addrSpec struct {
	subnet netip.Prefix // net:CIDR, net:default (zero)
	exact  netip.Prefix // ip:CIDR or CIDR
	alloc  bool
}

// parseAddrSpecs parses attach's address arguments; none means
// net:default.
func parseAddrSpecs(args []string) ([]addrSpec, error) {
	if len(args) == 0 {
		return []addrSpec{{alloc: true}}, nil
	}
	out := make([]addrSpec, 0, len(args))
	for _, s := range args {
		switch {
		case s == "net:default":
			out = append(out, addrSpec{alloc: true})
		case strings.HasPrefix(s, "net:"):
			p, err := netip.ParsePrefix(strings.TrimPrefix(s, "net:"))
			if err != nil || !p.Addr().Is4() {
				return nil, control.Userf("invalid subnet %q: want net:CIDR like net:10.32.4.0/24, or net:default", s)
			}
			if p != p.Masked() {
				return nil, control.Userf("invalid subnet %q: host bits are set; did you mean net:%s?", s, p.Masked())
			}
			out = append(out, addrSpec{alloc: true, subnet: p})
		default:
			ps, err := parsePrefixes([]string{strings.TrimPrefix(s, "ip:")})
			if err != nil {
				return nil, err
			}
			out = append(out, addrSpec{exact: ps[0]})
		}
	}
	return out, nil
}

// resolveAddrs turns address arguments into addresses for target:
// allocated, claimed, or (outside every pool) taken as given. On failure
// what this call newly took is given back; on success undo gives it back,
// for a caller whose next step fails.
func (d *Daemon) resolveAddrs(target string, specs []addrSpec) (addrs []netip.Prefix, undo func(), err error) {
	ctx, cancel := context.WithTimeout(context.Background(), allocTimeout)
	defer cancel()
	before := d.ipam.Addresses(target)
	undo = func() {
		for _, a := range d.ipam.Addresses(target) {
			if !slices.Contains(before, a) {
				d.ipam.Free(target, a)
			}
		}
	}
	var out []netip.Prefix
	for _, s := range specs {
		if s.alloc {
			var p netip.Prefix
			if p, err = d.ipam.Allocate(ctx, target, s.subnet); err != nil {
				err = fmt.Errorf("attach %s: %w", target, err)
				break
			}
			out = append(out, p)
			continue
		}
		if _, err = d.ipam.Claim(ctx, target, s.exact.Addr()); err != nil {
			err = fmt.Errorf("attach %s: claim %s: %w", target, s.exact.Addr(), err)
			break
		}
		out = append(out, s.exact)
	}
	if err != nil {
		undo()
		return nil, nil, ipamUserError(err)
	}
	return out, undo, nil
}

// ipamUserError marks the errors a user can act on as user errors.
func ipamUserError(err error) error {
	for _, s := range []error{ipam.ErrOutsidePools, ipam.ErrSubnetTooSmall, ipam.ErrBadPrefix, ipam.ErrReservedAddress,
		ipam.ErrAddressTaken, ipam.ErrNoSpace, ipam.ErrUnreachableSpace, ipam.ErrUnknownPeer, context.DeadlineExceeded} {
		if errors.Is(err, s) {
			return &control.UserError{Err: err}
		}
	}
	return err
}

// RmPeer implements control.Backend: take over the ranges of a peer that
// is gone for good.
func (d *Daemon) RmPeer(peer string) (string, error) {
	name, err := d.resolvePeer(peer)
	if err != nil {
		return "", err
	}
	n, err := d.ipam.TakeOver(name)
	if err != nil {
		return "", ipamUserError(err)
	}
	msg := fmt.Sprintf("%d addresses taken over from %s", n, name)
	if d.node.Reachable(name) {
		msg += fmt.Sprintf("\nwarning: %s is still reachable; if it is still running, it may hand out the same addresses: stop it with 'weft reset' on that host", name)
	}
	return msg, nil
}

// resolvePeer finds a peer by name or nickname, among the peers the mesh
// knows and the owners of address ranges.
func (d *Daemon) resolvePeer(s string) (mesh.PeerName, error) {
	if p, err := mesh.ParsePeerName(s); err == nil {
		return p, nil
	}
	var found []mesh.PeerName
	for _, p := range d.node.Status().Peers {
		if p.NickName == s {
			found = append(found, p.Name)
		}
	}
	for _, p := range d.ipam.Owners() {
		if d.node.PeerNickName(p) == s && !slices.Contains(found, p) {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return 0, control.Userf("rmpeer: no peer is named %q; 'weft status ipam' lists the peers that own addresses, by name and nickname", s)
	default:
		return 0, control.Userf("rmpeer: %d peers have the nickname %q; give the peer name instead ('weft status ipam')", len(found), s)
	}
}

// ipamReport converts the allocator's status for the report.
func (d *Daemon) ipamReport() *control.IPAMReport {
	st := d.ipam.Status()
	r := &control.IPAMReport{State: st.State, Range: st.Range.String(), DefaultSubnet: st.DefaultSubnet.String()}
	for _, p := range st.Pools {
		pr := control.IPAMPool{Pool: p.Prefix.String(), Size: p.Size, Used: p.Used, Held: p.Held, Tokens: p.Tokens, Quarantined: p.Quarantined}
		if !p.Seed.IsZero() {
			pr.SeededBy = p.Seed.By.String()
			pr.SeededAt = p.Seed.SeededAt().Format(time.RFC3339)
		}
		for _, s := range p.Peers {
			pr.Peers = append(pr.Peers, control.IPAMPeer{
				Name: s.Name.String(), NickName: s.NickName, Owned: s.Owned, Free: s.Free, Used: s.Used,
				Share: s.Share(p.Size), Reachable: s.Reachable, Self: s.Name == d.self,
			})
		}
		for _, c := range p.Conflicts {
			pr.Conflicts = append(pr.Conflicts, control.IPAMConflict{
				Addr: c.Addr.String(), Here: c.Ident, There: c.Holder, Peer: c.Peer.String(), NickName: d.node.PeerNickName(c.Peer),
			})
		}
		r.Pools = append(r.Pools, pr)
	}
	return r
}
