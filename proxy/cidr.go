package proxy

import (
	"fmt"
	"strings"
)

// CIDREnv is the environment variable that says where a container started
// through the proxy goes on the weft network.
const CIDREnv = "WEFT_CIDR"

// maxCIDRSpecs bounds the addresses one WEFT_CIDR may ask for.
const maxCIDRSpecs = 16

// AttachSpecs reads WEFT_CIDR from a container's environment (the last
// setting wins, as in a shell). It returns the address specs to attach
// with, the forms `weft attach` takes (CIDR, ip:CIDR, net:CIDR,
// net:default), separated by spaces or commas; none when WEFT_CIDR is
// unset or empty (automatic addresses). attach is false for
// WEFT_CIDR=none. Only the form is checked here; whether the addresses can
// be had is the router's to say.
func AttachSpecs(env []string) (specs []string, set, attach bool, err error) {
	value := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, CIDREnv+"="); ok {
			value, set = v, true
		}
	}
	fields := strings.FieldsFunc(value, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
	if len(fields) == 1 && fields[0] == "none" {
		return nil, true, false, nil
	}
	if len(fields) > maxCIDRSpecs {
		return nil, set, false, fmt.Errorf("%s has %d addresses; at most %d are allowed", CIDREnv, len(fields), maxCIDRSpecs)
	}
	for _, f := range fields {
		if f == "none" {
			return nil, set, false, fmt.Errorf("%s=%q: none cannot be combined with addresses", CIDREnv, value)
		}
	}
	return fields, set, true, nil
}
