package daemon

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/nameserver"
	"github.com/weftnet/weft/proxy/hold"
	"github.com/weftnet/weft/state"
)

// Docker is the container engine as the router uses it; cmd/weft
// implements it with package docker. Methods are safe for concurrent use.
type Docker interface {
	// Ping reports whether Docker answers; the error says where it was
	// looked for.
	Ping(ctx context.Context) error
	// Container returns a container by name or (short) ID. Its error text
	// is one line a user can act on (no such container, Docker not
	// reachable).
	Container(ctx context.Context, ref string) (Container, error)
	// Events streams container and network events until ctx ends,
	// reconnecting by itself; after each (re)connection it sends an event
	// with Action "resync".
	Events(ctx context.Context) <-chan DockerEvent
	// Running lists the running containers.
	Running(ctx context.Context) ([]RunningContainer, error)
}

// RunningContainer is a running container as Docker lists it.
type RunningContainer struct {
	ID string
	// Command is its entrypoint and command joined with spaces.
	Command string
}

// Container is what the router needs to know of a Docker container.
type Container struct {
	ID, Name, Hostname, Domainname string
	// PID is its init process, 0 when it is not running.
	PID     int
	Running bool
	// Endpoints are its interfaces on Docker networks.
	Endpoints []ContainerEndpoint
	// Env and Entrypoint are from its configuration: a container the
	// Docker API proxy holds has the hold entrypoint and its WEFT_CIDR.
	Env, Entrypoint []string
}

// ContainerEndpoint is a container's interface on a Docker network.
type ContainerEndpoint struct {
	NetworkID string
	Addr      netip.Prefix
}

// DockerEvent is one event from Docker: Type "container" or "network";
// Action "start", "die", "destroy", "connect", "disconnect" or "resync".
type DockerEvent struct {
	Type, Action           string
	ContainerID, NetworkID string
}

// ContainerPrefix starts the canonical form of a container target.
const ContainerPrefix = "container:"

// dockerTimeout bounds one question to Docker.
const dockerTimeout = 5 * time.Second

// errNoDocker is the error of a container target when the router runs
// without Docker support.
var errNoDocker = errors.New("this router runs without Docker")

// parseTarget turns a target as a user wrote it into its canonical form:
// netns:NAME, pid:PID and container:ID are checked by the host; anything
// else names a Docker container.
func (d *Daemon) parseTarget(s string) (string, error) {
	// container:ID with a short ID, or while Docker is away, still has to
	// be the full ID that attachments are kept under.
	if ref, ok := strings.CutPrefix(s, ContainerPrefix); ok && ref != "" {
		if c, err := d.container(ref); err == nil {
			return ContainerPrefix + c.ID, nil
		}
	}
	for _, p := range []string{"netns:", "pid:", ContainerPrefix} {
		if strings.HasPrefix(s, p) {
			t, err := d.deps.Host.ParseTarget(s)
			if err != nil {
				return "", &control.UserError{Err: err}
			}
			return t, nil
		}
	}
	c, err := d.container(s)
	if err != nil {
		return "", control.Userf("target %q is not netns:NAME or pid:PID, so it names a Docker container: %v", s, err)
	}
	return ContainerPrefix + c.ID, nil
}

// Target implements control.Backend.
func (d *Daemon) Target(s string) (string, error) { return d.parseTarget(s) }

// container asks Docker for a container.
func (d *Daemon) container(ref string) (Container, error) {
	if d.deps.Docker == nil {
		return Container{}, errNoDocker
	}
	ctx, cancel := context.WithTimeout(context.Background(), dockerTimeout)
	defer cancel()
	return d.deps.Docker.Container(ctx, ref)
}

// defaultDNSName is the name a target gets in DNS when the user gives
// none: a netns target's namespace name; a container's hostname when it
// is in the DNS domain (docker run --hostname web.weft.local), else its
// name.
func (d *Daemon) defaultDNSName(target string) string {
	id, ok := strings.CutPrefix(target, ContainerPrefix)
	if !ok {
		return DefaultDNSName(target)
	}
	c, err := d.container(id)
	if err != nil {
		return ""
	}
	return containerDNSName(c, d.dnsDomain())
}

// containerDNSName picks a container's DNS name.
func containerDNSName(c Container, domain string) string {
	host := c.Hostname
	if c.Domainname != "" {
		host += "." + c.Domainname
	}
	if domain != "" && strings.HasSuffix(strings.TrimSuffix(host, ".")+".", "."+domain) {
		return host
	}
	return c.Name
}

