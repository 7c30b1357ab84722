package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"time"
)

// Client talks to the router of one state directory. Safe for concurrent use.
type Client struct {
	stateDir string
	http     *http.Client
}

// NewClient returns a client for the router whose state is in stateDir.
func NewClient(stateDir string) *Client {
	path := filepath.Join(stateDir, SocketName)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}
	return &Client{stateDir: stateDir, http: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// Ping reports whether a router answers on the socket.
func (c *Client) Ping() bool {
	_, err := c.Report()
	return err == nil
}

// Report fetches the router's whole state.
func (c *Client) Report() (*Report, error) {
	var r Report
	if err := c.do("GET", "/report", nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Connect adds peers; replace drops the earlier list first.
func (c *Client) Connect(peers []string, replace bool) error {
	return c.do("POST", "/connect", PeersRequest{Peers: peers, Replace: replace}, nil)
}

// Forget removes peers.
func (c *Client) Forget(peers []string) error {
	return c.do("POST", "/forget", PeersRequest{Peers: peers}, nil)
}

// RmPeer takes over the address ranges of a peer gone for good and
// returns what the router says it did.
func (c *Client) RmPeer(peer string) (string, error) {
	var r MessageReply
	err := c.do("POST", "/rmpeer", RmPeerRequest{Peer: peer}, &r)
	return r.Message, err
}

// Target returns the canonical form of a target (container:ID for a
// container's name).
func (c *Client) Target(target string) (string, error) {
	var r MessageReply
	err := c.do("POST", "/target", TargetRequest{Target: target}, &r)
	return r.Message, err
}

// Attach attaches a target and returns its new addresses.
func (c *Client) Attach(req AttachRequest) ([]string, error) {
	var r AddrsReply
	err := c.do("POST", "/attach", req, &r)
	return r.Addrs, err
}

// Detach removes addresses of a target and returns those removed.
func (c *Client) Detach(req AttachRequest) ([]string, error) {
	var r AddrsReply
	err := c.do("POST", "/detach", req, &r)
	return r.Addrs, err
}

// Expose gives the host addresses on the weft network.
func (c *Client) Expose(cidrs []string) ([]string, error) {
	var r AddrsReply
	err := c.do("POST", "/expose", AddrsRequest{CIDRs: cidrs}, &r)
	return r.Addrs, err
}

// Hide removes addresses of the host from the weft network.
func (c *Client) Hide(cidrs []string) ([]string, error) {
	var r AddrsReply
	err := c.do("POST", "/hide", AddrsRequest{CIDRs: cidrs}, &r)
	return r.Addrs, err
}

// DNSAdd adds DNS records and returns those added.
func (c *Client) DNSAdd(req DNSRequest) ([]DNSRecord, error) {
	var r DNSReply
	err := c.do("POST", "/dns/add", req, &r)
	return r.Records, err
}

// DNSRemove removes DNS records and returns those removed.
func (c *Client) DNSRemove(req DNSRequest) ([]DNSRecord, error) {
	var r DNSReply
	err := c.do("POST", "/dns/remove", req, &r)
	return r.Records, err
}

// PingPeer probes a peer (name or nickname) over the overlay.
func (c *Client) PingPeer(peer string) (*PingReply, error) {
	var r PingReply
	if err := c.do("POST", "/ping", PingRequest{Peer: peer}, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Doctor checks every peer (peer "") or one, and DNS.
func (c *Client) Doctor(peer string) (*DoctorReport, error) {
	var r DoctorReport
	path := "/doctor"
	if peer != "" {
		path += "?peer=" + url.QueryEscape(peer)
	}
	if err := c.do("GET", path, nil, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Stop asks the router to stop, keeping what the user set up.
func (c *Client) Stop() error { return c.do("POST", "/stop", nil, nil) }

// Reset asks the router to stop and remove everything it made.
func (c *Client) Reset() error { return c.do("POST", "/reset", nil, nil) }

// StatusView fetches a text view of `weft status` ("" for the summary).
func (c *Client) StatusView(view string) (string, error) {
	rep, err := c.Report()
	if err != nil {
		return "", err
	}
	if view == "" {
		return FormatStatus(rep), nil
	}
	return FormatView(rep, view)
}

func (c *Client) do(method, path string, body, reply any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://weft"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("the router (state dir %s) did not answer in time", c.stateDir)
		}
		return fmt.Errorf("%w (state dir %s); start one with 'weft launch'", ErrNotRunning, c.stateDir)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read reply from router: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e ErrorReply
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			if resp.StatusCode == http.StatusBadRequest {
				return &UserError{Err: errors.New(e.Error)}
			}
			return errors.New(e.Error)
		}
		return fmt.Errorf("router answered %s", resp.Status)
	}
	if reply != nil {
		if err := json.Unmarshal(data, reply); err != nil {
			return fmt.Errorf("decode reply from router: %w", err)
		}
	}
	return nil
}
