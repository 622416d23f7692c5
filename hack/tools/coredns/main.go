// CoreDNS with only the plugins the local node's cluster DNS uses, built from CoreDNS's own Go module the way its
// documentation describes for a custom plugin set (set dnsserver.Directives, import the plugins).
//
// The forward plugin is deliberately not compiled in: this server answers for the cluster's own names and can
// never query an upstream resolver, whatever its Corefile says.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

// The order in which plugins run (upstream's plugin.cfg order, restricted to the imported ones).
var directives = []string{
	"ready",
	"health",
	"errors",
	"log",
	"loadbalance",
	"cache",
	"kubernetes",
}

func init() {
	dnsserver.Directives = directives
}

func main() {
	coremain.Run()
}