func (d *Daemon) dnsDomain() string {
	if d.dns == nil {
		return ""
	}
	return d.dns.domain
}

// followDocker handles Docker's events until ctx ends: containers
// attached with `weft attach` are attached again when they start, and
// forgotten (addresses and names) when destroyed; containers on weft's
// Docker networks get their names in DNS.
func (d *Daemon) followDocker(ctx context.Context, wg *sync.WaitGroup) {
	if d.deps.Docker == nil {
		return
	}
	events := d.deps.Docker.Events(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ev := range events {
			d.onDockerEvent(ev)
		}
	}()
}

func (d *Daemon) onDockerEvent(ev DockerEvent) {
	switch {
	case ev.Action == "resync":
		d.resyncContainers()
	case ev.Type == "container" && ev.Action == "start":
		d.onStart(ev.ContainerID)
		d.syncContainerDNS(ev.ContainerID)
	case ev.Type == "container" && ev.Action == "destroy":
		d.forgetContainer(ev.ContainerID)
	case ev.Type == "container" && ev.Action == "rename":
		d.syncContainerDNS(ev.ContainerID)
	case ev.Type == "network" && (ev.Action == "connect" || ev.Action == "disconnect"):
		if d.plugin != nil && d.plugin.HasNetwork(ev.NetworkID) {
			d.syncContainerDNS(ev.ContainerID)
		}
	}
}

// onStart attaches a container that started: again, with its persisted
// addresses, when it was attached before; for the first time when the
// Docker API proxy holds it and it was started some other way than
// through the proxy (which attaches it itself).
func (d *Daemon) onStart(id string) {
	target := ContainerPrefix + id
	if c, err := d.container(id); err == nil && held(c) {
		ctx, cancel := context.WithTimeout(context.Background(), attachHeldTimeout)
		defer cancel()
		if err := d.attachHeld(ctx, c.ID); err != nil {
			d.log.Warn("could not attach a container held for weft", "container", c.Name, "err", err)
		}
		return
	}
	if d.attached(target) {
		if err := d.reattach(target); err != nil {
			d.log.Warn("could not attach a restarted container again", "target", target, "err", err)
		}
	}
}

// attachHeldTimeout bounds an attach the event handler makes.
const attachHeldTimeout = time.Minute

// attached reports whether target has a persisted attachment.
func (d *Daemon) attached(target string) bool {
	atts, err := d.store.Attachments()
	return err == nil && slices.ContainsFunc(atts, func(a state.Attachment) bool { return a.Target == target })
}

// reattach attaches a container again, with its persisted addresses,
// after it started (again): its new network namespace has no interface.
// A container the router does not know is left alone.
func (d *Daemon) reattach(target string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	atts, err := d.store.Attachments()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(atts, func(a state.Attachment) bool { return a.Target == target })
	if i < 0 {
		return nil
	}
	a := atts[i]
	addrs, err := parsePrefixes(a.Addrs)
	if err == nil {
		_, err = d.deps.Host.Attach(d.cfg.Bridge, target, addrs, d.mtu, AttachOptions{SourceCheck: a.SourceCheck})
	}
	if err != nil {
		return err
	}
	d.log.Info("attached a restarted container again", "target", target, "addrs", a.Addrs)
	if !a.WithoutDNS {
		d.registerTarget(target)
	}
	return d.deps.Host.MarkReady(target)
}

// forgetContainer frees at once what a destroyed container held: its
// attachment, addresses and DNS records.
func (d *Daemon) forgetContainer(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	target := ContainerPrefix + id
	d.heldMu.Lock()
	delete(d.heldReady, id)
	d.heldMu.Unlock()
	if addrs, err := d.forgetGone(target, ErrTargetGone); err == nil {
		d.log.Info("forgot a destroyed container", "target", target, "addrs", addrs)
	}
}

