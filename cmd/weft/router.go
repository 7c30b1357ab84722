package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/weftnet/weft/control"
	"github.com/weftnet/weft/daemon"
	"github.com/weftnet/weft/docker"
	"github.com/weftnet/weft/ipam"
	"github.com/weftnet/weft/mesh"
	"github.com/weftnet/weft/nameserver"
	"github.com/weftnet/weft/plugin"
	"github.com/weftnet/weft/secure"
)

// protocolVersion is the mesh's control protocol version, as `weft
// version` shows it.
var protocolVersion = strconv.Itoa(mesh.ProtocolMaxVersion)

// logName is the router's log file inside the state directory.
const logName = "weft.log"

// persistedFiles are removed by `weft reset`.
var persistedFiles = []string{"weft.db", control.SocketName, daemon.HoldFile, proxySocketName}

type routerFlags struct {
	nick         string
	passwordFile string
	port         int
	host         string
	ipallocRange string
	ipallocSub   string
	dnsDomain    string
	noDNS        bool
	noFastDP     bool
	fastDPPort   int
	resolvConf   string
	trusted      string
	connLimit    int
	statusAddr   string
	mtu          int
	noDiscovery  bool
	logLevel     string
	noPlugin     bool
	pluginSocket string
	proxy        bool
	noProxy      bool
	proxySocket  string
	proxyAddr    string
	proxyCert    string
	proxyKey     string
	proxyCA      string
	noDefaultIPA bool
}

