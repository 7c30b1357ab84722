package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/weftnet/weft/proxy/hold"
)

// Weft is what the proxy asks of the router. Its methods are called from
// request goroutines, concurrently.
type Weft interface {
	// CheckAddrs reports whether a container could be attached with these
	// address specs (the forms of `weft attach`): well formed, inside the
	// range where they must be, not taken. The error is one line for the
	// user.
	CheckAddrs(specs []string) error
	// AttachContainer attaches a container that was just started with the
	// hold entrypoint, with the addresses its WEFT_CIDR names, and returns
	// once its interface is marked ready (the command then runs).
	AttachContainer(ctx context.Context, id string) error
	// DNS returns the address of the DNS server attached containers use
	// and the domain of their names; ok is false when the router runs no
	// DNS.
	DNS() (server, domain string, ok bool)
}

// Bounds of the bodies the proxy reads whole to change them.
const (
	maxCreateBody  = 4 << 20  // a container or network create request
	maxInspectBody = 64 << 20 // an inspect or list answer
	// dockerQueryTimeout bounds one question the proxy asks Docker
	// itself (an image's or a network's configuration).
	dockerQueryTimeout = 30 * time.Second
)

// apiPrefix matches the optional API version at the start of a path.
var apiPrefix = regexp.MustCompile(`^/v[0-9]+(\.[0-9]+)?/`)

// apiPath returns r's path without its API version: /containers/create.
func apiPath(path string) string {
	if loc := apiPrefix.FindStringIndex(path); loc != nil {
		return path[loc[1]-1:]
	}
	return path
}

// route says which request the proxy changes, and how.
type route int

const (
	routeNone route = iota
	routeCreate
	routeStart
	routeInspect
	routeList
	routeNetworkCreate
)

func routeOf(method, path string) (route, string) {
	parts := strings.Split(strings.Trim(apiPath(path), "/"), "/")
	switch {
	case method == http.MethodPost && len(parts) == 2 && parts[0] == "containers" && parts[1] == "create":
		return routeCreate, ""
	case method == http.MethodPost && len(parts) == 3 && parts[0] == "containers" && parts[2] == "start":
		return routeStart, parts[1]
	case method == http.MethodGet && len(parts) == 3 && parts[0] == "containers" && parts[2] == "json":
		return routeInspect, parts[1]
	case method == http.MethodGet && len(parts) == 2 && parts[0] == "containers" && parts[1] == "json":
		return routeList, ""
	case method == http.MethodPost && len(parts) == 2 && parts[0] == "networks" && parts[1] == "create":
		return routeNetworkCreate, ""
	}
	return routeNone, ""
}

// userError is a refusal the caller gets as 400 with the text as
// Docker's message.
type userError struct{ msg string }

func (e *userError) Error() string { return e.msg }

func userErrorf(format string, args ...any) error {
	return &userError{msg: fmt.Sprintf(format, args...)}
}

// statusOf is the HTTP status a failed change answers with.
func statusOf(err error) int {
	var ue *userError
	if errors.As(err, &ue) {
		return http.StatusBadRequest
	}
	if errors.Is(err, errTooLarge) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadGateway
}

var errTooLarge = errors.New("request body too large")

// readBody reads a request body of at most limit bytes.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		// The caller's own bytes are bad (a broken chunked body, say):
		// its error, as Docker answers a body it cannot read.
		return nil, userErrorf("cannot read the request body: %v", err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w (more than %d bytes)", errTooLarge, limit)
	}
	return b, nil
}

// setBody replaces r's body.
func setBody(r *http.Request, b []byte) {
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	r.Header.Set("Content-Length", strconv.Itoa(len(b)))
	r.Header.Del("Transfer-Encoding")
	r.TransferEncoding = nil
}

// serveCreate changes a container create request (see planCreate) and
// forwards it.
func (p *Proxy) serveCreate(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r, maxCreateBody)
	if err != nil {
		writeError(w, statusOf(err), "weft proxy: "+err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), dockerQueryTimeout)
	out, err := p.planCreate(ctx, strings.TrimPrefix(r.URL.Query().Get("name"), "/"), body)
	cancel()
	if err != nil {
		p.cfg.Log.Info("docker proxy: refused a container", "err", err)
		writeError(w, statusOf(err), err.Error())
		return
	}
	setBody(r, out)
	p.rp.ServeHTTP(w, r)
}

