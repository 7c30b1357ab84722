// Package docker is the weft router's view of a Docker Engine: it inspects
// containers and networks and follows the events weft acts on, through
// Docker's own client library (API version negotiated, so Debian's 20.10
// daemon with API 1.41 works as well as newer ones).
//
// Goroutines: each Events call runs one goroutine of its own and, while a
// stream is open, the client library's reader; both end when the call's
// context ends. Everything else runs on the caller's goroutine. A Client may
// be used concurrently.
package docker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"sync/atomic"

	"github.com/docker/docker/client"
)

// Bounds on what is read from Docker: a whole response, and one line (one
// event) of the event stream. Real ones are a few kilobytes.
const (
	maxBody      = 8 << 20
	maxEventLine = 1 << 20
)

// Client talks to one Docker Engine, the one DOCKER_HOST names (or the
// default socket). It holds no state of Docker's: every call asks.
type Client struct {
	api  *client.Client
	base *http.Transport // under the bounding transport; Close closes its idle connections
	log  *slog.Logger
}

// New makes a client for the Docker Engine that the environment names
// (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, DOCKER_API_VERSION),
// by default unix:///var/run/docker.sock. It does not connect: it fails only
// when that environment is malformed, not when Docker is not running. The
// API version is negotiated with the daemon on first use. A nil logger logs
// nothing.
func New(logger *slog.Logger) (*Client, error) {
	return newClient(logger, client.FromEnv)
}

// newClient is New with other ways to name the host (tests use WithHost).
func newClient(logger *slog.Logger, opts ...client.Opt) (*Client, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{log: logger}
	opts = append(opts, client.WithAPIVersionNegotiation(), c.bound)
	api, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	c.api = api
	return c, nil
}

// bound is a client option, applied last: it puts boundedTransport in front
// of the transport that the other options configured.
func (c *Client) bound(api *client.Client) error {
	hc := api.HTTPClient()
	base, ok := hc.Transport.(*http.Transport)
	if !ok {
		return fmt.Errorf("unexpected HTTP transport %T", hc.Transport)
	}
	c.base = base
	hc.Transport = boundedTransport{base: base}
	if err := client.WithHTTPClient(hc)(api); err != nil {
		return err
	}
	if base.TLSClientConfig != nil {
		// The library sees TLS only on a transport of its own type.
		return client.WithScheme("https")(api)
	}
	return nil
}

// Host is the Docker host the client talks to, e.g.
// unix:///var/run/docker.sock.
func (c *Client) Host() string { return c.api.DaemonHost() }

// Close releases the client's idle connections. Streams opened by Events
// end with their contexts, not with Close.
func (c *Client) Close() error {
	c.base.CloseIdleConnections()
	return c.api.Close()
}

// Ping checks that Docker answers. When it does not, the error wraps
// ErrUnreachable and says, in one line, where it was looked for.
func (c *Client) Ping(ctx context.Context) error {
	p, err := c.api.Ping(ctx)
	if err != nil {
		return c.fail("ping", err)
	}
	c.api.NegotiateAPIVersionPing(p)
	return nil
}

// fail turns an error of the client library into one of ours: ErrUnreachable
// when Docker could not be reached, else err with the operation in front.
func (c *Client) fail(op string, err error) error {
	switch {
	case client.IsErrConnectionFailed(err):
		return unreachable(c.api.DaemonHost(), err)
	default:
		return fmt.Errorf("docker %s: %w", op, err)
	}
}

// streamUpKey is the context key under which Events passes a flag that
// boundedTransport sets once Docker has accepted the event stream.
type streamUpKey struct{}

// boundedTransport bounds the bodies of Docker's responses: a whole body to
// maxBody, and each line of the event stream to maxEventLine. Reading past
// a bound gives errTooLarge.
type boundedTransport struct {
	base http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (t boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body := &boundedBody{rc: resp.Body, max: maxBody}
	if path.Base(req.URL.Path) == "events" {
		body.max, body.perLine = maxEventLine, true
		if up, ok := req.Context().Value(streamUpKey{}).(*atomic.Bool); ok && resp.StatusCode == http.StatusOK {
			up.Store(true)
		}
	}
	body.left = body.max
	resp.Body = body
	return resp, nil
}

// boundedBody reads at most max bytes in all, or with perLine at most max
// bytes between two newlines.
type boundedBody struct {
	rc      io.ReadCloser
	max     int64
	left    int64
	perLine bool
}

// Read implements io.Reader.
func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// At the bound: fine if the body ends here.
		var one [1]byte
		if n, err := b.rc.Read(one[:]); n == 0 && err != nil {
			return 0, err
		}
		return 0, errTooLarge
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.perLine {
		if i := bytes.LastIndexByte(p[:n], '\n'); i >= 0 {
			b.left = b.max - int64(n-1-i)
		}
	}
	return n, err
}

// Close implements io.Closer.
func (b *boundedBody) Close() error { return b.rc.Close() }
