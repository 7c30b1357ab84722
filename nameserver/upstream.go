package nameserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

const (
	// DefaultResolvConf is where the host's upstream resolvers are read from.
	DefaultResolvConf = "/etc/resolv.conf"
	// DefaultRecheckInterval is how often, at most, the resolv.conf file is
	// checked for changes.
	DefaultRecheckInterval = 5 * time.Second
	// DefaultServerTimeout bounds the attempt on one upstream server.
	DefaultServerTimeout = 2 * time.Second
	// maxResolvConfSize bounds how much of a resolv.conf file is read.
	maxResolvConfSize = 64 << 10
)

// ForwarderConfig configures a Forwarder.
type ForwarderConfig struct {
	// ResolvConf is the file listing the upstream servers ("nameserver"
	// lines); empty means DefaultResolvConf.
	ResolvConf string
	// Port is the upstream port; zero means 53. Tests use another.
	Port uint16
	// Self lists the addresses this DNS server listens on; upstream servers
	// equal to one of them are skipped, so that a host whose resolv.conf
	// points at weft does not loop.
	Self []netip.AddrPort
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Timeout bounds the attempt on one server, so that a dead first server
	// leaves time for the next; zero means DefaultServerTimeout. The
	// caller's context bounds the whole exchange.
	Timeout time.Duration
	// RecheckInterval is how often, at most, the file is checked for
	// changes; zero means DefaultRecheckInterval.
	RecheckInterval time.Duration
	// Logger receives a line when the server list changes or cannot be
	// read; nil means discard.
	Logger *slog.Logger
}

// Forwarder is the Exchanger that sends queries to the resolvers listed in a
// resolv.conf file, one after the other, and returns the first answer that is
// not SERVFAIL or REFUSED. It re-reads the file when its size or modification
// time changes. It is safe for concurrent use.
type Forwarder struct {
	cfg ForwarderConfig

	mu        sync.Mutex
	checked   time.Time
	modTime   time.Time
	size      int64
	servers   []netip.AddrPort
	readError error
}

// NewForwarder returns a forwarder; the file is first read on first use.
func NewForwarder(cfg ForwarderConfig) *Forwarder {
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = DefaultResolvConf
	}
	if cfg.Port == 0 {
		cfg.Port = 53
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultServerTimeout
	}
	if cfg.RecheckInterval <= 0 {
		cfg.RecheckInterval = DefaultRecheckInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Forwarder{cfg: cfg}
}

// Servers returns the upstream servers currently in use, re-reading the file
// if it is due and changed.
func (f *Forwarder) Servers() ([]netip.AddrPort, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.cfg.Now()
	if f.checked.IsZero() || now.Sub(f.checked) >= f.cfg.RecheckInterval {
		f.checked = now
		f.reload()
	}
	return f.servers, f.readError
}

// reload re-reads the file if it changed. The caller holds f.mu.
func (f *Forwarder) reload() {
	path := f.cfg.ResolvConf
	st, err := os.Stat(path)
	if err != nil {
		f.servers, f.readError = nil, fmt.Errorf("read upstream resolvers: %w", err)
		f.modTime, f.size = time.Time{}, 0
		return
	}
	if f.readError == nil && f.servers != nil && st.ModTime().Equal(f.modTime) && st.Size() == f.size {
		return
	}
	data, err := readLimited(path, maxResolvConfSize)
	if err != nil {
		f.servers, f.readError = nil, fmt.Errorf("read upstream resolvers: %w", err)
		return
	}
	f.modTime, f.size = st.ModTime(), st.Size()
	servers := make([]netip.AddrPort, 0, 3)
	for _, a := range ParseResolvConf(data) {
		ap := netip.AddrPortFrom(a, f.cfg.Port)
		if !f.isSelf(ap) {
			servers = append(servers, ap)
		}
	}
	f.servers, f.readError = servers, nil
	f.cfg.Logger.Info("dns: upstream resolvers", "file", path, "servers", servers)
}

func (f *Forwarder) isSelf(ap netip.AddrPort) bool {
	for _, s := range f.cfg.Self {
		if s.Port() == ap.Port() && (s.Addr() == ap.Addr() || s.Addr().IsUnspecified() && ap.Addr().IsLoopback()) {
			return true
		}
	}
	return false
}

// Exchange implements Exchanger.
func (f *Forwarder) Exchange(ctx context.Context, m *dns.Msg, network string) (*dns.Msg, error) {
	servers, err := f.Servers()
	if err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	if len(servers) == 0 {
		return nil, fmt.Errorf("forward: %w in %s", ErrNoUpstream, f.cfg.ResolvConf)
	}
	c := &dns.Client{Net: network, UDPSize: dns.DefaultMsgSize}
	var errs []error
	for _, s := range servers {
		if ctx.Err() != nil {
			break
		}
		attempt, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
		reply, _, err := c.ExchangeContext(attempt, m, s.String())
		cancel()
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", s, err))
		case reply.Rcode == dns.RcodeServerFailure || reply.Rcode == dns.RcodeRefused:
			errs = append(errs, fmt.Errorf("%s: %s", s, dns.RcodeToString[reply.Rcode]))
		default:
			return reply, nil
		}
	}
	if len(errs) == 0 {
		errs = append(errs, ctx.Err())
	}
	return nil, fmt.Errorf("forward %s: %w", questionName(m), errors.Join(errs...))
}

func questionName(m *dns.Msg) string {
	if len(m.Question) == 0 {
		return "(no question)"
	}
	return m.Question[0].Name
}

// ParseResolvConf returns the addresses of the "nameserver" lines of a
// resolv.conf file, in order. IPv6 zones and unparsable lines are skipped.
func ParseResolvConf(data []byte) []netip.Addr {
	var out []netip.Addr
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || fields[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(fields[1])
		if err != nil || a.Zone() != "" {
			continue
		}
		out = append(out, a.Unmap())
	}
	return out
}

func readLimited(path string, limit int64) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return io.ReadAll(io.LimitReader(fh, limit))
}
