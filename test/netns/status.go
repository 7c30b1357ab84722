package netns

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/weftnet/weft/control"
)

// Report runs `weft report` on the host and decodes it.
func (h *Host) Report() (*control.Report, error) {
	r := h.Weft("report")
	if !r.OK() {
		return nil, fmt.Errorf("%s: weft report: %v: %s", h.Nick, r.Err, strings.TrimSpace(r.Stderr))
	}
	var rep control.Report
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		return nil, fmt.Errorf("%s: weft report: decode: %w", h.Nick, err)
	}
	return &rep, nil
}

// RouteVia returns the next hop the report's unicast routes give for the
// peer named dest, and whether there is such a route.
func RouteVia(rep *control.Report, dest string) (string, bool) {
	for _, rt := range rep.Router.UnicastRoutes {
		if rt.Dest == dest {
			return rt.Via, true
		}
	}
	return "", false
}

// PeerName returns the host's router's peer name, from its report.
func (h *Host) PeerName() (string, error) {
	rep, err := h.Report()
	if err != nil {
		return "", err
	}
	if rep.Router.Name == "" {
		return "", fmt.Errorf("%s: weft report has no router name", h.Nick)
	}
	return rep.Router.Name, nil
}

// Connection is one connection of a router: a line of `weft status
// connections`, or an entry of the report.
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

// StatusConnections runs `weft status connections` on the host and parses it.
func (h *Host) StatusConnections() ([]Connection, error) {
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

// Connections returns the connections of the host's router, from its report.
func (h *Host) Connections() ([]Connection, error) {
	rep, err := h.Report()
	if err != nil {
		return nil, err
	}
	conns := make([]Connection, 0, len(rep.Router.Connections))
	for _, c := range rep.Router.Connections {
		conns = append(conns, Connection{Outbound: c.Outbound, Address: c.Address, State: c.State,
			Line: fmt.Sprintf("%+v", c)})
	}
	return conns, nil
}

// ConnectionsWith returns the connections of the host's router whose
// address is other's underlay address (any state).
func (h *Host) ConnectionsWith(other *Host) ([]Connection, error) {
	all, err := h.Connections()
	if err != nil {
		return nil, err
	}
	var with []Connection
	for _, c := range all {
		if c.Host() == other.Addr {
			with = append(with, c)
		}
	}
	return with, nil
}

// EstablishedWith reports whether the host's router has an established
// connection with other's router, in either direction; the error says what
// there is instead.
func (h *Host) EstablishedWith(other *Host) error {
	with, err := h.ConnectionsWith(other)
	if err != nil {
		return err
	}
	for _, c := range with {
		if c.State == "established" {
			return nil
		}
	}
	return fmt.Errorf("%s has no established connection with %s (%s): %+v", h.Nick, other.Nick, other.Addr, with)
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

// Usage is what the host's router process holds: its open files and RSS
// from /proc, its goroutines from /metrics.
type Usage struct {
	PID, FDs, Goroutines, RSSKiB int
}

var goroutinesRE = regexp.MustCompile(`(?m)^go_goroutines (\d+)`)

// RouterUsage samples the host's one router process.
func (h *Host) RouterUsage() (Usage, error) {
	pids := h.RouterPIDs()
	if len(pids) != 1 {
		return Usage{}, fmt.Errorf("%s: router PIDs %v", h.Nick, pids)
	}
	u := Usage{PID: pids[0]}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", u.PID))
	if err != nil {
		return u, err
	}
	u.FDs = len(fds)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", u.PID))
	if err != nil {
		return u, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			u.RSSKiB, _ = strconv.Atoi(f[1])
		}
	}
	r := h.Run("curl", "-sf", "http://127.0.0.1:6784/metrics")
	if !r.OK() {
		return u, fmt.Errorf("%s: /metrics: %v", h.Nick, r)
	}
	m := goroutinesRE.FindStringSubmatch(r.Stdout)
	if m == nil {
		return u, fmt.Errorf("%s: no go_goroutines in /metrics", h.Nick)
	}
	u.Goroutines, _ = strconv.Atoi(m[1])
	return u, nil
}
