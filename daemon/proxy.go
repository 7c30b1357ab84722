package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/proxy"
	"github.com/weftnet/weft/proxy/hold"
)

// ProxyMode says whether the Docker API proxy is served.
type ProxyMode int

const (
	// ProxyAuto serves the proxy when Docker is present (it answers, or
	// its socket exists).
	ProxyAuto ProxyMode = iota
	// ProxyOn serves it whatever Docker's state (it may start later).
	ProxyOn
	// ProxyOff serves no proxy.
	ProxyOff
)

// ProxyConfig configures the Docker API proxy.
type ProxyConfig struct {
	Mode ProxyMode
	// Socket is the proxy's unix socket (the CLI's default: docker.sock in
	// the state dir).
	Socket string
	// DockerHost is Docker's own socket, unix://PATH.
	DockerHost string
	// Addr, when set, is a TCP address the proxy also listens on, with
	// TLS (required: a Docker API on TCP is root on the host for whoever
	// reaches it).
	Addr string
	TLS  *tls.Config
	// HoldBinary is the static weft binary held containers run; the
	// router copies it into the state dir so that an upgrade or a rebuild
	// of the original does not break containers that start later.
	HoldBinary string
	// NoDefaultIPAlloc leaves containers without WEFT_CIDR alone.
	NoDefaultIPAlloc bool
}

// HoldFile is the copy of the hold binary in the state dir (weft reset
// removes it).
const HoldFile = "weft-hold"

// ErrProxyTLS is the error of a TCP proxy address without TLS.
var ErrProxyTLS = errors.New("the Docker API proxy listens on TCP only with TLS (a Docker API on TCP gives root on this host to whoever reaches it); give --proxy-tls-cert, --proxy-tls-key and --proxy-tls-cacert, or drop --proxy-addr")

// proxyServer is a serving proxy and its listeners.
type proxyServer struct {
	p      *proxy.Proxy
	socket string
	addr   string
	done   chan struct{}
}

// Close stops the proxy and removes its socket.
func (s *proxyServer) Close() {
	s.p.Close()
	<-s.done
	os.Remove(s.socket)
}

// startProxy serves the Docker API proxy when it is on (see ProxyMode):
// on its unix socket, with the owner, group and mode of Docker's own, and
// on the TCP address with TLS when one is given. It returns nil when
// nothing is served.
func (d *Daemon) startProxy() (*proxyServer, error) {
	pc := d.cfg.Proxy
	if pc.Mode == ProxyOff || pc.Socket == "" {
		return nil, nil
	}
	if pc.Addr != "" && pc.TLS == nil {
		return nil, ErrProxyTLS
	}
	dockerSock, ok := strings.CutPrefix(pc.DockerHost, "unix://")
	if !ok || dockerSock == "" {
		if pc.Mode == ProxyOn {
			return nil, fmt.Errorf("the Docker API proxy needs Docker on a unix socket; DOCKER_HOST is %q", pc.DockerHost)
		}
		d.log.Info("Docker is not on a unix socket: the Docker API proxy is not served", "docker_host", pc.DockerHost)
		return nil, nil
	}
	info, statErr := os.Stat(dockerSock)
	if statErr != nil && pc.Mode == ProxyAuto {
		d.log.Info("Docker is not here: the Docker API proxy is not served", "socket", dockerSock)
		return nil, nil
	}
	holdBin, err := d.installHold(pc.HoldBinary)
	if err != nil {
		if pc.Mode == ProxyOn {
			return nil, err
		}
		d.log.Warn("the Docker API proxy is not served", "err", err)
		return nil, nil
	}
	p, err := proxy.New(proxy.Config{
		DockerHost:       pc.DockerHost,
		Weft:             proxyBackend{d},
		HoldBinary:       holdBin,
		NoDefaultIPAlloc: pc.NoDefaultIPAlloc,
		Log:              d.log.With("part", "proxy"),
	})
	if err != nil {
		return nil, err
	}
	ln, err := listenProxy(pc.Socket, info)
	if err != nil {
		return nil, err
	}
	if dir := filepath.Dir(pc.Socket); info != nil && info.Mode().Perm()&0o077 != 0 && filepath.Clean(dir) == filepath.Clean(d.cfg.StateDir) {
		// Docker's group (or everyone) may use Docker, so they may use
		// the proxy: let them reach its socket, not list the state dir.
		// Everything else in it is 0600. (A --proxy-socket elsewhere is
		// in a directory the user chose: its mode is theirs.)
		if err := os.Chmod(dir, 0o711); err != nil {
			ln.Close()
			return nil, fmt.Errorf("open the state dir to Docker's users: %w", err)
		}
	}
	listeners := []net.Listener{ln}
	if pc.Addr != "" {
		tln, err := tls.Listen("tcp", pc.Addr, pc.TLS)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("Docker API proxy: listen on %s: %w", pc.Addr, err)
		}
		listeners = append(listeners, tln)
	}
	s := &proxyServer{p: p, socket: pc.Socket, addr: pc.Addr, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		errs := make(chan error, len(listeners))
		for _, l := range listeners {
			go func() { errs <- p.Serve(l) }()
		}
		for range listeners {
			if err := <-errs; err != nil {
				d.log.Warn("Docker API proxy stopped serving", "err", err)
			}
		}
	}()
	d.log.Info("serving the Docker API proxy", "socket", pc.Socket, "tcp", pc.Addr, "docker", pc.DockerHost)
	return s, nil
}

