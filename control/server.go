package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Backend is what the control API drives: the running router. Methods are
// called concurrently from HTTP handler goroutines.
type Backend interface {
	Report() Report
	Connect(peers []string, replace bool) error
	Forget(peers []string) error
	Attach(req AttachRequest) ([]string, error)
	Detach(req AttachRequest) ([]string, error)
	Expose(cidrs []string) ([]string, error)
	Hide(cidrs []string) ([]string, error)
	// DNSAdd and DNSRemove add and remove this router's DNS records and
	// return those changed.
	DNSAdd(req DNSRequest) ([]DNSRecord, error)
	DNSRemove(req DNSRequest) ([]DNSRecord, error)
	// RmPeer takes over the address ranges of a peer gone for good and
	// says what it did.
	RmPeer(peer string) (string, error)
	// Target returns the canonical form of a target as a user wrote it
	// (a container's name becomes container:ID).
	Target(target string) (string, error)
	// Stop asks the router to shut down, keeping what the user set up.
	Stop()
	// Reset asks the router to shut down and remove everything it made.
	Reset()
	// Ping probes a peer (name or nickname) over the overlay.
	Ping(peer string) (PingReply, error)
	// Doctor checks every peer, or one (name or nickname), and DNS.
	Doctor(peer string) (DoctorReport, error)
}

const maxRequestBody = 1 << 20

// maxPeerArg bounds a peer name or nickname in a request.
const maxPeerArg = 256

// NewHandler returns the HTTP handler of the control API.
func NewHandler(b Backend, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /report", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.Report())
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rep := b.Report()
		io.WriteString(w, FormatStatus(&rep))
	})
	mux.HandleFunc("GET /status/{view}", func(w http.ResponseWriter, r *http.Request) {
		rep := b.Report()
		text, err := FormatView(&rep, r.PathValue("view"))
		if err != nil {
			writeError(w, &UserError{Err: err}, log)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, text)
	})
	mux.HandleFunc("POST /connect", withBody(log, func(req PeersRequest) (any, error) {
		return nil, b.Connect(req.Peers, req.Replace)
	}))
	mux.HandleFunc("POST /forget", withBody(log, func(req PeersRequest) (any, error) {
		return nil, b.Forget(req.Peers)
	}))
	mux.HandleFunc("POST /attach", withBody(log, func(req AttachRequest) (any, error) {
		addrs, err := b.Attach(req)
		return AddrsReply{Addrs: addrs}, err
	}))
	mux.HandleFunc("POST /detach", withBody(log, func(req AttachRequest) (any, error) {
		addrs, err := b.Detach(req)
		return AddrsReply{Addrs: addrs}, err
	}))
	mux.HandleFunc("POST /expose", withBody(log, func(req AddrsRequest) (any, error) {
		addrs, err := b.Expose(req.CIDRs)
		return AddrsReply{Addrs: addrs}, err
	}))
	mux.HandleFunc("POST /hide", withBody(log, func(req AddrsRequest) (any, error) {
		addrs, err := b.Hide(req.CIDRs)
		return AddrsReply{Addrs: addrs}, err
	}))
	mux.HandleFunc("POST /dns/add", withBody(log, func(req DNSRequest) (any, error) {
		recs, err := b.DNSAdd(req)
		return DNSReply{Records: recs}, err
	}))
	mux.HandleFunc("POST /dns/remove", withBody(log, func(req DNSRequest) (any, error) {
		recs, err := b.DNSRemove(req)
		return DNSReply{Records: recs}, err
	}))
	mux.HandleFunc("POST /target", withBody(log, func(req TargetRequest) (any, error) {
		t, err := b.Target(req.Target)
		return MessageReply{Message: t}, err
	}))
	mux.HandleFunc("POST /rmpeer", withBody(log, func(req RmPeerRequest) (any, error) {
		msg, err := b.RmPeer(req.Peer)
		return MessageReply{Message: msg}, err
	}))
	mux.HandleFunc("POST /ping", withBody(log, func(req PingRequest) (any, error) {
		return b.Ping(req.Peer)
	}))
	mux.HandleFunc("GET /doctor", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		for k := range q {
			if k != "peer" {
				writeError(w, Userf("unknown parameter %q: doctor takes only peer", k), log)
				return
			}
		}
		if len(q["peer"]) > 1 || len(q.Get("peer")) > maxPeerArg {
			writeError(w, Userf("doctor takes one peer name or nickname"), log)
			return
		}
		rep, err := b.Doctor(q.Get("peer"))
		if err != nil {
			writeError(w, err, log)
			return
		}
		writeJSON(w, http.StatusOK, rep)
	})
	mux.HandleFunc("POST /stop", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, struct{}{})
		go b.Stop()
	})
	mux.HandleFunc("POST /reset", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, struct{}{})
		go b.Reset()
	})
	return LimitQuery(mux)
}

// MaxQuery bounds the query string of a request to the control API or
// the status server: no endpoint takes more than a peer name.
const MaxQuery = 1024

// LimitQuery answers a request whose query string exceeds MaxQuery with
// 414 before h sees it.
func LimitQuery(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.URL.RawQuery) > MaxQuery {
			http.Error(w, "query string too long", http.StatusRequestURITooLong)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func withBody[T any](log *slog.Logger, fn func(T) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req T
		dec := json.NewDecoder(io.LimitReader(r.Body, maxRequestBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, Userf("malformed request: %v", err), log)
			return
		}
		reply, err := fn(req)
		if err != nil {
			writeError(w, err, log)
			return
		}
		if reply == nil {
			reply = struct{}{}
		}
		writeJSON(w, http.StatusOK, reply)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func writeError(w http.ResponseWriter, err error, log *slog.Logger) {
	code := http.StatusInternalServerError
	var ue *UserError
	if errors.As(err, &ue) {
		code = http.StatusBadRequest
	} else {
		log.Warn("control request failed", "err", err)
	}
	writeJSON(w, code, ErrorReply{Error: err.Error()})
}

// Server serves the control API on the unix socket of a state directory.
type Server struct {
	http *http.Server
	ln   net.Listener
	path string
}

// Listen creates the control socket in stateDir. A stale socket left by a
// router that died is replaced; a live one means another router runs there.
func Listen(stateDir string, h http.Handler) (*Server, error) {
	path := filepath.Join(stateDir, SocketName)
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("a weft router is already running with state dir %s; stop it with 'weft stop'", stateDir)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on control socket %s: %w", path, err)
	}
	os.Chmod(path, 0o600)
	return &Server{http: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, ln: ln, path: path}, nil
}

// Serve serves requests until Shutdown; it always returns a non-nil error.
func (s *Server) Serve() error { return s.http.Serve(s.ln) }

// Shutdown stops the server and removes the socket.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	os.Remove(s.path)
	return err
}
