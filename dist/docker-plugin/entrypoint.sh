#!/bin/sh
# Entrypoint of weft's managed Docker plugin (installed in the plugin's
# rootfs as /usr/bin/weft-plugin, run by busybox sh). It runs the router in
# the foreground, serving the network and IPAM driver on the socket Docker
# gave the plugin, with its state in /var/lib/weft (the "state" mount).
#
# Settings (docker plugin set NAME VAR=VALUE, while the plugin is disabled):
#   WEFT_PEERS       peers to connect to, separated by spaces
#   WEFT_EXTRA_ARGS  more `weft router` options, separated by spaces
#   WEFT_PASSWORD    read by the router itself: encrypts the mesh
#   DOCKER_HOST      read by the router itself: how it reaches Docker
set -eu
set -f # the settings are split at spaces, never globbed
# Docker logs a plugin's stderr as errors: the router's log lines (each
# with its own level) go to stdout, logged as info.
exec 2>&1
# Docker makes /proc/sys read-only in a plugin; the router writes the ARP
# sysctls of the interface it puts into a container (weft attach
# CONTAINER), through this mount, in the container's network namespace.
# This remount is private to the plugin's mount namespace.
/bin/busybox mount -o remount,bind,rw /proc/sys /proc/sys ||
	echo "weft-plugin: /proc/sys stays read-only: weft attach CONTAINER will fail" >&2
# shellcheck disable=SC2086 # splitting is wanted here
exec /usr/bin/weft --state-dir /var/lib/weft router \
	--plugin-socket /run/docker/plugins/weft.sock ${WEFT_EXTRA_ARGS:-} ${WEFT_PEERS:-}
