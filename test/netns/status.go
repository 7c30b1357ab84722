package netns

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Report is the part of `weft report` the tests read. It follows the shape
// of weave's report (Router.Name, Router.Peers, Router.UnicastRoutes,
// Router.Connections); encoding/json matches field names case-insensitively.
type Report struct {
	Router struct {
		Name     string
		NickName string
		Peers    []struct {
			Name        string
			NickName    string
			Connections []struct {
				Name        string
				NickName    string
				Address     string
				Outbound    bool
				Established bool
			}
		}
		UnicastRoutes []struct {
			Dest string
			Via  string
		}
		Connections []struct {
			Address  string
			Outbound bool
			State    string
			Info     string
		}
		Targets []string
	}
	// Raw is the whole document, for what the struct does not name.
	Raw map[string]any `json:"-"`
}

// Report runs `weft report` on the host and decodes it.
func (h *Host) Report() (*Report, error) {
	r := h.Weft("report")
	if !r.OK() {
		return nil, fmt.Errorf("%s: weft report: %v: %s", h.Nick, r.Err, strings.TrimSpace(r.Stderr))
	}
	var rep Report
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		return nil, fmt.Errorf("%s: weft report: decode: %w", h.Nick, err)
	}
	if err := json.Unmarshal([]byte(r.Stdout), &rep.Raw); err != nil {
		return nil, fmt.Errorf("%s: weft report: decode: %w", h.Nick, err)
	}
	return &rep, nil
}

// Via returns the next hop the report's unicast routes give for the peer
// named dest, and whether there is such a route.
func (r *Report) Via(dest string) (string, bool) {
	for _, rt := range r.Router.UnicastRoutes {
		if rt.Dest == dest {
			return rt.Via, true
		}
	}
	return "", false
}

// Connection is one line of `weft status connections`.
type Connection struct {
	Outbound bool   // "->"
	Address  string // host:port as shown
	State    string // established, connecting, retrying, failed
	Line     string // the whole line
}

// Host returns the host part of the connection's address.
func (c Connection) Host() string {
	if i := strings.LastIndexByte(c.Address, ':'); i >= 0 {
		return c.Address[:i]
	}
	return c.Address
}

// Connections runs `weft status connections` on the host and parses it.
func (h *Host) Connections() ([]Connection, error) {
	r := h.Weft("status", "connections")
	if !r.OK() {
		return nil, fmt.Errorf("%s: weft status connections: %v: %s", h.Nick, r.Err, strings.TrimSpace(r.Stderr))
	}
	return ParseConnections(r.Stdout), nil
}

// ParseConnections parses the output of `weft status connections`: lines
// that start with the direction (-> or <-), then address and state.
func ParseConnections(out string) []Connection {
	var conns []Connection
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || (f[0] != "->" && f[0] != "<-") {
			continue
		}
		conns = append(conns, Connection{Outbound: f[0] == "->", Address: f[1], State: f[2], Line: strings.TrimSpace(line)})
	}
	return conns
}

// EstablishedWith returns the established connections to other (by its
// underlay address), and all connections for error messages.
func (h *Host) EstablishedWith(other *Host) (n int, all []Connection, err error) {
	all, err = h.Connections()
	if err != nil {
		return 0, nil, err
	}
	for _, c := range all {
		if c.Host() == other.Addr && c.State == "established" {
			n++
		}
	}
	return n, all, nil
}

// PeerLines runs `weft status peers` and returns its non-empty lines.
func (h *Host) PeerLines() ([]string, error) {
	r := h.Weft("status", "peers")
	if !r.OK() {
		return nil, fmt.Errorf("%s: weft status peers: %v: %s", h.Nick, r.Err, strings.TrimSpace(r.Stderr))
	}
	var lines []string
	for _, l := range strings.Split(r.Stdout, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	return lines, nil
}