func parseRouterFlags(g *globals, name string, args []string) (*routerFlags, []string, error) {
	f := &routerFlags{}
	fs := newFlagSet(g, name, "[OPTIONS] [PEER...]")
	fs.StringVar(&f.nick, "name", "", "nickname shown in status (default: the hostname)")
	fs.StringVar(&f.passwordFile, "password-file", "", "encrypt and authenticate everything between peers with the password in FILE (env WEFT_PASSWORD)")
	fs.IntVar(&f.port, "port", mesh.DefaultPort, "TCP (control) and UDP (data) port of the mesh")
	fs.StringVar(&f.host, "host", "", "address to listen on (default: all)")
	fs.StringVar(&f.ipallocRange, "ipalloc-range", "10.32.0.0/12", "range for automatic addresses; every router of the mesh must use the same")
	fs.StringVar(&f.ipallocSub, "ipalloc-default-subnet", "", "subnet of the range for attaches with no address (default: the whole range)")
	fs.StringVar(&f.dnsDomain, "dns-domain", "weft.local.", "domain of container names")
	fs.BoolVar(&f.noDNS, "no-dns", false, "run no DNS server")
	fs.BoolVar(&f.noFastDP, "no-fastdp", false, "carry all traffic in userspace, never through the kernel fast path")
	fs.IntVar(&f.fastDPPort, "fastdp-port", daemon.DefaultFastDPPort, "UDP port of the kernel fast path (VXLAN); every router of the mesh must use the same")
	fs.StringVar(&f.resolvConf, "resolv-conf", "/etc/resolv.conf", "file naming the upstream resolvers for names outside the DNS domain")
	fs.StringVar(&f.trusted, "trusted-subnets", "", "peers in these subnets (CIDR,...) exchange data unencrypted")
	fs.IntVar(&f.connLimit, "conn-limit", 100, "most connections this router accepts (0: unlimited)")
	fs.StringVar(&f.statusAddr, "status-addr", "127.0.0.1:6784", "HTTP status API and /metrics ('' to disable)")
	fs.IntVar(&f.mtu, "mtu", 0, "MTU of the weft network (default: the underlay's MTU less the encapsulation)")
	fs.BoolVar(&f.noDiscovery, "no-discovery", false, "connect only to the peers given, not to peers learnt from them")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&f.noPlugin, "no-plugin", false, "do not serve the Docker network and IPAM driver 'weft'")
	fs.StringVar(&f.pluginSocket, "plugin-socket", plugin.SocketPath, "where to serve the Docker network and IPAM driver (Docker looks in /run/docker/plugins)")
	fs.BoolVar(&f.proxy, "proxy", false, "serve the Docker API proxy even when Docker is not running yet (default: when Docker is present)")
	fs.BoolVar(&f.noProxy, "no-proxy", false, "do not serve the Docker API proxy")
	fs.StringVar(&f.proxySocket, "proxy-socket", "", "unix socket of the Docker API proxy (default: docker.sock in the state dir)")
	fs.StringVar(&f.proxyAddr, "proxy-addr", "", "also serve the Docker API proxy on this TCP ADDR:PORT, with TLS (needs --proxy-tls-cert, --proxy-tls-key, --proxy-tls-cacert)")
	fs.StringVar(&f.proxyCert, "proxy-tls-cert", "", "TLS certificate (PEM) of the proxy's TCP listener")
	fs.StringVar(&f.proxyKey, "proxy-tls-key", "", "TLS key (PEM) of the proxy's TCP listener")
	fs.StringVar(&f.proxyCA, "proxy-tls-cacert", "", "CA (PEM) that the proxy's TCP clients' certificates must be signed by")
	fs.BoolVar(&f.noDefaultIPA, "no-default-ipalloc", false, "the Docker API proxy puts only containers with WEFT_CIDR on the weft network")
	peers, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if f.proxy && f.noProxy {
		return nil, nil, fmt.Errorf("%s: --proxy and --no-proxy contradict each other; give one", name)
	}
	if _, err := f.proxyTLS(); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := checkNickName(f.nick); err != nil {
		return nil, nil, fmt.Errorf("%s: --name %q: %w", name, f.nick, err)
	}
	if f.port < 1 || f.port > 65535 {
		return nil, nil, fmt.Errorf("%s: --port %d: want a port from 1 to 65535", name, f.port)
	}
	if f.fastDPPort < 1 || f.fastDPPort > 65535 {
		return nil, nil, fmt.Errorf("%s: --fastdp-port %d: want a port from 1 to 65535", name, f.fastDPPort)
	}
	if !f.noFastDP && f.fastDPPort == f.port {
		return nil, nil, fmt.Errorf("%s: --fastdp-port %d is also --port, whose UDP port carries the userspace path; choose another", name, f.fastDPPort)
	}
	if f.host != "" {
		if _, err := netip.ParseAddr(f.host); err != nil {
			return nil, nil, fmt.Errorf("%s: --host %q: want an IP address of this host", name, f.host)
		}
	}
	if err := checkIPAlloc(f.ipallocRange, f.ipallocSub); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	if _, err := nameserver.NormalizeDomain(f.dnsDomain); err != nil {
		return nil, nil, fmt.Errorf("%s: --dns-domain %q: want a domain name like weft.local", name, f.dnsDomain)
	}
	if f.connLimit < 0 {
		return nil, nil, fmt.Errorf("%s: --conn-limit %d: must not be negative", name, f.connLimit)
	}
	if f.mtu != 0 && (f.mtu < 576 || f.mtu > 65000) {
		return nil, nil, fmt.Errorf("%s: --mtu %d: want 576 to 65000, or 0 for automatic", name, f.mtu)
	}
	if _, err := readPassword(f.passwordFile); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	if _, err := secure.ParseTrustedSubnets(f.trusted); err != nil {
		return nil, nil, fmt.Errorf("%s: --trusted-subnets: %v; want CIDRs like 10.0.0.0/8,192.168.1.0/24", name, err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, nil, fmt.Errorf("%s: --log-level %q: want debug, info, warn or error", name, f.logLevel)
	}
	for _, p := range peers {
		if err := mesh.ValidateTarget(p, f.port); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return f, peers, nil
}

// runRouter runs the router in the foreground until SIGINT/SIGTERM or a
// stop request.
func runRouter(g *globals, args []string) error {
	f, peers, err := parseRouterFlags(g, "router", args)
	if err != nil {
		return err
	}
	var level slog.Level
	level.UnmarshalText([]byte(f.logLevel))
	var out io.Writer = os.Stderr
	if path := os.Getenv(logFileEnv); path != "" {
		// Started by launch, with stdout and stderr on this file.
		os.Unsetenv(logFileEnv)
		rl, err := openRotatingLog(path, logMaxBytes, true)
		if err != nil {
			return err
		}
		defer rl.Close()
		out = rl
	}
	log := slog.New(newRateLimitHandler(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}), logBurst, logInterval, nil))
	nick := f.nick
	if nick == "" {
		nick, _ = os.Hostname()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	password, err := readPassword(f.passwordFile)
	if err != nil {
		return err
	}
	if w := noPasswordWarning(f.host, f.port, password); w != "" {
		log.Warn(w)
	}
	trusted, _ := secure.ParseTrustedSubnets(f.trusted)
	cfg := daemon.Config{
		Password:       password,
		TrustedSubnets: trusted,
		StateDir:       g.stateDir,
		NickName:       nick,
		Host:           f.host,
		Port:           f.port,
		MTU:            f.mtu,
		ConnLimit:      f.connLimit,
		Discovery:      !f.noDiscovery,
		StatusAddr:     f.statusAddr,
		Peers:          peers,
		PeersGiven:     len(peers) > 0,
		Version:        Version,
		Logger:         log,
		DNS:            !f.noDNS,
		FastDP:         !f.noFastDP,
		FastDPPort:     f.fastDPPort,
		DNSDomain:      f.dnsDomain,
		ResolvConf:     f.resolvConf,
	}
	cfg.IPAllocRange, _ = netip.ParsePrefix(f.ipallocRange)
	if f.ipallocSub != "" {
		cfg.IPAllocDefaultSubnet, _ = netip.ParsePrefix(f.ipallocSub)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(routerProcs(runtime.NumCPU()))
	}
	if !f.noPlugin {
		cfg.PluginSocket = f.pluginSocket
	}
	proxySocket := f.proxySocket
	if proxySocket == "" {
		proxySocket = filepath.Join(g.stateDir, proxySocketName)
	}
	// A shell that ran `eval $(weft env)` points DOCKER_HOST at the proxy;
	// the router itself talks to Docker.
	dockerHost := engineHost(os.Getenv("DOCKER_HOST"), os.Getenv(origDockerHostEnv), proxySocket)
	os.Setenv("DOCKER_HOST", dockerHost)
	cfg.Proxy = daemon.ProxyConfig{Socket: proxySocket, DockerHost: dockerHost, Addr: f.proxyAddr, NoDefaultIPAlloc: f.noDefaultIPA}
	switch {
	case f.noProxy:
		cfg.Proxy.Mode = daemon.ProxyOff
	case f.proxy:
		cfg.Proxy.Mode = daemon.ProxyOn
	}
	cfg.Proxy.TLS, _ = f.proxyTLS()
	if exe, err := os.Executable(); err == nil {
		cfg.Proxy.HoldBinary = exe
	}
	dc, err := docker.New(log.With("part", "docker"))
	if err != nil {
		log.Warn("no Docker client: container targets and the plugin are unavailable", "err", err)
		dc = nil
	}
	return daemon.Run(ctx, cfg, realDeps(dc), nil)
}