// resyncContainers catches up after Docker's events were missed (the
// router started, or the stream broke): attached containers that run
// without their interface are attached again, destroyed ones forgotten,
// and the names of containers on weft's Docker networks brought up to
// date.
func (d *Daemon) resyncContainers() {
	atts, err := d.store.Attachments()
	if err != nil {
		return
	}
	ids := map[string]bool{}
	for _, a := range atts {
		if id, ok := strings.CutPrefix(a.Target, ContainerPrefix); ok {
			ids[id] = true
		}
	}
	if d.dns != nil {
		d.mu.Lock()
		for _, r := range d.dns.store.Own() {
			if id, ok := strings.CutPrefix(r.Target, ContainerPrefix); ok {
				ids[id] = true
			}
		}
		d.mu.Unlock()
	}
	present := map[string]bool{}
	if list, err := d.deps.Host.List(d.cfg.Bridge); err == nil {
		for _, a := range list {
			if a.Err == nil {
				present[a.Target] = true
			}
		}
	}
	for id := range ids {
		c, err := d.container(id)
		switch {
		case err != nil && isNoSuchContainer(err):
			d.forgetContainer(id)
			continue
		case err != nil:
			continue // Docker went away again: the next resync retries
		}
		if c.Running && !present[ContainerPrefix+c.ID] {
			if err := d.reattach(ContainerPrefix + c.ID); err != nil {
				d.log.Warn("could not attach a restarted container again", "target", ContainerPrefix+c.ID, "err", err)
			}
		}
		d.syncContainerDNS(c.ID)
	}
	d.attachHeldRunning(ids, present)
}

// attachHeldRunning attaches the running containers the proxy made that
// the router does not know yet (known ones are in known) and that have
// no interface: they were started while no router ran, or straight
// through Docker, and their command waits for one.
func (d *Daemon) attachHeldRunning(known map[string]bool, present map[string]bool) {
	ctx, cancel := context.WithTimeout(context.Background(), attachHeldTimeout)
	defer cancel()
	list, err := d.deps.Docker.Running(ctx)
	if err != nil {
		return // Docker went away again: the next resync retries
	}
	prefix := strings.Join(hold.Entrypoint(), " ") + " "
	for _, c := range list {
		if known[c.ID] || present[ContainerPrefix+c.ID] || !strings.HasPrefix(c.Command, prefix) {
			continue
		}
		if err := d.attachHeld(ctx, c.ID); err != nil {
			d.log.Warn("could not attach a container held for weft", "container", c.ID, "err", err)
		}
	}
}

// isNoSuchContainer reports Docker's answer that a container does not
// exist (as opposed to Docker not answering).
func isNoSuchContainer(err error) bool { return errors.Is(err, ErrNoSuchContainer) }

// syncContainerDNS makes the DNS records of a container's endpoints on
// weft's Docker networks match what Docker reports: one record per
// address, under the container's (current) name, while it runs. Records of
// `weft attach` addresses are left alone.
func (d *Daemon) syncContainerDNS(id string) {
	if d.dns == nil || d.plugin == nil {
		return
	}
	c, err := d.container(id)
	if err != nil && !isNoSuchContainer(err) {
		return
	}
	target := ContainerPrefix + id
	if c.ID != "" {
		target = ContainerPrefix + c.ID
	}
	var want []netip.Addr
	if c.Running {
		for _, ep := range c.Endpoints {
			if ep.Addr.IsValid() && d.plugin.HasNetwork(ep.NetworkID) {
				want = append(want, ep.Addr.Addr())
			}
		}
	}
	subnets := d.plugin.Subnets()
	inPlugin := func(a netip.Addr) bool {
		return slices.ContainsFunc(subnets, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	fqdn, nameErr := nameserver.QualifyName(containerDNSName(c, d.dns.domain), d.dns.domain)
	d.mu.Lock()
	defer d.mu.Unlock()
	_, attached, _ := d.attachedTarget(target)
	var stale []nameserver.Filter
	have := map[netip.Addr]bool{}
	for _, r := range d.dns.store.Own() {
		if r.Target != target || slices.Contains(attached, r.Addr) || !inPlugin(r.Addr) {
			continue
		}
		if slices.Contains(want, r.Addr) && r.Name == fqdn {
			have[r.Addr] = true
			continue
		}
		// Disconnected, stopped, or renamed (docker rename).
		stale = append(stale, nameserver.Filter{Target: target, Addr: r.Addr})
	}
	if len(stale) > 0 {
		if _, err := d.removeRecords(stale...); err != nil {
			d.log.Warn("could not remove a container's DNS records", "target", target, "err", err)
		}
	}
	var add []netip.Addr
	for _, a := range want {
		if !have[a] {
			add = append(add, a)
		}
	}
	if len(add) == 0 {
		return
	}
	if nameErr != nil {
		d.log.Warn("a container's name is not a valid DNS name; it gets no record", "container", c.Name, "err", nameErr)
		return
	}
	if _, err := d.addRecords(fqdn, add, target); err != nil {
		d.log.Warn("could not add a container's DNS records", "target", target, "err", err)
	}
	d.refreshForwardFrom()
	d.log.Info("registered a container on a weft Docker network in DNS", "name", fqdn, "addrs", add)
}