// listenProxy makes the proxy's unix socket with the owner, group and
// mode of Docker's (root only when Docker's is not there yet). A socket
// left by a router that died is replaced; one that answers is not.
func listenProxy(path string, docker os.FileInfo) (net.Listener, error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("Docker API proxy: %s is in use by another process; stop it or give another --proxy-socket", path)
	}
	// The socket is made in a private directory, given Docker's owner
	// and mode there, and only then renamed into place: nobody can
	// connect in between.
	dir, err := os.MkdirTemp(filepath.Dir(path), ".proxy-")
	if err != nil {
		return nil, fmt.Errorf("Docker API proxy: %w", err)
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, fmt.Errorf("Docker API proxy: listen on %s: %w", path, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	uid, gid, mode := 0, 0, os.FileMode(0o600)
	if docker != nil {
		if st, ok := docker.Sys().(*syscall.Stat_t); ok {
			uid, gid = int(st.Uid), int(st.Gid)
		}
		mode = docker.Mode().Perm()
	}
	if err = os.Chown(tmp, uid, gid); err == nil {
		if err = os.Chmod(tmp, mode); err == nil {
			os.Remove(path)
			err = os.Rename(tmp, path)
		}
	}
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("Docker API proxy: put the socket at %s with Docker's owner and mode: %w", path, err)
	}
	return ln, nil
}

// installHold copies the static weft binary to the state dir, where held
// containers mount it from, and returns the copy's path.
func (d *Daemon) installHold(src string) (string, error) {
	if src == "" {
		return "", errors.New("no weft binary to hold containers with")
	}
	static, err := hold.Static(src)
	if err != nil {
		return "", fmt.Errorf("check %s: %w", src, err)
	}
	if !static {
		return "", fmt.Errorf("%s is linked dynamically, so it cannot run in containers to hold their command until their interface is up; build weft with CGO_ENABLED=0 (make build does)", src)
	}
	dst := filepath.Join(d.cfg.StateDir, HoldFile)
	in, err := os.ReadFile(src)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", src, err)
	}
	if cur, err := os.ReadFile(dst); err == nil && slices.Equal(cur, in) {
		return dst, nil
	}
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, in, 0o755); err != nil {
		return "", fmt.Errorf("install %s: %w", dst, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", fmt.Errorf("install %s: %w", dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", fmt.Errorf("install %s: %w", dst, err)
	}
	return dst, nil
}

// proxyBackend is the router as the proxy asks it (proxy.Weft).
type proxyBackend struct{ d *Daemon }

func (b proxyBackend) CheckAddrs(specs []string) error { return b.d.checkAddrs(specs) }

