package main

import (
	"os"

	"github.com/weftnet/weft/proxy/hold"
)

// holdCommand is the subcommand main hands to runHold before parsing
// anything else: `weft wait-for-interface -- COMMAND [ARG...]`, which the
// Docker proxy makes the start of a container's entrypoint.
const holdCommand = hold.Command

// runHold runs inside a container: it waits until the router has attached
// the container, then becomes the container's command (see package
// proxy/hold). args are those after the subcommand; it returns the exit
// code only when the command could not be started.
func runHold(args []string) int {
	return hold.Main(args, os.Stderr)
}
