package main

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/weftnet/weft/daemon"
)

func TestEngineHost(t *testing.T) {
	const sock = "/var/lib/weft/docker.sock"
	for _, tc := range []struct{ dockerHost, orig, want string }{
		{"", "", defaultDockerHost},
		{"tcp://10.0.0.1:2376", "", "tcp://10.0.0.1:2376"},
		// The shell ran eval $(weft env): the router talks to what it replaced.
		{"unix://" + sock, "unix:///run/other.sock", "unix:///run/other.sock"},
		{"unix://" + sock, "", defaultDockerHost},
		// Never itself, even when the saved value points back at it.
		{"unix://" + sock, "unix://" + sock, defaultDockerHost},
	} {
		if got := engineHost(tc.dockerHost, tc.orig, sock); got != tc.want {
			t.Errorf("engineHost(%q, %q) = %q, want %q", tc.dockerHost, tc.orig, got, tc.want)
		}
	}
}

// TestEnvLinesInAShell runs what weft env and weft env --restore print in
// a real shell: DOCKER_HOST goes to the proxy and back to what it was,
// whatever characters it holds.
func TestEnvLinesInAShell(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	for _, orig := range []string{"", "unix:///run/docker.sock", "tcp://h:2376", "unix:///tmp/it's here $HOME/`x`"} {
		set := "unset DOCKER_HOST; "
		if orig != "" {
			set = "export DOCKER_HOST=" + shellQuote(orig) + "; "
		}
		proxy := "unix:///var/lib/weft dir/docker.sock"
		apply := "export " + origDockerHostEnv + "=" + shellQuote(orig) + " DOCKER_HOST=" + shellQuote(proxy)
		script := set + apply + `; printf '%s|' "$DOCKER_HOST"; ` +
			restoreLine(orig, true) + `; printf '%s|%s|%s' "${DOCKER_HOST-unset}" "${` + origDockerHostEnv + `-unset}" "${DOCKER_HOST+set}"`
		out, err := exec.Command(sh, "-c", script).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
		want := proxy + "|"
		if orig == "" {
			want += "unset|unset|"
		} else {
			want += orig + "|unset|set"
		}
		if string(out) != want {
			t.Errorf("DOCKER_HOST %q: the shell printed %q, want %q", orig, out, want)
		}
	}
	if got := restoreLine("", false); !strings.HasPrefix(got, "#") {
		t.Errorf("restore without weft env applied: %q, want a comment that changes nothing", got)
	}
}

func TestProxyTLSFlags(t *testing.T) {
	for _, tc := range []struct {
		flags routerFlags
		want  string
	}{
		{routerFlags{}, ""},
		{routerFlags{proxyAddr: "127.0.0.1:2377"}, "only with TLS"},
		{routerFlags{proxyAddr: "127.0.0.1:2377", proxyCert: "c", proxyKey: "k"}, "only with TLS"},
		{routerFlags{proxyCert: "c"}, "need --proxy-addr"},
		{routerFlags{proxyAddr: "127.0.0.1:2377", noProxy: true}, "contradict"},
		{routerFlags{proxyAddr: "127.0.0.1:2377", proxyCert: "/nonexistent/c", proxyKey: "/nonexistent/k", proxyCA: "/nonexistent/ca"}, "--proxy-tls-cert /nonexistent/c"},
	} {
		cfg, err := tc.flags.proxyTLS()
		switch {
		case tc.want == "" && (err != nil || cfg != nil):
			t.Errorf("%+v: %v %v, want no TLS and no error", tc.flags, cfg, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: %v, want an error saying %q", tc.flags, err, tc.want)
		}
		if strings.Contains(tc.want, "TLS") && !errors.Is(err, daemon.ErrProxyTLS) {
			t.Errorf("%+v: %v is not ErrProxyTLS", tc.flags, err)
		}
	}
}
