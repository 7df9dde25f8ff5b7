// Command ferrolb-dashboard checks and renders FerroLB's Grafana dashboard without Grafana.
//
//	ferrolb-dashboard check FILE...
//	    schema check (check.go); exit 0 when every file passes, else prints each error, exit 1
//	ferrolb-dashboard render -prometheus URL -from UNIX -to UNIX -out HTML DASHBOARD
//	    evaluates every panel's queries with query_range and draws the panels on the dashboard's
//	    own grid as one HTML page (render.go)
//
// hack/dashboard-check and hack/dashboard-snapshot build and run it.
package main

import (
	"fmt"
	"os"

	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	// Without the panel and data-source variants, options and targets are decoded as free maps.
	plugins.RegisterDefaultPlugins()
	switch os.Args[1] {
	case "check":
		if len(os.Args) < 3 {
			usage()
		}
		failed := false
		for _, file := range os.Args[2:] {
			for _, problem := range check(file) {
				fmt.Fprintf(os.Stderr, "%s: %s\n", file, problem)
				failed = true
			}
		}
		if failed {
			os.Exit(1)
		}
	case "render":
		if err := render(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "render:", err)
			os.Exit(1)
		}
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: ferrolb-dashboard check FILE... | render -prometheus URL -from UNIX -to UNIX -out HTML DASHBOARD")
	os.Exit(2)
}
