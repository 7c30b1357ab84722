package nameserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Server runs a Handler on a UDP socket and a TCP listener. The integrator
// binds them on the weft bridge address of the host, never on the underlay.
// Listen binds, Start serves in the background, Stop (or the end of Start's
// context) closes the sockets and waits for the serving goroutines.
type Server struct {
	h   *Handler
	log *slog.Logger

	mu      sync.Mutex
	pc      net.PacketConn
	extra   []net.PacketConn // more UDP sockets on pc's address (SO_REUSEPORT)
	ln      net.Listener
	servers []*dns.Server
	stopped bool
	started bool
	doneCh  chan struct{}
	wg      sync.WaitGroup
}

// NewServer returns a server for h. logger may be nil.
func NewServer(h *Handler, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{h: h, log: logger}
}

// Listen binds the UDP socket on udpAddr and the TCP listener on tcpAddr
// ("10.32.0.1:53"; port 0 picks one). Either may be empty to skip it. On
// error nothing stays bound.
func (s *Server) Listen(udpAddr, tcpAddr string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pc != nil || s.ln != nil || s.stopped {
		return fmt.Errorf("DNS listen: %w", ErrServerStarted)
	}
	if udpAddr != "" {
		pcs, err := listenUDP(udpAddr, udpSockets())
		if err != nil {
			return fmt.Errorf("DNS listen udp %s: %w", udpAddr, err)
		}
		s.pc, s.extra = pcs[0], pcs[1:]
	}
	if tcpAddr != "" {
		ln, err := net.Listen("tcp", tcpAddr)
		if err != nil {
			if s.pc != nil {
				s.pc.Close()
				for _, pc := range s.extra {
					pc.Close()
				}
				s.pc, s.extra = nil, nil
			}
			return fmt.Errorf("DNS listen tcp %s: %w", tcpAddr, err)
		}
		s.ln = ln
	}
	return nil
}

// UDPAddr returns the bound UDP address, or nil.
func (s *Server) UDPAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pc == nil {
		return nil
	}
	return s.pc.LocalAddr()
}

// TCPAddr returns the bound TCP address, or nil.
func (s *Server) TCPAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// Stats returns the handler's counters.
func (s *Server) Stats() Stats { return s.h.Stats() }

// Start serves on the bound sockets and returns once they are serving. The
// server stops when ctx ends or Stop is called.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started || s.stopped {
		s.mu.Unlock()
		return fmt.Errorf("DNS start: %w", ErrServerStarted)
	}
	s.started = true
	if s.pc == nil && s.ln == nil {
		s.mu.Unlock()
		return fmt.Errorf("DNS start: %w", ErrNotListening)
	}
	if s.pc != nil {
		for _, pc := range append([]net.PacketConn{s.pc}, s.extra...) {
			u := newUDPServer(pc.(*net.UDPConn), s.h)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				u.serve()
			}()
		}
	}
	if s.ln != nil {
		s.servers = append(s.servers, &dns.Server{Listener: s.ln, Handler: s.h, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, IdleTimeout: func() time.Duration { return 8 * time.Second }})
	}
	servers := s.servers
	s.mu.Unlock()

	failed := make(chan error, len(servers))
	for _, srv := range servers {
		ready := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(ready) }
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := srv.ActivateAndServe(); err != nil {
				failed <- err
			}
		}()
		select {
		case <-ready:
		case err := <-failed:
			s.Stop()
			return fmt.Errorf("DNS start: %w", err)
		}
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-ctx.Done():
			s.shutdown()
		case err := <-failed:
			s.log.Error("dns: server stopped", "err", err)
			s.shutdown()
		case <-s.done():
		}
	}()
	return nil
}

// done returns a channel closed once shutdown begins.
func (s *Server) done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.doneCh == nil {
		s.doneCh = make(chan struct{})
	}
	return s.doneCh
}

// Stop closes the sockets and waits for every serving goroutine to end. It
// may be called more than once and before Start.
func (s *Server) Stop() error {
	err := s.shutdown()
	s.wg.Wait()
	return err
}

func (s *Server) shutdown() error {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return nil
	}
	s.stopped = true
	if s.doneCh == nil {
		s.doneCh = make(chan struct{})
	}
	close(s.doneCh)
	servers, pc, extra, ln := s.servers, s.pc, s.extra, s.ln
	s.mu.Unlock()

	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		if err := srv.ShutdownContext(ctx); err != nil && !isNotStarted(err) {
			errs = append(errs, err)
		}
	}
	// The UDP sockets are served by udpServer loops, which end when their
	// socket closes.
	if pc != nil {
		pc.Close()
	}
	for _, pc := range extra {
		pc.Close()
	}
	if len(servers) == 0 { // bound but never started
		if ln != nil {
			ln.Close()
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("DNS stop: %w", err)
	}
	return nil
}

func isNotStarted(err error) bool { return err != nil && err.Error() == "dns: server not started" }
