// Package daemon is the weft router process: it ties the mesh (control
// plane), the router (data plane), the host's network glue, the persisted
// state and the control API together. Run owns every goroutine it starts
// and returns only after all of them have stopped.
package daemon

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/ipam"
	"github.com/weftnet/weft/mesh"
	"github.com/weftnet/weft/plugin"
	"github.com/weftnet/weft/router"
	"github.com/weftnet/weft/secure"
	"github.com/weftnet/weft/state"
)

// Config is what the user chose for this router.
type Config struct {
	// StateDir holds the control socket, the log and the database.
	StateDir string
	// NickName is shown in status; defaults to the hostname.
	NickName string
	// Host is the address to listen on ("" for all).
	Host string
	// Port is the TCP control and UDP data port of the mesh.
	Port int
	// MTU is the MTU of the weft network; 0 derives it from the underlay.
	MTU int
	// ConnLimit is the most connections accepted (0 = unlimited).
	ConnLimit int
	// Discovery connects to peers learnt from the topology.
	Discovery bool
	// StatusAddr is the address of the HTTP status and metrics server
	// ("" for none).
	StatusAddr string
	// Peers are the peers named on the command line; PeersGiven says
	// whether any were (otherwise the persisted list is used).
	Peers      []string
	PeersGiven bool
	// Bridge and TAPName name the bridge and the router's TAP device.
	Bridge, TAPName string
	// DNS runs the embedded DNS server (`--no-dns` turns it off).
	DNS bool
	// DNSDomain is the domain of container names; "" means weft.local.
	DNSDomain string
	// ResolvConf is the file naming the upstream resolvers; "" means
	// /etc/resolv.conf.
	ResolvConf string
	// DNSListen is the UDP and TCP address of the DNS server; "" means
	// DNSAddr port 53, which the router adds to the bridge. Tests use a
	// loopback address.
	DNSListen string
	// ResolvConfRoot is prepended to /etc/netns when writing the
	// resolv.conf of netns targets; "" means "/". Tests use a temporary
	// directory.
	ResolvConfRoot string
	// IPAllocRange is the weft range (--ipalloc-range); its clients may
	// use the DNS server to resolve names outside the domain.
	IPAllocRange netip.Prefix
	// IPAllocDefaultSubnet is where attaches with no address allocate
	// (--ipalloc-default-subnet); zero means the whole range.
	IPAllocDefaultSubnet netip.Prefix
	// IPAMGrace is how long the addresses of a target that has gone are
	// kept for it (a restarted container keeps its address); 0 means 30 s.
	IPAMGrace time.Duration
	// ipamTick is how often the IPAM ticker runs (default 2 s); tests
	// shorten it.
	ipamTick time.Duration
	// Password, when set, encrypts and authenticates everything between
	// peers; TrustedSubnets lists underlay subnets whose peers exchange
	// data unencrypted (control stays authenticated).
	Password       []byte
	TrustedSubnets secure.TrustedSubnets
	// FastDP lets the kernel's VXLAN carry plain traffic between directly
	// connected peers (`--no-fastdp` turns it off); FastDPPort is its UDP
	// port, 0 for DefaultFastDPPort.
	FastDP     bool
	FastDPPort int
	// PluginSocket is where the Docker network and IPAM driver "weft" is
	// served ("" for nowhere); it is served only when Docker answers or
	// the socket's directory exists.
	PluginSocket string
	// Proxy configures the Docker API proxy.
	Proxy ProxyConfig
	// Version is the weft release, for reports.
	Version string
	// Logger receives the router's logs.
	Logger *slog.Logger
}

// Daemon is a running router process.
type Daemon struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	store    *state.Store
	self     mesh.PeerName
	identity *mesh.Identity
	mtu      int

	node *mesh.Node
	rt   *router.Router
	// fast is the kernel fast path; nil when off or unavailable.
	fast *fastPath
	dns  *dnsService // nil when DNS is off
	ipam *ipam.Allocator
	// plugin is the Docker network and IPAM driver; nil when not served.
	plugin *plugin.Drivers

	// proxy is the Docker API proxy; nil when not served.
	proxy *proxyServer

	// mu serialises operations that change the host or the state.
	mu sync.Mutex
	// heldMu serialises the attaches of containers the proxy holds (the
	// proxy and Docker's start event both ask for each); heldReady maps
	// each such container to the PID of the run it was made ready for.
	heldMu    sync.Mutex
	heldReady map[string]int

	quit     chan struct{}
	quitOnce sync.Once
	reset    bool
}

