// Command weft is the weft overlay network: the router daemon and the
// command line that drives it. Every command except `router` and `launch`
// talks to the running router through the control socket in the state
// directory (see package control).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/weftnet/weft/control"
)

// Version is the weft release; set at build time with -ldflags.
var Version = "0.1.0-dev"

const defaultStateDir = "/var/lib/weft"

type command struct {
	name    string
	usage   string
	summary string
	run     func(g *globals, args []string) error
}

// globals are the flags every command accepts.
type globals struct {
	stateDir string
	stdout   io.Writer
	stderr   io.Writer
}

func commands() []command {
	return []command{
		{"launch", "[OPTIONS] [PEER...]", "start this host's router in the background", runLaunch},
		{"router", "[OPTIONS] [PEER...]", "run the router in the foreground", runRouter},
		{"stop", "", "stop the router, keeping attachments, addresses and peers", runStop},
		{"reset", "", "stop and remove everything weft made on this host", runReset},
		{"connect", "[--replace] PEER...", "add peers (HOST or HOST:PORT)", runConnect},
		{"forget", "PEER...", "remove peers: close their connections, never retry", runForget},
		{"status", "[peers|connections|targets|dns|ipam]", "show what the router is doing", runStatus},
		{"report", "", "print the router's whole state as JSON", runReport},
		{"attach", "[--without-dns] [--name NAME] [--source-check | --no-source-check] [ADDRESS...] TARGET", "give TARGET (a Docker container, netns:NAME or pid:PID) an interface on the weft network; ADDRESS is CIDR or ip:CIDR (exactly that address), net:CIDR (allocate in that subnet) or net:default (also what no address means)", runAttach},
		{"detach", "[CIDR...] TARGET", "remove addresses (all when none given) from TARGET", runDetach},
		{"ps", "[TARGET...]", "list attached targets: target, MAC, addresses", runPS},
		{"expose", "[ADDRESS...]", "give this host addresses on the weft network (allocated automatically when none is given; forms as for attach)", runExpose},
		{"hide", "[CIDR...]", "take this host's addresses off the weft network", runHide},
		{"dns-add", "[IP...] TARGET [-h FQDN] | IP... -h FQDN", "add DNS records", runDNSAdd},
		{"dns-remove", "[IP...] TARGET [-h FQDN] | IP... -h FQDN | --fqdn FQDN", "remove DNS records", runDNSRemove},
		{"dns-lookup", "NAME", "resolve NAME through this host's DNS server", runDNSLookup},
		{"env", "[--restore]", "print the shell line that points DOCKER_HOST at weft's Docker API proxy (eval $(weft env)), or with --restore the line that undoes it", runEnv},
		{"rmpeer", "PEER", "take over the address ranges of a peer that is gone for good", runRmPeer},
		{"doctor", "[--json] [PEER]", "check every peer (or one) and DNS: reachable, direct or relayed and why, PMTU, RTT; exit 1 when something is wrong", runDoctor},
		{"ping", "[-c N] PEER", "probe a peer over the overlay; say which path answered and the RTT", runPing},
		{"version", "", "print the version and protocol version", runVersion},
	}
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == holdCommand {
		// Inside a container held by the Docker API proxy: no state dir,
		// no router, only the wait.
		os.Exit(runHold(os.Args[2:]))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	g := &globals{stateDir: os.Getenv("WEFT_STATE_DIR"), stdout: stdout, stderr: stderr}
	if g.stateDir == "" {
		g.stateDir = defaultStateDir
	}
	// Global flags before the command.
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch {
		case args[0] == "--state-dir" || args[0] == "-state-dir":
			if len(args) < 2 {
				fmt.Fprintln(stderr, "weft: --state-dir needs a directory")
				return 1
			}
			g.stateDir, args = args[1], args[2:]
		case strings.HasPrefix(args[0], "--state-dir="):
			g.stateDir, args = strings.TrimPrefix(args[0], "--state-dir="), args[1:]
		case args[0] == "-h" || args[0] == "--help" || args[0] == "help":
			usage(stdout)
			return 0
		case args[0] == "--version":
			args = []string{"version"}
		default:
			fmt.Fprintf(stderr, "weft: unknown global flag %s; run 'weft --help'\n", args[0])
			return 1
		}
	}
	if len(args) == 0 || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 1
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(g, args[1:])
			if err == nil {
				return 0
			}
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			fmt.Fprintf(stderr, "weft: %s\n", oneLine(err.Error()))
			return 1
		}
	}
	fmt.Fprintf(stderr, "weft: unknown command %q; run 'weft --help' for the list\n", args[0])
	return 1
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: weft [--state-dir DIR] COMMAND [ARGS]")
	fmt.Fprintln(w, "\nweft joins hosts into one flat Ethernet network for their containers.")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %-50s %s\n", c.name, c.usage, c.summary)
	}
	fmt.Fprintf(w, "\nThe state dir (default %s, env WEFT_STATE_DIR) holds the control socket,\nthe log and the persisted state. Run 'weft COMMAND --help' for a command's options.\n", defaultStateDir)
}

// newFlagSet returns a flag set for a command that also accepts
// --state-dir, printing help to stdout.
func newFlagSet(g *globals, name, usageLine string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&g.stateDir, "state-dir", g.stateDir, "directory of the control socket, log and persisted state")
	fs.Usage = func() {
		fmt.Fprintf(g.stdout, "Usage: weft %s %s\n", name, usageLine)
		fs.SetOutput(g.stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parseInterspersed parses flags that may appear anywhere among the
// positional arguments and returns the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err // Parse printed the help
			}
			return nil, fmt.Errorf("%s: %v; run 'weft %s --help'", fs.Name(), err, fs.Name())
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func client(g *globals) *control.Client { return control.NewClient(g.stateDir) }

func runVersion(g *globals, args []string) error {
	fs := newFlagSet(g, "version", "")
	if _, err := parseInterspersed(fs, args); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "weft %s (protocol %s)\n", Version, protocolVersion)
	return nil
}