// planCreate returns the create request to send Docker instead of body.
// A container that goes on the weft network (WEFT_CIDR, or none and
// default allocation on) gets the hold entrypoint in front of its own
// command and the weft binary mounted to run it; such a container, and
// one on a weft Docker network, gets a hostname from its name and weft's
// DNS server and search domain, each unless the user gave their own. A
// body that is not a create request Docker would take is sent unchanged,
// so that Docker answers it as it always does.
func (p *Proxy) planCreate(ctx context.Context, name string, body []byte) ([]byte, error) {
	var req container.CreateRequest
	var raw object
	if json.Unmarshal(body, &req) != nil || json.Unmarshal(body, &raw) != nil || req.Config == nil || raw == nil {
		return body, nil
	}
	var mode container.NetworkMode
	if req.HostConfig != nil {
		mode = req.HostConfig.NetworkMode
	}
	specs, set, attach, err := AttachSpecs(req.Env)
	if err != nil {
		return nil, &userError{msg: "weft: " + err.Error()}
	}
	explicit := set && attach
	switch {
	case mode.IsHost() || mode.IsContainer():
		if explicit {
			return nil, userErrorf("weft: %s does not apply to a container run with --network %s (it has no network of its own); drop one of the two", CIDREnv, mode)
		}
		return body, nil
	case mode != "" && mode.IsUserDefined():
		onWeft, err := p.weftNetwork(ctx, mode.NetworkName())
		if err != nil {
			return nil, err
		}
		if onWeft {
			if explicit {
				return nil, userErrorf("weft: %s does not apply to a container on the weft Docker network %s (weft's IPAM gives its address); use --ip to choose one", CIDREnv, mode.NetworkName())
			}
			c := createChange{raw: raw, req: &req}
			p.nameAndDNS(&c, name)
			return c.encode()
		}
	}
	if !attach || (!set && p.cfg.NoDefaultIPAlloc) {
		return body, nil
	}
	if err := p.cfg.Weft.CheckAddrs(specs); err != nil {
		return nil, userErrorf("weft: %s=%s: %v", CIDREnv, strings.Join(specs, " "), err)
	}
	entrypoint, cmd, found, err := p.command(ctx, &req)
	if err != nil {
		return nil, err
	}
	if !found || len(entrypoint)+len(cmd) == 0 {
		// No such image yet (the client pulls it and asks again) or no
		// command at all: Docker says so.
		return body, nil
	}
	c := createChange{raw: raw, req: &req}
	c.set("Entrypoint", append(hold.Entrypoint(), entrypoint...))
	c.set("Cmd", cmd)
	c.addMount(mount.Mount{Type: mount.TypeBind, Source: p.cfg.HoldBinary, Target: hold.MountPath, ReadOnly: true})
	p.nameAndDNS(&c, name)
	return c.encode()
}

// weftNetwork reports whether the Docker network name is driven by weft.
// An unknown network is not (Docker refuses the container).
func (p *Proxy) weftNetwork(ctx context.Context, name string) (bool, error) {
	n, err := p.api.NetworkInspect(ctx, name, network.InspectOptions{})
	if client.IsErrNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("weft proxy: inspect network %s: %w", name, err)
	}
	return isWeftDriver(n.Driver), nil
}

// weftDriver is the name of weft's Docker network and IPAM drivers.
const weftDriver = "weft"

// isWeftDriver reports whether a Docker network driver is weft's: the
// router's own ("weft"), or weft as a managed plugin ("weftnet/weft:0.1.0",
// any repository whose last element is weft, with or without a tag).
func isWeftDriver(driver string) bool {
	last := driver[strings.LastIndexByte(driver, '/')+1:]
	name, _, _ := strings.Cut(last, ":")
	return name == weftDriver
}

// command returns what a container would run without the proxy: its
// entrypoint and command after Docker merges the request with the image.
// found is false when the image is not there.
func (p *Proxy) command(ctx context.Context, req *container.CreateRequest) (entrypoint, cmd []string, found bool, err error) {
	img, err := p.api.ImageInspect(ctx, req.Image)
	if client.IsErrNotFound(err) {
		return nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("weft proxy: inspect image %s: %w", req.Image, err)
	}
	var imgEntry, imgCmd []string
	if img.Config != nil {
		imgEntry, imgCmd = img.Config.Entrypoint, img.Config.Cmd
	}
	entrypoint, cmd = mergeCommand(req.Entrypoint, req.Cmd, imgEntry, imgCmd)
	return entrypoint, cmd, true, nil
}

