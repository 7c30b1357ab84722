package plugin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/docker/go-connections/sockets"
	"github.com/docker/go-plugins-helpers/ipam"
	"github.com/docker/go-plugins-helpers/network"
)

// SocketPath is where Docker looks for the plugin named weft.
const SocketPath = "/run/docker/plugins/" + Name + ".sock"

// manifest tells Docker the socket serves both drivers.
const manifest = `{"Implements": ["NetworkDriver", "IpamDriver"]}`

// maxRequestBytes bounds a request body: Docker's largest (a network
// with its options) is a few kilobytes.
const maxRequestBytes = 1 << 20

// Server serves the drivers on the plugin socket.
type Server struct {
	path     string
	http     *http.Server
	ln       net.Listener
	backends []*pipeListener
	done     chan struct{}
}

// Serve listens on the unix socket path (SocketPath for Docker to find
// it), readable and writable by root only, and serves d until Close. A
// socket file left by a router that was killed is replaced.
//
// Who can reach it: root (dockerd). What the worst of them can send is
// bounded: bodies of at most 1 MiB, headers read within 10 s, idle
// connections closed after 2 minutes; anything malformed is answered with
// an error. Each request is handed to the library's handler of its
// driver, go-plugins-helpers' network or ipam Handler, over an in-process
// pipe.
func Serve(path string, d *Drivers, log *slog.Logger) (*Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("plugin socket directory: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("plugin socket %s: another weft router serves it; stop it first, or run this one with --no-plugin", path)
	}
	ln, err := sockets.NewUnixSocket(path, 0)
	if err != nil {
		return nil, fmt.Errorf("plugin socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("plugin socket %s: %w", path, err)
	}
	s := &Server{path: path, ln: ln, done: make(chan struct{})}
	var mux http.Handler
	mux, s.backends = newHandler(d, log)
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(s.done)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("plugin socket stopped", "err", err)
		}
	}()
	return s, nil
}

// Close stops serving and removes the socket file.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	<-s.done
	for _, b := range s.backends {
		b.Close()
	}
	if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}

// newHandler routes Docker's calls: Activate is answered here, the
// drivers' calls go to go-plugins-helpers' network and ipam handlers,
// each served on an in-process listener (returned, for Close).
func newHandler(d *Drivers, log *slog.Logger) (http.Handler, []*pipeListener) {
	netLn, ipamLn := newPipeListener(), newPipeListener()
	go network.NewHandler(d.Network()).Serve(netLn)
	go ipam.NewHandler(d.IPAM()).Serve(ipamLn)
	toNet, toIPAM := proxyTo(netLn, log), proxyTo(ipamLn, log)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/Plugin.Activate":
			w.Header().Set("Content-Type", "application/vnd.docker.plugins.v1.1+json")
			fmt.Fprintln(w, manifest)
		case strings.HasPrefix(r.URL.Path, "/NetworkDriver."):
			toNet.ServeHTTP(w, r)
		case strings.HasPrefix(r.URL.Path, "/IpamDriver."):
			toIPAM.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
	return http.MaxBytesHandler(h, maxRequestBytes), []*pipeListener{netLn, ipamLn}
}

// proxyTo forwards requests to a handler served on an in-process
// listener.
func proxyTo(ln *pipeListener, log *slog.Logger) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = "http", "plugin"
		},
		Transport: &http.Transport{DialContext: ln.dial, MaxIdleConns: 4, IdleConnTimeout: time.Minute},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			log.Debug("plugin request failed", "path", r.URL.Path, "err", err)
			w.Header().Set("Content-Type", "application/vnd.docker.plugins.v1.1+json")
			w.WriteHeader(http.StatusInternalServerError)
			msg := strings.ReplaceAll(err.Error(), `"`, `'`)
			fmt.Fprintf(w, "{\"Err\":%q}\n", "weft plugin: "+msg)
		},
	}
}

// pipeListener is a net.Listener whose connections are in-process pipes
// made by dial.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

func (l *pipeListener) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.closed:
	case <-ctx.Done():
	}
	client.Close()
	server.Close()
	return nil, net.ErrClosed
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "in-process" }
