package plugin

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// Store persists the drivers' state, so that networks, pools and
// endpoints survive a restart of the router (Docker does not create them
// again).
type Store interface {
	// LoadPlugin returns what SavePlugin saved last (nil when nothing).
	LoadPlugin() ([]byte, error)
	// SavePlugin replaces the saved state.
	SavePlugin([]byte) error
}

// Pool is an address pool Docker requested from the IPAM driver.
type Pool struct {
	ID     string
	Subnet netip.Prefix
	// Range limits allocations to a part of Subnet (--ip-range); zero
	// means all of it.
	Range netip.Prefix `json:",omitzero"`
	// Created: the subnet lies outside --ipalloc-range and was made a
	// pool of weft's IPAM for this request.
	Created bool `json:",omitempty"`
	// Refs counts the requests of this pool not yet released.
	Refs int
}

// Network is a Docker network of the weft driver.
type Network struct {
	ID      string
	Subnet  netip.Prefix
	Gateway netip.Addr `json:",omitzero"`
	// Segment keeps it apart from other networks (0: the plain weft
	// network).
	Segment uint16
	// DockerIPAM: its addresses come from Docker's own IPAM driver, and
	// the network driver claims them in weft's IPAM.
	DockerIPAM bool `json:",omitempty"`
	// PoolCreated: the network driver made Subnet a pool of weft's IPAM.
	PoolCreated bool `json:",omitempty"`
}

// Endpoint is one container's interface on a network.
type Endpoint struct {
	ID        string
	NetworkID string
	Addr      netip.Prefix
	MAC       string
}

// state is everything the drivers keep.
type state struct {
	Pools     map[string]*Pool
	Networks  map[string]*Network
	Endpoints map[string]*Endpoint
}

func newState() *state {
	return &state{Pools: map[string]*Pool{}, Networks: map[string]*Network{}, Endpoints: map[string]*Endpoint{}}
}

// decodeState reads saved state; nil or empty data is an empty state.
func decodeState(data []byte) (*state, error) {
	st := newState()
	if len(data) == 0 {
		return st, nil
	}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("decode the saved Docker plugin state: %w", err)
	}
	if st.Pools == nil {
		st.Pools = map[string]*Pool{}
	}
	if st.Networks == nil {
		st.Networks = map[string]*Network{}
	}
	if st.Endpoints == nil {
		st.Endpoints = map[string]*Endpoint{}
	}
	return st, nil
}

func encodeState(st *state) ([]byte, error) {
	data, err := json.Marshal(st)
	if err != nil {
		return nil, fmt.Errorf("encode the Docker plugin state: %w", err)
	}
	return data, nil
}