// mergeCommand applies Docker's rules: an entrypoint given replaces the
// image's and drops its command (--entrypoint "" clears it); a command
// given replaces the image's.
func mergeCommand(entry, cmd, imgEntry, imgCmd []string) (entrypoint, command []string) {
	entrypoint, command = imgEntry, imgCmd
	if entry != nil {
		entrypoint, command = entry, nil
		if len(entry) == 1 && entry[0] == "" {
			entrypoint = nil
		}
	}
	if len(cmd) > 0 {
		command = cmd
	}
	return entrypoint, command
}

// validHostname reports whether name can be a hostname label.
var validHostname = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`).MatchString

// nameAndDNS gives the container its name as hostname, in weft's domain,
// and weft's DNS, where the user set none of their own.
func (p *Proxy) nameAndDNS(c *createChange, name string) {
	server, domain, dns := p.cfg.Weft.DNS()
	domain = strings.TrimSuffix(domain, ".")
	if c.req.Hostname == "" && c.req.Domainname == "" && validHostname(name) {
		c.set("Hostname", name)
		if dns && domain != "" {
			c.set("Domainname", domain)
		}
	}
	if !dns {
		return
	}
	hc := c.req.HostConfig
	if hc == nil || len(hc.DNS) == 0 {
		c.setHost("Dns", []string{server})
	}
	if (hc == nil || len(hc.DNSSearch) == 0) && domain != "" {
		c.setHost("DnsSearch", []string{domain})
	}
}

// createChange edits a create request as JSON, so that fields this
// proxy's API types do not know (a newer client's) pass unchanged, in
// their order.
type createChange struct {
	raw  object
	req  *container.CreateRequest
	host object
	// hostChanged says host was read from raw and changed.
	hostChanged bool
}

// set and setHost encode strings and slices of strings, which cannot
// fail.
func (c *createChange) set(key string, v any) { _ = c.raw.set(key, v) }

func (c *createChange) setHost(key string, v any) {
	if !c.hostChanged {
		// "HostConfig": null, or absent, leaves host empty.
		_ = c.raw.decode("HostConfig", &c.host)
		c.hostChanged = true
	}
	_ = c.host.set(key, v)
}

func (c *createChange) addMount(m mount.Mount) {
	var mounts []mount.Mount
	if c.req.HostConfig != nil {
		mounts = append(mounts, c.req.HostConfig.Mounts...)
	}
	c.setHost("Mounts", append(mounts, m))
}

func (c *createChange) encode() ([]byte, error) {
	if c.hostChanged {
		if c.host == nil {
			c.host = object{}
		}
		_ = c.raw.set("HostConfig", c.host)
	}
	b, err := json.Marshal(c.raw)
	if err != nil {
		return nil, fmt.Errorf("weft proxy: encode create request: %w", err)
	}
	return b, nil
}

// serveNetworkCreate makes `docker network create -d weft` use weft's IPAM
// driver too unless the user named one: two hosts then never hand out the
// same address, which Docker's default IPAM would.
func (p *Proxy) serveNetworkCreate(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r, maxCreateBody)
	if err != nil {
		writeError(w, statusOf(err), "weft proxy: "+err.Error())
		return
	}
	setBody(r, planNetworkCreate(body))
	p.rp.ServeHTTP(w, r)
}

// planNetworkCreate returns the network create request to send instead
// of body.
func planNetworkCreate(body []byte) []byte {
	var req network.CreateRequest
	var raw object
	if json.Unmarshal(body, &req) != nil || json.Unmarshal(body, &raw) != nil || raw == nil || !isWeftDriver(req.Driver) {
		return body
	}
	if req.IPAM != nil && req.IPAM.Driver != "" && req.IPAM.Driver != "default" {
		return body
	}
	var ipam object
	if raw.decode("IPAM", &ipam) != nil {
		return body
	}
	if ipam == nil {
		ipam = object{}
	}
	// The same driver serves IPAM: the router's, or the managed plugin.
	_ = ipam.set("Driver", req.Driver)
	_ = raw.set("IPAM", ipam)
	out, err := json.Marshal(raw)
	if err != nil {
		return body
	}
	return out
}