func (b proxyBackend) AttachContainer(ctx context.Context, id string) error {
	return b.d.attachHeld(ctx, id)
}

func (b proxyBackend) DNS() (string, string, bool) {
	if b.d.dns == nil {
		return "", "", false
	}
	return DNSAddr, b.d.dns.domain, true
}

// checkAddrs says whether a target could be attached with specs, without
// taking anything: the forms parse, subnets to allocate in lie in a pool,
// exact addresses are host addresses that nobody here holds. (A peer may
// still hold one: the attach itself finds out.)
func (d *Daemon) checkAddrs(specs []string) error {
	parsed, err := parseAddrSpecs(specs)
	if err != nil {
		return err
	}
	rng, _ := d.ipam.Range()
	for _, s := range parsed {
		switch {
		case s.alloc && s.subnet.IsValid():
			last := lastAddr(s.subnet)
			if !d.ipam.InPools(s.subnet.Addr()) || !d.ipam.InPools(last) {
				return control.Userf("subnet %s is outside weft's address range %s (--ipalloc-range); give a subnet inside it, or an exact address as ip:CIDR", s.subnet, rng)
			}
		case !s.alloc:
			a := s.exact.Addr()
			if s.exact.Bits() < 31 && (a == s.exact.Masked().Addr() || a == lastAddr(s.exact.Masked())) {
				return control.Userf("%s is the network or broadcast address of %s; give a host address", a, s.exact.Masked())
			}
			if holder := d.ipam.Holder(a); holder != "" {
				return control.Userf("address %s is already taken by %s on this host", a, holder)
			}
			if holder := d.localHolder(a); holder != "" {
				return control.Userf("address %s is already taken by %s on this host", a, holder)
			}
		}
	}
	return nil
}

// localHolder is the target attached on this host with address a, or ""
// ("" too when the store cannot be read: the attach finds out then).
// Addresses outside weft's pools are not in the allocator, so this is
// what keeps two local containers from being given the same one.
func (d *Daemon) localHolder(a netip.Addr) string {
	atts, err := d.store.Attachments()
	if err != nil {
		return ""
	}
	for _, att := range atts {
		for _, s := range att.Addrs {
			if p, err := netip.ParsePrefix(s); err == nil && p.Addr() == a {
				return att.Target
			}
		}
	}
	return ""
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// attachHeld attaches a running container that the proxy holds (its
// command waits for a ready ethweft): with its earlier addresses when the
// router knows it, else with those its WEFT_CIDR names. The proxy calls
// it when the container starts, and so does the Docker event handler, so
// it is serialised, and the second call for the same run of the
// container (the same PID, or a short command that has already ended)
// does nothing.
func (d *Daemon) attachHeld(ctx context.Context, id string) error {
	d.heldMu.Lock()
	defer d.heldMu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := d.container(id)
	if err != nil {
		return err
	}
	if pid, ok := d.heldReady[c.ID]; ok && (pid == c.PID || !c.Running) {
		return nil
	}
	if !c.Running {
		return control.Userf("container %s is not running", c.Name)
	}
	target := ContainerPrefix + c.ID
	switch {
	case d.attached(target) && d.hasInterface(target):
		err = d.deps.Host.MarkReady(target)
	case d.attached(target):
		err = d.reattach(target)
	default:
		specs, _, attach, perr := proxy.AttachSpecs(c.Env)
		if perr != nil || !attach {
			return perr
		}
		_, err = d.Attach(control.AttachRequest{Target: target, CIDRs: specs})
	}
	if err != nil {
		return err
	}
	d.heldReady[c.ID] = c.PID
	return nil
}

// hasInterface reports whether the host lists target as attached now.
func (d *Daemon) hasInterface(target string) bool {
	list, err := d.deps.Host.List(d.cfg.Bridge)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(list, func(a Attachment) bool { return a.Target == target && a.Err == nil })
}

// held reports whether a container runs the proxy's hold entrypoint.
func held(c Container) bool {
	_, ok := hold.Strip(c.Entrypoint)
	return ok
}