// routerProcs is how many CPUs the router uses at once: half of them.
// Its readers make their non-blocking system calls without giving up
// their processor, so this bounds how many readers (TAP queues, UDP)
// run at a time, kernel work included; fewer schedulers also mean fewer
// thread wakeups per packet: on 2 CPUs one used 5-10% less CPU per
// gigabit than two. The other half stays with the workloads whose
// traffic the router carries. GOMAXPROCS in the environment overrides it.
func routerProcs(cpus int) int { return max(1, cpus/2) }

// runLaunch starts `weft router` in the background with the same options
// and waits until it serves requests.
func runLaunch(g *globals, args []string) error {
	f, _, err := parseRouterFlags(g, "launch", args)
	if err != nil {
		return err
	}
	c := client(g)
	if c.Ping() {
		return fmt.Errorf("launch: a router is already running (state dir %s); stop it with 'weft stop'", g.stateDir)
	}
	if err := os.MkdirAll(g.stateDir, 0o700); err != nil {
		return fmt.Errorf("launch: create state dir: %w", err)
	}
	if err := daemon.CheckStateDir(g.stateDir); err != nil {
		return fmt.Errorf("launch: %w", err)
	}
	logPath := filepath.Join(g.stateDir, logName)
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("launch: open log: %w", err)
	}
	defer logFile.Close()
	start, _ := logFile.Seek(0, 2)
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("launch: find own executable: %w", err)
	}
	cmd := exec.Command(exe, append([]string{"--state-dir", g.stateDir, "router"}, args...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), logFileEnv+"="+logPath)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("launch: start router: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("launch: the router failed to start: %s (log: %s)", lastError(logPath, start), logPath)
		case <-deadline:
			return fmt.Errorf("launch: the router did not become ready within 30s (pid %d, log: %s)", cmd.Process.Pid, logPath)
		case <-time.After(50 * time.Millisecond):
			if c.Ping() {
				os.WriteFile(filepath.Join(g.stateDir, "weft.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600)
				password, _ := readPassword(f.passwordFile)
				if w := noPasswordWarning(f.host, f.port, password); w != "" {
					fmt.Fprintln(g.stderr, "weft: warning: "+w)
				}
				return nil
			}
		}
	}
}

