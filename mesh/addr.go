package mesh

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// normalizeTarget checks a peer address given as HOST or HOST:PORT and
// returns it as host:port, using defaultPort when none is given.
func normalizeTarget(s string, defaultPort int) (string, error) {
	bad := func(why string) error { return fmt.Errorf("invalid peer address %q: %s", s, why) }
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
		if port == "" {
			return "", bad("port must be a number from 1 to 65535")
		}
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		host = s[1 : len(s)-1]
	} else if strings.Count(s, ":") == 1 {
		return "", bad(err.Error())
	}
	if host == "" {
		return "", bad("missing host")
	}
	if strings.Contains(host, ":") {
		if ip, err := netip.ParseAddr(host); err != nil || !ip.Is6() {
			return "", bad("malformed address; write an IPv6 address as [ADDR]:PORT")
		}
	} else if !validHostname(host) {
		return "", bad("malformed host")
	}
	if port == "" {
		if defaultPort < 1 || defaultPort > 65535 {
			return "", bad("no port given and no default port")
		}
		port = strconv.Itoa(defaultPort)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", bad("port must be a number from 1 to 65535")
	}
	return net.JoinHostPort(host, port), nil
}

// validHostname reports whether s looks like an IPv4 address or a DNS
// host name: letters, digits, hyphens and dots, labels of 1 to 63 bytes.
func validHostname(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if len(label) == 0 || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}