// Run runs the router until ctx is cancelled or a stop or reset request
// arrives. ready, if not nil, is called once the router serves requests.
func Run(ctx context.Context, cfg Config, deps Deps, ready func()) (err error) {
	d := &Daemon{cfg: cfg, deps: deps, log: cfg.Logger, quit: make(chan struct{}), heldReady: map[string]int{}}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.cfg.Bridge == "" {
		d.cfg.Bridge = "weft"
	}
	if d.cfg.TAPName == "" {
		d.cfg.TAPName = "weft-tap"
	}
	if !d.cfg.IPAllocRange.IsValid() {
		d.cfg.IPAllocRange = netip.MustParsePrefix("10.32.0.0/12")
	}
	if d.cfg.IPAMGrace <= 0 {
		d.cfg.IPAMGrace = 30 * time.Second
	}
	if d.cfg.ipamTick <= 0 {
		d.cfg.ipamTick = 2 * time.Second
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("create state dir: %w", err)
	}
	if err := CheckStateDir(cfg.StateDir); err != nil {
		return err
	}
	if d.store, err = state.Open(cfg.StateDir); err != nil {
		if errors.Is(err, state.ErrLocked) {
			return fmt.Errorf("a weft router is already running with state dir %s; stop it with 'weft stop'", cfg.StateDir)
		}
		return err
	}
	defer func() {
		if d.store != nil {
			d.store.Close()
		}
	}()
	if err := d.loadIdentity(); err != nil {
		return err
	}
	if err := d.setupNetwork(); err != nil {
		return err
	}
	tapOpen := true
	defer func() {
		if tapOpen {
			deps.Host.DeleteLink(d.cfg.TAPName)
		}
	}()

	dev, err := deps.OpenTAP(d.cfg.TAPName, d.mtu)
	if err != nil {
		return fmt.Errorf("create TAP device %s: %w", d.cfg.TAPName, err)
	}
	defer dev.Close()
	if err := deps.Host.AttachToBridge(d.cfg.TAPName, d.cfg.Bridge, d.mtu); err != nil {
		return fmt.Errorf("attach TAP to bridge: %w", err)
	}
	listenIP := netip.IPv4Unspecified()
	if cfg.Host != "" {
		if listenIP, err = netip.ParseAddr(cfg.Host); err != nil {
			return fmt.Errorf("invalid --host %q: want an IP address of this host", cfg.Host)
		}
	}
	udp, err := deps.ListenUDP(netip.AddrPortFrom(listenIP, uint16(cfg.Port)))
	if err != nil {
		return fmt.Errorf("listen on UDP port %d: %w (is another router using it? choose another with --port)", cfg.Port, err)
	}
	defer udp.Close()

	rcfg := router.Config{Self: d.self, Device: dev, Transport: udp, Logger: d.log.With("part", "router")}
	if cfg.DNS {
		// Each host answers its own containers' DNS queries.
		rcfg.HostLocal = []netip.Addr{dnsIP}
	}
	features := map[string]string{featureIPAllocRange: d.cfg.IPAllocRange.String()}
	if d.fast = d.openFastPath(&rcfg, features); d.fast != nil {
		defer deps.Host.DeleteLink(fastdpDevice)
	}
	d.rt, err = router.New(rcfg)
	if err != nil {
		return err
	}
	var psk *secure.PSK
	if len(cfg.Password) > 0 {
		if psk, err = secure.DerivePSK(cfg.Password); err != nil {
			return fmt.Errorf("password: %w", err)
		}
	}
	d.node, err = mesh.NewNode(mesh.Config{
		PSK:            psk,
		TrustedSubnets: cfg.TrustedSubnets,
		Identity:       d.identity,
		NickName:       cfg.NickName,
		ListenAddr:     net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)),
		DataPort:       udp.LocalPort(),
		ConnLimit:      cfg.ConnLimit,
		Discovery:      cfg.Discovery,
		Overlay:        d.rt,
		Logger:         d.log.With("part", "mesh"),
		Features:       features,
		CheckPeer:      d.checkRange,
		ConnRTT:        tcpRTT,
	})
	if err != nil {
		return err
	}
	if err := d.startIPAM(); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	rtErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		rtErr <- d.rt.Run(ctx)
	}()
	defer wg.Wait()
	defer cancel()
	if d.fast != nil {
		d.fast.run(ctx, &wg)
	}

	if cfg.DNS {
		if err := d.startDNS(ctx, &wg); err != nil {
			return err
		}
		defer d.stopDNS()
	}
	if err := d.node.Start(ctx); err != nil {
		return fmt.Errorf("listen on TCP port %d: %w (is another router using it? choose another with --port)", cfg.Port, err)
	}
	defer d.node.Stop()
	targets, _ := d.store.Targets()
	if len(targets) > 0 {
		if err := d.node.Connect(targets, false); err != nil {
			d.log.Warn("persisted peers rejected", "err", err)
		}
	}
	// The plugin socket comes first: a dockerd that starts with us waits
	// only seconds for it before it disables a managed plugin.
	if ps, err := d.startPlugin(); err != nil {
		return err
	} else if ps != nil {
		defer ps.Close()
	}
	d.restoreAttachments()
	d.runIPAMTicker(ctx, &wg)
	d.claimPersisted(ctx, &wg)
	d.followDocker(ctx, &wg)
	if px, err := d.startProxy(); err != nil {
		return err
	} else if px != nil {
		d.proxy = px
		defer px.Close()
	}

	srv, err := control.Listen(cfg.StateDir, control.NewHandler(d, d.log))
	if err != nil {
		return err
	}
	go srv.Serve()
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
	}()
	if cfg.StatusAddr != "" {
		ss, err := d.startStatusServer(cfg.StatusAddr)
		if err != nil {
			return err
		}
		defer ss.Close()
	}
	d.log.Info("router started", "name", d.self, "nickname", cfg.NickName, "port", cfg.Port, "mtu", d.mtu)
	if ready != nil {
		ready()
	}

	select {
	case <-ctx.Done():
	case <-d.quit:
	case err := <-rtErr:
		if err != nil {
			return fmt.Errorf("data path failed: %w", err)
		}
	}
	d.log.Info("router stopping", "reset", d.reset)
	if d.reset {
		d.handOverRanges()
	}
	d.node.Stop()
	cancel()
	dev.Close()
	udp.Close()
	wg.Wait()
	if d.reset {
		tapOpen = false
		return d.resetAll()
	}
	return nil
}

