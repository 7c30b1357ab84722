package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/weftnet/weft/daemon"
)

// proxySocketName is the Docker API proxy's socket in the state dir.
const proxySocketName = "docker.sock"

// origDockerHostEnv keeps the DOCKER_HOST that `weft env` replaced, for
// `weft env --restore` and for the router.
const origDockerHostEnv = "WEFT_ORIG_DOCKER_HOST"

// defaultDockerHost is where Docker listens unless told otherwise.
const defaultDockerHost = "unix:///var/run/docker.sock"

// engineHost is the Docker the router and its proxy talk to: DOCKER_HOST,
// unless it names the proxy itself (the shell ran `eval $(weft env)`),
// then the one it replaced, else Docker's default.
func engineHost(dockerHost, orig, proxySocket string) string {
	if dockerHost == "" || dockerHost == "unix://"+proxySocket {
		dockerHost = orig
	}
	if dockerHost == "" || dockerHost == "unix://"+proxySocket {
		dockerHost = defaultDockerHost
	}
	return dockerHost
}

// proxyTLS loads the TLS configuration of the proxy's TCP listener: nil
// without --proxy-addr, an error when --proxy-addr lacks any of the
// certificate, key and CA (clients must present a certificate the CA
// signed, as Docker's own --tlsverify requires).
func (f *routerFlags) proxyTLS() (*tls.Config, error) {
	if f.proxyAddr == "" {
		if f.proxyCert != "" || f.proxyKey != "" || f.proxyCA != "" {
			return nil, errors.New("--proxy-tls-* options need --proxy-addr")
		}
		return nil, nil
	}
	if f.noProxy {
		return nil, errors.New("--proxy-addr and --no-proxy contradict each other; give one")
	}
	if f.proxyCert == "" || f.proxyKey == "" || f.proxyCA == "" {
		return nil, fmt.Errorf("--proxy-addr %s: %w", f.proxyAddr, daemon.ErrProxyTLS)
	}
	cert, err := tls.LoadX509KeyPair(f.proxyCert, f.proxyKey)
	if err != nil {
		return nil, fmt.Errorf("--proxy-tls-cert %s, --proxy-tls-key %s: %w", f.proxyCert, f.proxyKey, err)
	}
	pem, err := os.ReadFile(f.proxyCA)
	if err != nil {
		return nil, fmt.Errorf("--proxy-tls-cacert: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--proxy-tls-cacert %s: no PEM certificate in it", f.proxyCA)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// runEnv prints the shell line that points DOCKER_HOST at the router's
// Docker API proxy, or with --restore the line that undoes it.
func runEnv(g *globals, args []string) error {
	fs := newFlagSet(g, "env", "[--restore]")
	restore := fs.Bool("restore", false, "print the line that puts DOCKER_HOST back as it was")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("env: unexpected argument %q; usage: weft env [--restore]", fs.Arg(0))
	}
	if *restore {
		fmt.Fprintln(g.stdout, restoreLine(os.Getenv(origDockerHostEnv), envSet(origDockerHostEnv)))
		return nil
	}
	rep, err := client(g).Report()
	if err != nil {
		return fmt.Errorf("env: %w", err)
	}
	if rep.Proxy == nil {
		return fmt.Errorf("env: the router serves no Docker API proxy (state dir %s); launch it on a host with Docker, or with --proxy", g.stateDir)
	}
	host := "unix://" + rep.Proxy.Socket
	orig := os.Getenv("DOCKER_HOST")
	if orig == host {
		orig = os.Getenv(origDockerHostEnv) // already pointed at the proxy
	}
	fmt.Fprintf(g.stdout, "export %s=%s DOCKER_HOST=%s\n", origDockerHostEnv, shellQuote(orig), shellQuote(host))
	return nil
}

// envSet reports whether the environment has name, even empty.
func envSet(name string) bool {
	_, ok := os.LookupEnv(name)
	return ok
}

// restoreLine is what `weft env --restore` prints: DOCKER_HOST back to
// what `weft env` found (unset when it was unset), and the saved value
// gone. Without a saved value there is nothing to undo.
func restoreLine(orig string, saved bool) string {
	switch {
	case !saved:
		return "# weft env was not applied in this shell: nothing to restore"
	case orig == "":
		return "unset DOCKER_HOST " + origDockerHostEnv
	default:
		return "export DOCKER_HOST=" + shellQuote(orig) + "; unset " + origDockerHostEnv
	}
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/:._-@+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
