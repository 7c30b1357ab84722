package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/client"
	"github.com/docker/go-connections/sockets"
)

// Defaults for the bounds a zero Config leaves open.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultMaxHeaderBytes    = 1 << 20
	defaultIdleTimeout       = 2 * time.Minute
)

// Config says where the proxy forwards and how it bounds its callers.
type Config struct {
	// DockerHost is the Docker daemon's socket, as DOCKER_HOST spells it:
	// unix:///var/run/docker.sock.
	DockerHost string
	// Weft, when not nil, puts containers created through the proxy on
	// the weft network (see planCreate); nil passes every request through
	// untouched.
	Weft Weft
	// HoldBinary is the static weft binary on the host that held
	// containers run their hold entrypoint from (mounted read-only at
	// hold.MountPath). Required with Weft.
	HoldBinary string
	// NoDefaultIPAlloc leaves containers without WEFT_CIDR off the weft
	// network (weave's --no-default-ipalloc).
	NoDefaultIPAlloc bool
	// ReadHeaderTimeout bounds how long a caller may take to send a
	// request's header (DefaultReadHeaderTimeout when zero).
	ReadHeaderTimeout time.Duration
	// MaxHeaderBytes bounds a request's header (DefaultMaxHeaderBytes when
	// zero).
	MaxHeaderBytes int
	// Log receives one line per failed forward; nil discards.
	Log *slog.Logger
}

// Proxy is a Docker API proxy. Serve and Close may be called from any
// goroutine.
type Proxy struct {
	cfg Config
	rp  *httputil.ReverseProxy
	// api asks Docker what the proxy needs to know itself (images,
	// networks, containers).
	api *client.Client
	// dial opens a connection to Docker (its address arguments are
	// ignored: the socket is fixed).
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	srv  *http.Server

	mu     sync.Mutex
	conns  map[*conn]struct{}
	closed bool
}

// New makes a proxy to cfg.DockerHost. It does not dial the daemon: an
// unreachable daemon is reported to each request as a 502.
func New(cfg Config) (*Proxy, error) {
	path, ok := strings.CutPrefix(cfg.DockerHost, "unix://")
	if !ok || path == "" {
		return nil, fmt.Errorf("new proxy to %q: %w", cfg.DockerHost, ErrDockerHost)
	}
	if cfg.ReadHeaderTimeout <= 0 {
		cfg.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Weft != nil && cfg.HoldBinary == "" {
		return nil, fmt.Errorf("new proxy: %w", errNoHoldBinary)
	}
	tr := &http.Transport{}
	if err := sockets.ConfigureTransport(tr, "unix", path); err != nil {
		return nil, fmt.Errorf("new proxy to %s: %w", cfg.DockerHost, err)
	}
	api, err := client.NewClientWithOpts(client.WithHost(cfg.DockerHost), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("new proxy to %s: %w", cfg.DockerHost, err)
	}
	p := &Proxy{cfg: cfg, api: api, conns: make(map[*conn]struct{}), dial: tr.DialContext}
	target := &url.URL{Scheme: "http", Host: "docker"}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host
		},
		Transport:      tr,
		FlushInterval:  -1,
		ErrorLog:       slog.NewLogLogger(cfg.Log.Handler(), slog.LevelDebug),
		ErrorHandler:   p.forwardError,
		ModifyResponse: p.modifyResponse,
	}
	p.srv = &http.Server{
		Handler:           http.HandlerFunc(p.serveHTTP),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		IdleTimeout:       defaultIdleTimeout,
		ErrorLog:          slog.NewLogLogger(cfg.Log.Handler(), slog.LevelDebug),
	}
	return p, nil
}

// Serve accepts connections on ln until Close, and returns nil then (or
// the listener's error before). It closes ln.
func (p *Proxy) Serve(ln net.Listener) error {
	err := p.srv.Serve(&listener{Listener: ln, p: p})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops the proxy: the listeners are closed and so is every
// connection, streaming and hijacked ones included. It does not wait for
// handlers to return.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	conns := make([]*conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	err := p.srv.Close()
	for _, c := range conns {
		c.Close()
	}
	p.api.Close()
	return err
}

func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if p.cfg.Weft != nil {
		switch rt, _ := routeOf(r.Method, r.URL.Path); rt {
		case routeCreate:
			p.serveCreate(w, r)
			return
		case routeNetworkCreate:
			p.serveNetworkCreate(w, r)
			return
		}
	}
	if isHijack(r) && r.Header.Get("Upgrade") == "" {
		p.splice(w, r)
		return
	}
	if r.ProtoAtLeast(1, 1) && isRaw(r.Method, r.URL.Path) {
		p.serveRaw(w, r)
		return
	}
	p.rp.ServeHTTP(w, r)
}

// forwardError answers a request the daemon did not answer as Docker's
// client expects an error: JSON {"message": ...}.
func (p *Proxy) forwardError(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil {
		return // the caller went away; nobody to answer
	}
	p.cfg.Log.Warn("docker proxy: forward", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusBadGateway, "weft proxy: cannot reach Docker at "+p.cfg.DockerHost+": "+err.Error())
}

// writeError writes Docker's error body.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Message string `json:"message"`
	}{msg})
}

// listener tracks its connections so that Close ends hijacked ones too
// (net/http forgets a connection once it is hijacked).
type listener struct {
	net.Listener
	p *Proxy
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &conn{Conn: c, p: l.p}
	l.p.mu.Lock()
	closed := l.p.closed
	if !closed {
		l.p.conns[tc] = struct{}{}
	}
	l.p.mu.Unlock()
	if closed {
		c.Close()
		return nil, net.ErrClosed
	}
	return tc, nil
}

// conn is an accepted connection that leaves the proxy's set when closed
// and keeps CloseWrite, which the hijacked copy uses to pass half-closes.
type conn struct {
	net.Conn
	p    *Proxy
	once sync.Once
}

func (c *conn) Close() error {
	c.once.Do(func() {
		c.p.mu.Lock()
		delete(c.p.conns, c)
		c.p.mu.Unlock()
	})
	return c.Conn.Close()
}

// CloseWrite half-closes the connection when the underlying one can.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("close write: %w", errors.ErrUnsupported)
}

var _ io.Closer = (*Proxy)(nil)