// loadIdentity loads or creates the persistent identity key, whose name
// is our peer name, and the peers. A state directory made before peer
// names came from identity keys has a name but no key: it gets a key and
// the key's name, and the ranges of the old name are taken over once
// IPAM runs (takeOverFormerName).
func (d *Daemon) loadIdentity() error {
	seed, err := d.store.Identity()
	if err != nil {
		return err
	}
	var id *mesh.Identity
	if seed != nil {
		if id, err = mesh.IdentityFromSeed(seed); err != nil {
			return fmt.Errorf("persisted identity key: %w; run 'weft reset' to start afresh", err)
		}
	} else {
		if id, err = mesh.NewIdentity(rand.Reader); err != nil {
			return err
		}
		old, err := d.store.PeerName()
		if err != nil {
			return err
		}
		if old != "" {
			if _, err := mesh.ParsePeerName(old); err != nil {
				return fmt.Errorf("persisted peer name: %w; run 'weft reset' to start afresh", err)
			}
			if err := d.store.SetRenamedFrom(old); err != nil {
				return err
			}
			d.log.Warn("this router's peer name now comes from its identity key; the address ranges of the old name will be taken over",
				"old_name", old, "name", id.Name().String())
		}
		if err := d.store.SetIdentity(id.Seed()); err != nil {
			return err
		}
	}
	d.identity, d.self = id, id.Name()
	if err := d.store.SetPeerName(d.self.String()); err != nil {
		return err
	}
	if d.cfg.PeersGiven {
		if err := d.store.SetTargets(d.cfg.Peers); err != nil {
			return err
		}
	}
	return nil
}

// setupNetwork picks the MTU and makes sure the bridge exists.
func (d *Daemon) setupNetwork() error {
	d.mtu = d.cfg.MTU
	if d.mtu == 0 {
		under, err := d.deps.Host.UnderlayMTU(netip.Addr{})
		if err != nil || under <= 0 {
			under = 1500
		}
		d.mtu = under - router.UnderlayOverhead - router.FrameOverhead
	}
	if d.mtu < 576 {
		return fmt.Errorf("MTU %d is too small: the weft network needs at least 576 (set --mtu)", d.mtu)
	}
	if d.mtu > router.MaxMTU {
		return fmt.Errorf("MTU %d is too large: at most %d (set --mtu)", d.mtu, router.MaxMTU)
	}
	// A TAP left behind by a router that was killed would keep the name.
	d.deps.Host.DeleteLink(d.cfg.TAPName)
	if err := d.deps.Host.EnsureBridge(d.cfg.Bridge, d.mtu); err != nil {
		return fmt.Errorf("create bridge %s: %w", d.cfg.Bridge, err)
	}
	return nil
}

