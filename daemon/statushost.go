package daemon

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// hostGuard refuses, with 421 Misdirected Request, requests whose Host
// header names neither a loopback address ("localhost" included), the
// listen address's host, nor the address the request arrived on. A web
// page in a local browser can make a name of its own resolve to 127.0.0.1
// (DNS rebinding) and then read the status API as its own origin; the
// browser sends that name as Host, so such a request is refused here.
// Tools that use an address (curl 127.0.0.1:6784, Prometheus) are not
// affected.
func hostGuard(listen string, next http.Handler) http.Handler {
	listenHost := listen
	if h, _, err := net.SplitHostPort(listen); err == nil {
		listenHost = h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowedHost(r, listenHost) {
			http.Error(w, fmt.Sprintf("weft status API: Host %q is not an address of this router; "+
				"use a loopback address or the listen address (%s): other names are refused against DNS rebinding", r.Host, listen),
				http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allowedHost reports whether r's Host header names a loopback address,
// listenHost, or the local address r arrived on.
func allowedHost(r *http.Request, listenHost string) bool {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") || strings.EqualFold(host, "localhost.") {
		return true
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return listenHost != "" && strings.EqualFold(host, listenHost)
	}
	a = a.Unmap()
	if a.IsLoopback() {
		return true
	}
	if l, err := netip.ParseAddr(listenHost); err == nil && !l.IsUnspecified() && l.Unmap() == a {
		return true
	}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(la.String()); err == nil && ap.Addr().Unmap() == a {
			return true
		}
	}
	return false
}