// lastError returns the last "weft: " line the router wrote to its log
// after offset start.
func lastError(path string, start int64) string {
	f, err := os.Open(path)
	if err != nil {
		return "unknown error"
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.Size() < start {
		start = 0 // rotated since
	}
	f.Seek(start, 0)
	msg := "unknown error"
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "weft: ") {
			msg = strings.TrimPrefix(line, "weft: ")
		}
	}
	return msg
}

var _ = flag.ErrHelp

// noPasswordWarning is the warning for a router that listens on host
// (all addresses when "") and port without a password: anyone who
// reaches the port can join the network and read its traffic. It is ""
// when there is a password or the router listens on a loopback address
// only.
func noPasswordWarning(host string, port int, password []byte) string {
	if len(password) > 0 {
		return ""
	}
	if a, err := netip.ParseAddr(host); err == nil && a.IsLoopback() {
		return ""
	}
	where := "on all addresses"
	if host != "" {
		where = "on " + host
	}
	return fmt.Sprintf("no password: traffic between peers is not encrypted, and anyone who reaches port %d %s can join this network; "+
		"give --password-file FILE (or WEFT_PASSWORD) to every router (docs/security.md)", port, where)
}

// checkNickName accepts a router's nickname ("" for the hostname): it
// is printed as one field of one line in status and logs, so it has no
// spaces or control characters.
func checkNickName(nick string) error {
	switch {
	case len(nick) > 64:
		return fmt.Errorf("longer than 64 bytes; want a short name like the hostname")
	case strings.IndexFunc(nick, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError }) >= 0:
		return fmt.Errorf("has a space or control character; want a name like the hostname (host-1)")
	}
	return nil
}

// readPassword returns the password from file (one trailing newline
// stripped) or, when file is "", from WEFT_PASSWORD; nil when neither is
// set.
func readPassword(file string) ([]byte, error) {
	if file == "" {
		if pw := os.Getenv("WEFT_PASSWORD"); pw != "" {
			return []byte(pw), nil
		}
		return nil, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--password-file: %w", err)
	}
	data = bytes.TrimSuffix(data, []byte("\n"))
	data = bytes.TrimSuffix(data, []byte("\r"))
	if len(data) == 0 {
		return nil, fmt.Errorf("--password-file %s is empty: put the network's password in it", file)
	}
	return data, nil
}

// checkIPAlloc checks --ipalloc-range and --ipalloc-default-subnet.
func checkIPAlloc(rng, sub string) error {
	r, err := netip.ParsePrefix(rng)
	switch {
	case err != nil || !r.Addr().Is4():
		return fmt.Errorf("--ipalloc-range %q: want an IPv4 CIDR like 10.32.0.0/12", rng)
	case r != r.Masked():
		return fmt.Errorf("--ipalloc-range %s: host bits are set; did you mean %s?", rng, r.Masked())
	case r.Bits() < ipam.MinPoolBits || r.Bits() > ipam.MaxPoolBits:
		return fmt.Errorf("--ipalloc-range %s: want a prefix length from /%d to /%d", rng, ipam.MinPoolBits, ipam.MaxPoolBits)
	}
	if sub == "" {
		return nil
	}
	s, err := netip.ParsePrefix(sub)
	switch {
	case err != nil || !s.Addr().Is4():
		return fmt.Errorf("--ipalloc-default-subnet %q: want an IPv4 CIDR like 10.32.4.0/24", sub)
	case s != s.Masked():
		return fmt.Errorf("--ipalloc-default-subnet %s: host bits are set; did you mean %s?", sub, s.Masked())
	case s.Bits() > ipam.MaxPoolBits:
		return fmt.Errorf("--ipalloc-default-subnet %s: too small; it needs at least 4 addresses (/%d or shorter)", sub, ipam.MaxPoolBits)
	case !r.Contains(s.Addr()) || s.Bits() < r.Bits():
		return fmt.Errorf("--ipalloc-default-subnet %s is not inside --ipalloc-range %s", sub, rng)
	}
	return nil
}
