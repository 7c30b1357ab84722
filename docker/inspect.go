package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
)

// Container is what weft needs to know of a Docker container.
type Container struct {
	ID         string
	Name       string // without Docker's leading "/"
	Hostname   string
	Domainname string
	PID        int  // of its first process; 0 when not running
	Running    bool // also while paused
	// Networks are its endpoints, keyed by network name; never nil.
	Networks map[string]Endpoint
	// Env and Entrypoint are from its configuration.
	Env, Entrypoint []string
}

// Endpoint is a container's attachment to one Docker network.
type Endpoint struct {
	NetworkID  string
	EndpointID string
	Addr       netip.Prefix // IPv4 address with the network's prefix length; zero if none
	MAC        string       // lower case, colon-separated; "" if none
}

// Network is what weft needs to know of a Docker network.
type Network struct {
	ID      string
	Name    string
	Driver  string
	Subnets []netip.Prefix // of its IPAM configuration, masked; unparsable ones left out
}

// Inspect looks up a container by name (with or without the leading "/")
// or by ID or unique ID prefix. An unknown one gives an error wrapping
// ErrNoSuchContainer; Docker not answering, one wrapping ErrUnreachable.
func (c *Client) Inspect(ctx context.Context, ref string) (Container, error) {
	name := strings.TrimPrefix(ref, "/")
	if !validRef(name) {
		return Container{}, noSuchContainer(name, nil)
	}
	resp, err := c.api.ContainerInspect(ctx, name)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return Container{}, noSuchContainer(name, err)
		}
		return Container{}, c.fail(fmt.Sprintf("inspect container %q", name), err)
	}
	ctr, err := containerFrom(resp)
	if err != nil {
		return Container{}, fmt.Errorf("docker inspect container %q: %w", name, err)
	}
	return ctr, nil
}

// Network looks up a Docker network by name, ID or unique ID prefix. An
// unknown one gives an error wrapping ErrNoSuchNetwork; Docker not
// answering, one wrapping ErrUnreachable.
func (c *Client) Network(ctx context.Context, id string) (Network, error) {
	if !validRef(id) {
		return Network{}, noSuchNetwork(id, nil)
	}
	resp, err := c.api.NetworkInspect(ctx, id, network.InspectOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return Network{}, noSuchNetwork(id, err)
		}
		return Network{}, c.fail(fmt.Sprintf("inspect network %q", id), err)
	}
	if resp.ID == "" {
		return Network{}, fmt.Errorf("docker inspect network %q: malformed answer: no ID", id)
	}
	nw := Network{ID: resp.ID, Name: resp.Name, Driver: resp.Driver}
	for _, cfg := range resp.IPAM.Config {
		if p, err := netip.ParsePrefix(cfg.Subnet); err == nil {
			nw.Subnets = append(nw.Subnets, p.Masked())
		}
	}
	return nw, nil
}

// validRef reports whether ref can name a container or network: not
// empty, and nothing that would change the request's path.
func validRef(ref string) bool {
	return ref != "" && ref != "." && ref != ".." && !strings.ContainsAny(ref, "/\x00")
}

// containerFrom keeps what weft needs of Docker's answer. Any part may be
// missing; only the ID is required.
func containerFrom(resp container.InspectResponse) (Container, error) {
	if resp.ContainerJSONBase == nil || resp.ID == "" {
		return Container{}, errors.New("malformed answer: no ID")
	}
	ctr := Container{
		ID:       resp.ID,
		Name:     strings.TrimPrefix(resp.Name, "/"),
		Networks: make(map[string]Endpoint),
	}
	if cfg := resp.Config; cfg != nil {
		ctr.Hostname, ctr.Domainname = cfg.Hostname, cfg.Domainname
		ctr.Env, ctr.Entrypoint = cfg.Env, cfg.Entrypoint
	}
	if st := resp.State; st != nil && st.Running {
		ctr.Running = true
		ctr.PID = max(st.Pid, 0)
	}
	if ns := resp.NetworkSettings; ns != nil {
		for name, ep := range ns.Networks {
			ctr.Networks[name] = endpointFrom(ep)
		}
	}
	return ctr, nil
}

// endpointFrom keeps what weft needs of one of a container's endpoints.
func endpointFrom(ep *network.EndpointSettings) Endpoint {
	if ep == nil {
		return Endpoint{}
	}
	e := Endpoint{NetworkID: ep.NetworkID, EndpointID: ep.EndpointID}
	if a, err := netip.ParseAddr(ep.IPAddress); err == nil && a.Unmap().Is4() && ep.IPPrefixLen > 0 && ep.IPPrefixLen <= 32 {
		e.Addr = netip.PrefixFrom(a.Unmap(), ep.IPPrefixLen)
	}
	if mac, err := net.ParseMAC(ep.MacAddress); err == nil && len(mac) == 6 {
		e.MAC = mac.String()
	}
	return e
}
