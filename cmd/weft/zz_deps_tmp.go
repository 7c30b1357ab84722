package main

// Temporary: keeps the Docker modules in go.mod while the packages that
// use them are written. Removed before the commit that uses them.
import (
	_ "github.com/docker/docker/client"
	_ "github.com/docker/go-plugins-helpers/ipam"
	_ "github.com/docker/go-plugins-helpers/network"
)
