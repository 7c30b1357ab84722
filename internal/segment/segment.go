// Package segment is how weft keeps Docker networks apart on one shared
// L2: every endpoint of a weft Docker network gets a MAC address that
// names its network's segment, and the host's bridge ports let a frame
// reach an endpoint only when its source MAC names the same segment (or is
// the bridge's own). The plain weft network (attach, expose, a Docker
// network made without --subnet) is segment 0: its MACs never carry the
// marker.
//
// A segment MAC is [Marker, segment high byte, segment low byte, the low
// three bytes of the endpoint's IPv4 address]: unique within a network as
// long as its addresses are (IPAM makes sure of that), the same for the
// same address on every host, and recognisable from its first three bytes.
package segment

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"net"
	"net/netip"
)

// Marker is the first byte of every segment MAC: locally administered,
// unicast (binary 01111010).
const Marker = 0x7a

// Default is the segment of the plain weft network.
const Default = 0

// ForSubnet is the segment of the Docker network with subnet p: the same
// on every host that creates a network with that subnet, never Default.
// Two different subnets share a segment with probability 1/65535; a host
// that has both refuses the second (see the plugin).
func ForSubnet(p netip.Prefix) uint16 {
	sum := sha256.Sum256([]byte(p.Masked().String()))
	seg := binary.BigEndian.Uint16(sum[:2])
	if seg == Default {
		seg = 1
	}
	return seg
}

// MAC is the MAC address of the endpoint with address ip on segment seg.
// For Default it is a random MAC without the marker.
func MAC(seg uint16, ip netip.Addr) net.HardwareAddr {
	if seg == Default {
		return RandomMAC()
	}
	a := ip.As4()
	return net.HardwareAddr{Marker, byte(seg >> 8), byte(seg), a[1], a[2], a[3]}
}

// Of returns the segment a MAC names: Default for a MAC without the
// marker.
func Of(mac net.HardwareAddr) uint16 {
	if len(mac) != 6 || mac[0] != Marker {
		return Default
	}
	return uint16(mac[1])<<8 | uint16(mac[2])
}

// Prefix is the first three bytes of every MAC on segment seg (not
// Default), as a big-endian number: what a port filter matches.
func Prefix(seg uint16) uint32 { return uint32(Marker)<<16 | uint32(seg) }

// RandomMAC returns a random locally administered unicast MAC that does
// not carry the marker: for interfaces on the default segment.
func RandomMAC() net.HardwareAddr {
	mac := make(net.HardwareAddr, 6)
	_, _ = rand.Read(mac) // crypto/rand.Read never fails (Go 1.24+)
	mac[0] = mac[0]&0xfc | 0x02
	if mac[0] == Marker {
		mac[0] ^= 0x04
	}
	return mac
}