// restoreAttachments re-attaches persisted targets whose interface has
// gone (the bridge was deleted, or the host rebooted) and re-exposes
// persisted host addresses. A pid: target whose PID now names a process
// with another start time (or none) is forgotten, not re-attached.
func (d *Daemon) restoreAttachments() {
	d.mu.Lock()
	defer d.mu.Unlock()
	present := map[string]bool{}
	if list, err := d.deps.Host.List(d.cfg.Bridge); err == nil {
		for _, a := range list {
			if a.Err == nil {
				present[a.Target] = true
			}
		}
	}
	atts, err := d.store.Attachments()
	if err != nil {
		d.log.Warn("read persisted attachments", "err", err)
	}
	defer d.refreshForwardFrom()
	for _, a := range atts {
		if strings.HasPrefix(a.Target, ContainerPrefix) {
			// Docker may not answer yet: its events' first resync
			// attaches containers again once it does.
			continue
		}
		if present[a.Target] {
			if !a.WithoutDNS {
				d.registerTarget(a.Target)
			}
			continue
		}
		if pid, ok := pidOf(a.Target); ok && a.PIDStart != 0 {
			if started, err := d.processStart(pid); err != nil || started != a.PIDStart {
				// The PID is free or names another process now: ours is gone.
				d.log.Warn("process of a pid: target is gone (PID free or reused); forgetting the attachment",
					"target", a.Target, "start", a.PIDStart, "now", started, "err", err)
				if _, err := d.forgetGone(a.Target, ErrTargetGone); err != nil {
					d.log.Warn("could not forget attachment", "target", a.Target, "err", err)
				}
				continue
			}
		}
		addrs, err := parsePrefixes(a.Addrs)
		if err == nil {
			_, err = d.deps.Host.Attach(d.cfg.Bridge, a.Target, addrs, d.mtu, AttachOptions{SourceCheck: a.SourceCheck})
		}
		if err != nil {
			d.log.Warn("could not restore attachment; it stays recorded", "target", a.Target, "err", err)
			continue
		}
		d.log.Info("restored attachment", "target", a.Target, "addrs", a.Addrs)
		if !a.WithoutDNS {
			d.registerTarget(a.Target)
		}
	}
	if exposed, _ := d.store.Exposed(); len(exposed) > 0 {
		if addrs, err := parsePrefixes(exposed); err == nil {
			if err := d.deps.Host.Expose(d.cfg.Bridge, addrs); err != nil {
				d.log.Warn("could not restore exposed addresses", "err", err)
			}
		}
	}
}

// handOverRanges gives this router's address ranges to a live peer before
// a reset, and gives the gossip a moment to leave.
func (d *Daemon) handOverRanges() {
	if err := d.ipam.HandOver(); err != nil {
		d.log.Warn("could not hand the address ranges over; run 'weft rmpeer "+d.self.String()+"' on another host", "err", err)
		return
	}
	time.Sleep(300 * time.Millisecond)
}

// resetAll removes everything weft made on this host.
func (d *Daemon) resetAll() error {
	// The fast path's device goes with the router; one left by a crash
	// goes here.
	if err := d.deps.Host.DeleteLink(fastdpDevice); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	if err := d.deps.Host.Reset(d.cfg.Bridge); err != nil {
		return fmt.Errorf("reset: %w", err)
	}
	return nil
}

// Stop implements control.Backend.
func (d *Daemon) Stop() { d.quitOnce.Do(func() { close(d.quit) }) }

// Reset implements control.Backend.
func (d *Daemon) Reset() {
	d.mu.Lock()
	d.reset = true
	d.mu.Unlock()
	d.Stop()
}

func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, control.Userf("invalid address %q: want an IPv4 address with prefix length, like 10.32.0.5/12", s)
		}
		if !p.Addr().Is4() {
			return nil, control.Userf("invalid address %q: only IPv4 addresses are supported", s)
		}
		if p.Bits() < 31 && p.Addr() == p.Masked().Addr() {
			return nil, control.Userf("invalid address %q: that is the network address of %s; pick a host address in it", s, p.Masked())
		}
		out = append(out, p)
	}
	return out, nil
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

func (d *Daemon) startStatusServer(addr string) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("status server on %s: %w (choose another with --status-addr, or '' to disable)", addr, err)
	}
	// Bounded: a request line and headers of 32 KiB at most (431 beyond),
	// idle keep-alive connections closed after a minute; OPTIONS * goes to
	// the handler (405) like every other method but GET and HEAD.
	srv := &http.Server{Addr: ln.Addr().String(), Handler: hostGuard(addr, d.statusHandler()),
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 32 << 10,
		DisableGeneralOptionsHandler: true}
	go srv.Serve(ln)
	return srv, nil
}
